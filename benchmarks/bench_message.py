"""The library's own cost per small message: ``Envelope.encrypt`` / ``decrypt`` of 64 B.

    python benchmarks/bench_message.py [--n 2000] [--repeat 7]

Runs in one process on ``LocalKms.ephemeral()`` (no network), so what it measures is the
Python path (context, key source, cache, header) plus the kernel call: without a cache
each message still generates and unwraps a data key locally; with a ``DataKeyCache``
(default limits) the header and input key come from the cache. Reports the best of
``--repeat`` timeit runs of ``--n`` calls, in microseconds per call.
"""

from __future__ import annotations

import argparse
import os
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import describe
from envelope import DataKeyCache, Envelope
from envelope.kms import LocalKms

MESSAGE = os.urandom(64)
CTX = {"service": "bench", "tenant": "t1"}


def per_call(fn: Callable[[], object], n: int, repeat: int) -> float:
    """Best of ``repeat`` runs of ``n`` calls, in microseconds per call."""
    return min(timeit.repeat(fn, number=n, repeat=repeat)) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="calls per timeit run")
    parser.add_argument("--repeat", type=int, default=7, help="timeit runs (best is kept)")
    args = parser.parse_args()
    print(f"machine: {describe('envelope-kms')}")
    print(f"{'':14s} {'encrypt us':>11s} {'decrypt us':>11s}")
    for label, cache in (("no cache", None), ("DataKeyCache", DataKeyCache())):
        env = Envelope(LocalKms.ephemeral(), cache=cache)
        blob = env.encrypt(MESSAGE, CTX)
        assert env.decrypt(blob, CTX) == MESSAGE
        enc = per_call(lambda env=env: env.encrypt(MESSAGE, CTX), args.n, args.repeat)
        dec = per_call(lambda env=env, blob=blob: env.decrypt(blob, CTX), args.n, args.repeat)
        print(f"{label:14s} {enc:11.2f} {dec:11.2f}")
    print(f"command: python benchmarks/bench_message.py --n {args.n} --repeat {args.repeat}")


if __name__ == "__main__":
    main()
