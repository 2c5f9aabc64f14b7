"""Files and pipes on tmpfs: the envelope CLI against ``cp``, ``cat`` and ``openssl enc``.

Every command runs as its own process (start-up included, as a user would run it) on a
file in ``/dev/shm``; the repetitions go round-robin over the commands and the best of
each command's is reported with the child's peak RSS (``wait4``). ``openssl enc`` cannot do AES-GCM, so it runs AES-256-CTR (no
authentication: a floor for "encrypt a file with a CLI", not an equal).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import Plot, Suite, Table


def _run(cmd: str, env: dict[str, str]) -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of one shell command.

    The command starts from a small ``/usr/bin/time`` process (when present), so that
    the peak RSS is the command's own, not this Python process's (Linux keeps a
    process's high-water mark across ``fork`` and ``exec``).
    """
    timer = shutil.which("time") or "/usr/bin/time"
    wrap = [timer, "-f", "%M"] if Path(timer).exists() else []
    t = time.perf_counter()
    done = subprocess.run(
        [*wrap, "/bin/sh", "-c", "exec " + cmd],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    secs = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"{cmd!r} exited {done.returncode}: {done.stderr.strip()[-300:]}")
    lines = done.stderr.strip().splitlines()
    rss = int(lines[-1]) / 1024 if wrap and lines and lines[-1].isdigit() else float("nan")
    return secs, rss


def init_keyring(env: dict[str, str]) -> None:
    """Creates the local keyring at ``env["ENVELOPE_KEYRING"]``."""
    subprocess.run(
        [sys.executable, "-m", "envelope", "keyring", "init"],
        env=env,
        check=True,
        capture_output=True,
    )


def write_inputs(
    work: Path, size: int, env: dict[str, str], envelope: str
) -> tuple[Path, Path, Path]:
    """``work/plain`` of ``size`` random bytes, its ciphertext ``work/plain.env`` (made
    once, for the decrypt rows) and the output path ``work/out``."""
    plain, enc, out = work / "plain", work / "plain.env", work / "out"
    with open(plain, "wb") as f:
        for _ in range(size >> 20):
            f.write(os.urandom(1 << 20))
    _run(f"{envelope} encrypt --no-split {plain} -o {enc}", env)
    return plain, enc, out


def _best(cmd: str, env: dict[str, str], repeat: int, cleanup: list[Path]) -> tuple[float, float]:
    runs = []
    for _ in range(repeat):
        for p in cleanup:
            p.unlink(missing_ok=True)
        runs.append(_run(cmd, env))
    return min(r[0] for r in runs), max(r[1] for r in runs)


def run(quick: bool) -> Suite:
    sizes = [8 << 20] if quick else [64 << 20, 1 << 30]
    repeat = 1 if quick else 5
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    work = Path(tempfile.mkdtemp(prefix="envelope-bench-", dir=base))
    env = {**os.environ, "ENVELOPE_KEYRING": str(work / "keyring.json")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # start-up as installed: compiled once, cached
    envelope = f"{shlex_quote(sys.executable)} -m envelope"
    suite = Suite(
        "files",
        f"Files and pipes on {base} (tmpfs)",
        packages=_versions(),
    )
    table = Table(
        "Whole-file commands (best of the repetitions; peak RSS of the process)",
        ["size MiB", "command", "seconds", "GB/s", "x cp/cat", "peak RSS MiB"],
    )
    plot = Plot("files", "Files on tmpfs: throughput vs file size", "file bytes", "GB/s")
    try:
        init_keyring(env)
        openssl = shutil.which("openssl")
        for size in sizes:
            plain, enc, out = write_inputs(work, size, env, envelope)
            cases = [
                ("cp FILE OUT", f"cp {plain} {out}", "cp"),
                (
                    "envelope encrypt FILE -o OUT",
                    f"{envelope} encrypt --no-split {plain} -o {out}",
                    "cp",
                ),
                ("envelope decrypt FILE -o OUT", f"{envelope} decrypt {enc} -o {out}", "cp"),
                ("cat < FILE > OUT", f"cat < {plain} > {out}", "cat"),
                (
                    "envelope encrypt < FILE > OUT",
                    f"{envelope} encrypt --no-split < {plain} > {out}",
                    "cat",
                ),
                ("envelope decrypt < FILE > OUT", f"{envelope} decrypt < {enc} > {out}", "cat"),
            ]
            if openssl:
                cases.append(
                    (
                        "openssl enc -aes-256-ctr (no auth)",
                        f"{openssl} enc -aes-256-ctr -pbkdf2 -pass pass:bench -in {plain} -out {out}",
                        "cp",
                    )
                )
            # Round-robin repetitions: a noisy moment of this shared VM then slows one
            # repetition of every row, not all the repetitions of one row.
            runs: dict[str, list[tuple[float, float]]] = {label: [] for label, _, _ in cases}
            for _ in range(repeat):
                for label, cmd, _ in cases:
                    out.unlink(missing_ok=True)
                    runs[label].append(_run(cmd, env))
            floors: dict[str, float] = {}
            for label, _, floor in cases:
                secs, rss = min(r[0] for r in runs[label]), max(r[1] for r in runs[label])
                if label.startswith(("cp ", "cat ")):
                    floors[floor] = secs
                ratio = floors[floor] / secs
                table.rows.append([size >> 20, label, secs, size / secs / 1e9, ratio, rss])
                plot.series.setdefault(label, []).append((size, size / secs / 1e9))
            for label, direction in _IN_PROCESS:
                secs = _in_process(direction, plain, enc, out, env, repeat)
                ratio = floors["cp"] / secs
                table.rows.append([size >> 20, label, secs, size / secs / 1e9, ratio, float("nan")])
            if not quick:
                _check_same(plain, enc, env, envelope, out)
        startup = Table(
            "Start-up: the fixed cost in every command above (best of the repetitions)",
            ["command", "seconds", "peak RSS MiB"],
        )
        tiny = work / "tiny"
        tiny.write_bytes(b"x")
        for label, cmd in (
            ("python -c pass (the interpreter)", f"{shlex_quote(sys.executable)} -c pass"),
            ("envelope --version (imports, parser)", f"{envelope} --version"),
            ("envelope encrypt of a 1-byte file", f"{envelope} encrypt --no-split {tiny} -o {out}"),
        ):
            secs, rss = _best(cmd, env, max(repeat, 5), [out])
            startup.rows.append([label, secs, rss])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    suite.tables.append(table)
    suite.tables.append(startup)
    suite.plots.append(plot)
    suite.notes.append(
        "x cp/cat = speed relative to `cp` (file rows) or `cat` (pipe rows) of the same size in this run."
    )
    suite.notes.append(
        "In-process rows: `Envelope.encrypt_file` / `decrypt_file` timed inside one Python "
        "process (its start-up excluded), against the same `cp` row: the data path alone."
    )
    return suite


_IN_PROCESS = (
    ("Envelope.encrypt_file, in-process", "encrypt"),
    ("Envelope.decrypt_file, in-process", "decrypt"),
)

_TIMED = """
import sys, time
from envelope import Envelope, LocalKms
direction, src, dst, keyring = sys.argv[1:]
env = Envelope(LocalKms.open(keyring), None, accept_unsplit=True)
env.decrypt(env.encrypt(b"warm-up"))  # first-use imports (telemetry) are start-up too
t = time.perf_counter()
(env.encrypt_file if direction == "encrypt" else env.decrypt_file)(src, dst)
print(time.perf_counter() - t)
"""


def _in_process(
    direction: str, plain: Path, enc: Path, out: Path, env: dict[str, str], repeat: int
) -> float:
    """Best seconds of one file method inside a Python process (start-up not counted)."""
    src = plain if direction == "encrypt" else enc
    best = float("inf")
    for _ in range(repeat):
        out.unlink(missing_ok=True)
        done = subprocess.run(
            [sys.executable, "-c", _TIMED, direction, str(src), str(out), env["ENVELOPE_KEYRING"]],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        best = min(best, float(done.stdout.strip().splitlines()[-1]))
    return best


def _check_same(plain: Path, enc: Path, env: dict[str, str], envelope: str, out: Path) -> None:
    _run(f"{envelope} decrypt {enc} -o {out}", env)
    if subprocess.run(["cmp", "-s", str(plain), str(out)], check=False).returncode != 0:
        raise RuntimeError("decrypted file differs from the original")


def shlex_quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


def _versions() -> list[str]:
    from benchmarks.machine import versions

    openssl = subprocess.run(["openssl", "version"], capture_output=True, text=True, check=False)
    cp = subprocess.run(["cp", "--version"], capture_output=True, text=True, check=False)
    return [
        *versions("envelope-kms"),
        (openssl.stdout.strip() or "openssl (not installed)"),
        (cp.stdout.splitlines() or ["cp"])[0],
    ]
