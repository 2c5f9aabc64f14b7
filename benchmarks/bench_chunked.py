"""Cobblestone-256 throughput on one large message, beside its floors, in one run.

    python benchmarks/bench_chunked.py [--mib 256] [--repeat 7]

Rows: envelope.chunked seal/open with 1 and 2 threads, into a fresh ``bytes`` and into a
reused buffer; copying the message into a fresh and into a reused buffer (the memory
floor); and pyca/cryptography's AESGCM over 1 MiB chunks (the usual Python loop).
Each figure is the best of ``--repeat`` runs (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from benchmarks.machine import describe, versions
from benchmarks.report import Plot, Suite, Table
from envelope import chunked


def best_seconds(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def measure(n: int, repeat: int) -> list[tuple[str, float]]:
    """(operation, best seconds) rows for one message of ``n`` bytes (a multiple of 1 MiB)."""
    msg = os.urandom(n)
    key, ctx = os.urandom(32), b"bench"
    ct = chunked.encrypt(key, msg, ctx)
    sealed_out = bytearray(len(ct))
    opened_out = bytearray(n)
    copy_out = memoryview(bytearray(n))
    gcm = AESGCM(key)  # benchmark only: one key, counter nonces below
    step = 1 << 20
    gcm_ct = [
        gcm.encrypt((i).to_bytes(12, "big"), msg[i * step : (i + 1) * step], None)
        for i in range(n // step)
    ]

    def gcm_seal() -> None:
        view = memoryview(msg)
        for i in range(n // step):
            gcm.encrypt((i).to_bytes(12, "big"), view[i * step : (i + 1) * step], None)

    def gcm_open() -> None:
        for i, c in enumerate(gcm_ct):
            gcm.decrypt((i).to_bytes(12, "big"), c, None)

    def copy_reused() -> None:
        copy_out[:] = msg

    rows: list[tuple[str, float]] = [
        (
            "copy into a fresh buffer (bytes(memoryview))",
            best_seconds(lambda: memoryview(msg).tobytes(), repeat),
        ),
        ("copy into a reused buffer", best_seconds(copy_reused, repeat)),
        ("cryptography AESGCM, 1 MiB chunks, seal", best_seconds(gcm_seal, repeat)),
        ("cryptography AESGCM, 1 MiB chunks, open", best_seconds(gcm_open, repeat)),
    ]
    for threads in (1, 2):
        rows += [
            (
                f"envelope seal, {threads} thread(s), fresh buffer",
                best_seconds(lambda t=threads: chunked.encrypt(key, msg, ctx, threads=t), repeat),
            ),
            (
                f"envelope seal, {threads} thread(s), reused buffer",
                best_seconds(
                    lambda t=threads: chunked.encrypt_into(key, msg, ctx, sealed_out, threads=t),
                    repeat,
                ),
            ),
            (
                f"envelope open, {threads} thread(s), fresh buffer",
                best_seconds(lambda t=threads: chunked.decrypt(key, ct, ctx, threads=t), repeat),
            ),
            (
                f"envelope open, {threads} thread(s), reused buffer",
                best_seconds(
                    lambda t=threads: chunked.decrypt_into(key, ct, ctx, opened_out, threads=t),
                    repeat,
                ),
            ),
        ]
    # Cache-resident: the same bytes through a 1 MiB message and a reused 1 MiB buffer,
    # which shows the kernel's per-core speed without DRAM traffic.
    small = msg[: 1 << 20]
    small_out = bytearray(chunked.sealed_length(len(small)))

    def hot_seal() -> None:
        for _ in range(n // len(small)):
            chunked.encrypt_into(key, small, ctx, small_out, threads=1)

    rows.append(
        (
            "envelope seal, 1 thread, 1 MiB messages into one reused buffer (in cache)",
            best_seconds(hot_seal, repeat),
        )
    )
    return rows


def run(quick: bool) -> Suite:
    """Runner entry point: every row at several message sizes."""
    sizes_mib = [1, 4] if quick else [1, 16, 64, 256]
    repeat = 1 if quick else 5
    suite = Suite(
        "chunked",
        "Cobblestone-256 on one large message",
        packages=versions("envelope-kms", "cryptography"),
    )
    plot = Plot("chunked", "One message: throughput vs message size", "message bytes", "GB/s")
    for mib in sizes_mib:
        n = mib << 20
        rows = measure(n, repeat)
        table = Table(f"{mib} MiB message", ["operation", "GB/s", "time vs fresh copy"])
        for name, secs in rows:
            table.rows.append([name, n / secs / 1e9, f"{secs / rows[0][1]:.2f}x"])
            plot.series.setdefault(name, []).append((n, n / secs / 1e9))
        suite.tables.append(table)
    suite.plots.append(plot)
    return suite


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    n = args.mib << 20
    rows = measure(n, args.repeat)
    fresh_copy = rows[0][1]
    print(f"machine: {describe('envelope-kms', 'cryptography')}")
    print(f"message: {args.mib} MiB, best of {args.repeat}\n")
    print("| operation | GB/s | time vs fresh copy |")
    print("|---|---:|---:|")
    for name, secs in rows:
        print(f"| {name} | {n / secs / 1e9:.2f} | {secs / fresh_copy:.2f}x |")


if __name__ == "__main__":
    main()
