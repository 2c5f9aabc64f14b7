"""Files on a disk filesystem: the envelope CLI against ``cp``, with and without ``sync``.

envelope makes its output durable (it fsyncs the file and its directory before the output
appears, docs/design.md), ``cp`` does not: a bare ``cp`` returns with the copy still in
the page cache. So ``cp FILE OUT && sync`` is the like-for-like floor, and the bare ``cp``
is shown beside it. The directory is ``$ENVELOPE_BENCH_DISK_DIR``, else ``/var/tmp``
(the filesystem type is in the table); the repetitions go round-robin over the commands
and the best of each is reported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from shlex import quote as shlex_quote

from benchmarks.bench_files import _run, _versions, init_keyring, write_inputs
from benchmarks.report import Suite, Table


def _fs_type(path: Path) -> str:
    for cmd in (["findmnt", "-no", "FSTYPE", "--target"], ["stat", "-f", "-c", "%T"]):
        try:
            done = subprocess.run([*cmd, str(path)], capture_output=True, text=True, check=False)
        except FileNotFoundError:
            continue
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    return "unknown filesystem"


def run(quick: bool) -> Suite:
    size = 8 << 20 if quick else 1 << 30
    repeat = 1 if quick else 7
    base = Path(os.environ.get("ENVELOPE_BENCH_DISK_DIR", "/var/tmp"))
    work = Path(tempfile.mkdtemp(prefix="envelope-bench-", dir=base))
    env = {**os.environ, "ENVELOPE_KEYRING": str(work / "keyring.json")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    envelope = f"{shlex_quote(sys.executable)} -m envelope"
    suite = Suite(
        "disk", f"Files on a disk filesystem ({base}, {_fs_type(base)})", packages=_versions()
    )
    table = Table(
        f"{size >> 20} MiB file to file (best of {repeat}, round-robin)",
        ["command", "seconds", "GB/s", "x cp && sync", "x bare cp"],
    )
    try:
        init_keyring(env)
        plain, enc, out = write_inputs(work, size, env, envelope)
        os.sync()
        cases = [
            ("cp FILE OUT (returns before the data is on disk)", f"cp {plain} {out}"),
            # _run execs its command: the pair runs in a shell of its own.
            ("cp FILE OUT && sync", "/bin/sh -c " + shlex_quote(f"cp {plain} {out} && sync")),
            (
                "envelope encrypt FILE -o OUT (fsyncs)",
                f"{envelope} encrypt --no-split {plain} -o {out}",
            ),
            ("envelope decrypt FILE -o OUT (fsyncs)", f"{envelope} decrypt {enc} -o {out}"),
        ]
        runs: dict[str, list[float]] = {label: [] for label, _ in cases}
        for _ in range(repeat):
            for label, cmd in cases:
                out.unlink(missing_ok=True)
                os.sync()  # no earlier command's dirty pages are written back in this one
                runs[label].append(_run(cmd, env)[0])
        bare, synced = (min(runs[label]) for label, _ in cases[:2])
        for label, _ in cases:
            secs = min(runs[label])
            table.rows.append([label, secs, size / secs / 1e9, synced / secs, bare / secs])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    suite.tables.append(table)
    suite.notes.append(
        "x cp && sync / x bare cp = speed relative to that row in this run (higher is faster)."
    )
    return suite
