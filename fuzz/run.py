"""Runs each fuzz target for a bounded time: ``python -m fuzz.run --seconds N``.

Each target runs in its own process (atheris/libFuzzer exits when done) from a working
copy of its committed seed corpus under ``build/fuzz/`` (new inputs go there, never into
``fuzz/corpus/``); crash inputs land in ``build/fuzz/artifacts/``. Prints executions and
hits per target; exits 1 if any target crashed or raised an undocumented exception.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "fuzz" / "corpus"
NAMES = ("stream_opener", "batch_open", "header_parser")


def _worker(name: str, seconds: int, work: Path) -> None:
    import atheris  # noqa: PLC0415 - only the worker needs it

    with atheris.instrument_imports(include=["envelope", "fuzz"]):
        from fuzz import targets  # noqa: PLC0415

    corpus = work / "corpus" / name
    artifacts = work / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.argv[0],
        str(corpus),
        f"-max_total_time={seconds}",
        "-rss_limit_mb=2048",
        "-max_len=140000",
        f"-artifact_prefix={artifacts}/{name}-",
        "-print_final_stats=1",
    ]
    atheris.Setup(argv, targets.TARGETS[name])
    atheris.Fuzz()


def write_seeds() -> None:
    """Rewrites fuzz/corpus/<target>/seed-N from :func:`fuzz.targets.seeds`."""
    from fuzz import targets  # noqa: PLC0415

    for name, blobs in targets.seeds().items():
        (CORPUS / name).mkdir(parents=True, exist_ok=True)
        for i, blob in enumerate(blobs):
            (CORPUS / name / f"seed-{i}").write_bytes(blob)


def run(name: str, seconds: int, work: Path) -> tuple[int, int, float]:
    """Runs one target; returns (executions, hits, wall seconds)."""
    corpus = work / "corpus" / name
    shutil.rmtree(corpus, ignore_errors=True)
    shutil.copytree(CORPUS / name, corpus)
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fuzz.run",
            "--worker",
            name,
            "--seconds",
            str(seconds),
            "--work",
            str(work),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=seconds + 120,
    )
    wall = time.monotonic() - started
    log = proc.stdout + proc.stderr
    (work / f"{name}.log").write_text(log)
    done = re.findall(r"stat::number_of_executed_units:\s*(\d+)", log) or re.findall(
        r"Done (\d+) runs", log
    )
    execs = int(done[-1]) if done else 0
    hits = 0 if proc.returncode == 0 else 1
    if hits:
        tail = "\n".join(log.strip().splitlines()[-25:])
        print(f"--- {name} failed (exit {proc.returncode}):\n{tail}", file=sys.stderr)
    return execs, hits, wall


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__)
    parser.add_argument("--seconds", type=int, default=30, help="per target (default 30)")
    parser.add_argument("--target", action="append", choices=NAMES, help="default: all")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "fuzz")
    parser.add_argument("--write-seeds", action="store_true", help="rewrite fuzz/corpus/")
    parser.add_argument("--worker", choices=NAMES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.seconds, args.work)
        return 0
    if args.write_seeds:
        write_seeds()
        return 0
    failed = 0
    for name in args.target or NAMES:
        execs, hits, wall = run(name, args.seconds, args.work)
        print(f"fuzz {name}: {execs} executions in {wall:.0f} s, {hits} hits")
        failed += hits
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
