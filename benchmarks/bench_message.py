"""The library's own cost per small message: ``Envelope.encrypt`` / ``decrypt`` of 64 B.

    python -m benchmarks run message [--quick]

Runs in one process on ``LocalKms.ephemeral()`` (no network), so what it measures is the
Python path (context, key source, cache, header) plus the kernel call: without a cache
each message still generates and unwraps a data key locally; with a ``DataKeyCache``
(default limits) the header and input key come from the cache. Both paths run side by
side in the same run; reported is the best of several ``timeit`` runs of N calls, in
microseconds per call, and each path's speed against the uncached one.
"""

from __future__ import annotations

import os
import timeit
from collections.abc import Callable

from benchmarks.machine import versions
from benchmarks.report import Suite, Table
from envelope import DataKeyCache, Envelope
from envelope.kms import LocalKms

MESSAGE = os.urandom(64)
CTX = {"service": "bench", "tenant": "t1"}


def per_call(fn: Callable[[], object], n: int, repeat: int) -> float:
    """Best of ``repeat`` runs of ``n`` calls, in microseconds per call."""
    return min(timeit.repeat(fn, number=n, repeat=repeat)) / n * 1e6


def run(quick: bool) -> Suite:
    n, repeat = (200, 3) if quick else (2000, 7)
    suite = Suite(
        "message",
        "The per-message Python path: 64-byte messages on a local keyring",
        packages=versions("envelope-kms", "cryptography"),
    )
    table = Table(
        f"µs per call, best of {repeat} timeit runs of {n:,} calls",
        ["path", "encrypt µs", "decrypt µs", "encrypt x no cache", "decrypt x no cache"],
    )
    baseline: tuple[float, float] | None = None
    for label, cache in (
        ("no cache (local data key each way)", None),
        ("DataKeyCache (default limits)", DataKeyCache()),
    ):
        env = Envelope(LocalKms.ephemeral(), cache=cache)
        blob = env.encrypt(MESSAGE, CTX)
        if env.decrypt(blob, CTX) != MESSAGE:
            raise RuntimeError(f"{label}: the message did not round-trip")
        enc = per_call(lambda env=env: env.encrypt(MESSAGE, CTX), n, repeat)
        dec = per_call(lambda env=env, blob=blob: env.decrypt(blob, CTX), n, repeat)
        baseline = baseline or (enc, dec)
        table.rows.append([label, enc, dec, baseline[0] / enc, baseline[1] / dec])
    suite.tables.append(table)
    suite.notes.append(
        "x no cache = how many times faster than the uncached path in this run (higher is faster)."
    )
    return suite
