"""Many small records: envelope's bulk path against the usual alternatives, in one run.

    python benchmarks/bench_batch.py [--n 1000000] [--esdk-n 2000] [--repeat 3]

For 64-byte and 1 KiB records: envelope bulk (list path, buffer+offsets path, Arrow
path) against a pyca/cryptography AESGCM loop, a Tink AEAD loop and the AWS Encryption
SDK (raw AES master key, no network: its best case; smaller N). Each case runs in its
own subprocess so that its peak RSS is its own. Reported: records/s, us/record, ratio to
the cryptography loop, bytes of overhead per record, and the growth of peak RSS against
the bytes every case must hold at once (input, sealed and opened records).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# numpy's OpenBLAS threads busy-wait on the two cores and halve the parallel cases; no case
# here uses BLAS, so the workers run it single-threaded.
WORKER_ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}

CASES = ["cryptography", "tink", "esdk", "envelope-list", "envelope-buffer", "envelope-arrow"]


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    out, secs = None, float("inf")
    for _ in range(repeat):
        out = None  # free the previous run's output first: peak RSS is one run's
        t = time.perf_counter()
        out = fn()
        secs = min(secs, time.perf_counter() - t)
    return secs, out


LIST_CASES = ("cryptography", "tink", "esdk", "envelope-list")


def worker(case: str, n: int, size: int, repeat: int) -> dict[str, Any]:
    base_rss = rss_mib()
    data = os.urandom(n * size)
    # Only the cases that take a list get one: the others work on `data` in place.
    records = [data[i * size : (i + 1) * size] for i in range(n)] if case in LIST_CASES else []
    input_bytes = len(data)
    if case == "cryptography":
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        gcm = AESGCM(AESGCM.generate_key(256))
        nonces = [i.to_bytes(12, "big") for i in range(n)]

        def enc() -> list[bytes]:
            return [gcm.encrypt(nonce, r, None) for nonce, r in zip(nonces, records, strict=True)]

        t_enc, sealed = best(enc, repeat)
        t_dec, opened = best(
            lambda: [gcm.decrypt(nc, c, None) for nc, c in zip(nonces, sealed, strict=True)], repeat
        )
        overhead = 16 + 12  # tag, plus a nonce the caller must store
        out_bytes = sum(map(len, sealed)) + input_bytes  # sealed and opened
    elif case == "tink":
        import tink
        from tink import aead

        aead.register()
        prim = tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM).primitive(aead.Aead)
        t_enc, sealed = best(lambda: [prim.encrypt(r, b"") for r in records], repeat)
        t_dec, opened = best(lambda: [prim.decrypt(c, b"") for c in sealed], repeat)
        overhead = len(sealed[0]) - size
        out_bytes = sum(map(len, sealed)) + input_bytes  # sealed and opened
    elif case == "esdk":
        from benchmarks.peers import esdk_raw_key

        client, provider = esdk_raw_key()
        t_enc, sealed = best(
            lambda: [client.encrypt(source=r, key_provider=provider)[0] for r in records], repeat
        )
        t_dec, opened = best(
            lambda: [client.decrypt(source=c, key_provider=provider)[0] for c in sealed], repeat
        )
        overhead = len(sealed[0]) - size
        out_bytes = sum(map(len, sealed)) + input_bytes  # sealed and opened
    else:
        from envelope import Envelope, LocalKms

        env = Envelope(LocalKms.ephemeral())
        if case == "envelope-list":
            given: Any = records
        elif case == "envelope-buffer":
            import numpy as np

            given = (data, np.arange(0, (n + 1) * size, size, dtype=np.int64))
        else:
            import numpy as np
            import pyarrow as pa

            offsets = np.arange(
                0, (n + 1) * size, size, dtype=np.int32 if n * size < 2**31 else np.int64
            )
            typ = pa.binary() if offsets.dtype == np.int32 else pa.large_binary()
            given = pa.Array.from_buffers(typ, n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
        t_enc, sealed = best(lambda: env.encrypt_batch(given), repeat)
        t_dec, opened = best(lambda: env.decrypt_batch(sealed), repeat)
        overhead = 20
        out_bytes = (input_bytes + 20 * n) + input_bytes  # sealed and opened
        if case == "envelope-list":
            assert opened == [data[i * size : (i + 1) * size] for i in range(n)]
        elif case == "envelope-buffer":
            assert opened[0] == data
        else:
            assert memoryview(opened.buffers()[2]).cast("B")[: len(data)] == memoryview(data)
    if case in ("cryptography", "tink", "esdk"):
        assert opened[-1] == data[-size:]
    return {
        "case": case,
        "n": n,
        "size": size,
        "enc_s": t_enc,
        "dec_s": t_dec,
        "overhead": overhead,
        "peak_rss_mib": rss_mib(),
        "base_rss_mib": base_rss,
        "input_mib": input_bytes / 2**20,
        "output_mib": out_bytes / 2**20,
    }


def measure(size: int, n: int, esdk_n: int, repeat: int, cases: list[str]) -> list[dict[str, Any]]:
    """One subprocess per case (so peak RSS is its own); failed cases are left out."""
    results = []
    for case in cases:
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--worker",
                case,
                str(esdk_n if case == "esdk" else n),
                str(size),
                "--repeat",
                str(repeat),
            ],
            capture_output=True,
            text=True,
            check=False,
            env=WORKER_ENV,
        )
        if done.returncode != 0:
            print(f"{case}: failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            continue
        results.append(json.loads(done.stdout))
    return results


def run(quick: bool) -> Any:
    """Runner entry point: records/s against record size for every case."""
    from benchmarks.machine import versions
    from benchmarks.report import Plot, Suite, Table

    sizes = [64, 1024] if quick else [64, 256, 1024, 4096]
    n, esdk_n, repeat = (20_000, 100, 1) if quick else (1_000_000, 500, 3)
    suite = Suite(
        "batch",
        "Record batches",
        packages=versions("envelope-kms", "cryptography", "tink", "aws-encryption-sdk", "pyarrow"),
    )
    enc_plot = Plot(
        "batch-encrypt",
        "Batch encrypt: records/s vs record size",
        "record bytes",
        "records/s",
        logy=True,
    )
    dec_plot = Plot(
        "batch-decrypt",
        "Batch decrypt: records/s vs record size",
        "record bytes",
        "records/s",
        logy=True,
    )
    for size in sizes:
        results = measure(size, n if size <= 1024 else n // 4, esdk_n, repeat, CASES)
        missing = sorted(set(CASES) - {r["case"] for r in results})
        if missing:
            suite.notes.append(
                f"{size} B: not measured (not installed or failed): {', '.join(missing)}"
            )
        base = next((r for r in results if r["case"] == "cryptography"), None)
        table = Table(
            f"{size}-byte records",
            [
                "case",
                "N",
                "encrypt M rec/s",
                "decrypt M rec/s",
                "encrypt GB/s",
                "decrypt GB/s",
                "enc x crypto",
                "dec x crypto",
                "overhead B/rec",
                "peak RSS growth MiB",
            ],
        )
        for r in results:
            e, d = r["n"] / r["enc_s"], r["n"] / r["dec_s"]
            be = base["n"] / base["enc_s"] if base else float("nan")
            bd = base["n"] / base["dec_s"] if base else float("nan")
            table.rows.append(
                [
                    r["case"],
                    r["n"],
                    e / 1e6,
                    d / 1e6,
                    e * size / 1e9,
                    d * size / 1e9,
                    e / be,
                    d / bd,
                    r["overhead"],
                    r["peak_rss_mib"] - r["base_rss_mib"],
                ]
            )
            enc_plot.series.setdefault(r["case"], []).append((size, e))
            dec_plot.series.setdefault(r["case"], []).append((size, d))
        suite.tables.append(table)
    suite.plots += [enc_plot, dec_plot]
    return suite


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--esdk-n", type=int, default=2_000)
    ap.add_argument("--sizes", default="64,1024")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--worker", nargs=3, metavar=("CASE", "N", "SIZE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        case, n, size = args.worker
        print(json.dumps(worker(case, int(n), int(size), args.repeat)))
        return

    from benchmarks.machine import describe

    print(
        f"machine: {describe('envelope-kms', 'cryptography', 'tink', 'aws-encryption-sdk', 'pyarrow')}"
    )
    print(
        f"command: python benchmarks/bench_batch.py --n {args.n} --esdk-n {args.esdk_n} --repeat {args.repeat}\n"
    )
    for size in map(int, args.sizes.split(",")):
        results = []
        for case in args.cases.split(","):
            n = args.esdk_n if case == "esdk" else args.n
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    case,
                    str(n),
                    str(size),
                    "--repeat",
                    str(args.repeat),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                print(f"{case}: failed: {done.stderr.strip().splitlines()[-1:]}")
                continue
            results.append(json.loads(done.stdout))
        base = next((r for r in results if r["case"] == "cryptography"), None)
        print(f"### {size}-byte records\n")
        print(
            "| case | N | encrypt rec/s | decrypt rec/s | enc us/rec | dec us/rec | enc x crypto | dec x crypto "
            "| overhead B/rec | peak RSS growth MiB | input+sealed+opened MiB |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in results:
            enc_rate, dec_rate = r["n"] / r["enc_s"], r["n"] / r["dec_s"]
            ratio_e = enc_rate / (base["n"] / base["enc_s"]) if base else float("nan")
            ratio_d = dec_rate / (base["n"] / base["dec_s"]) if base else float("nan")
            print(
                f"| {r['case']} | {r['n']:,} | {enc_rate / 1e6:.3f} M | {dec_rate / 1e6:.3f} M | "
                f"{1e6 / enc_rate:.3f} | {1e6 / dec_rate:.3f} | {ratio_e:.1f}x | {ratio_d:.1f}x | {r['overhead']} | "
                f"{r['peak_rss_mib'] - r['base_rss_mib']:.0f} | {r['input_mib'] + r['output_mib']:.0f} |"
            )
        print()


if __name__ == "__main__":
    main()
