"""Data platforms, side by side: a table of ``--rows`` rows with a 24-byte string column.

    python benchmarks/bench_data.py [--rows 10000000] [--loop-rows 200000] [--partitions 10]

Cases (local keyring, so no network; best of ``--repeat`` runs except Dask and PME, run
once, Dask best of two):

- ``Envelope.encrypt`` loop: one envelope message per value, on ``--loop-rows`` values
  (the rate is extrapolated: the loop is linear);
- ``encrypt_batch``: the whole column as one pyarrow ``string`` array;
- ``encrypt_table`` / ``decrypt_table``: the same column inside a two-column table;
- whole job, read Parquet -> encrypt -> write Parquet, on ``--partitions`` input files:
  one process (``encrypt_table`` per file, the kernel on every core) against Dask on a
  ``LocalCluster(n_workers=2, processes=True, threads_per_worker=1)`` with
  ``envelope.dask.to_parquet`` (``Envelope(threads=1)`` per worker: one core each);
- Parquet Modular Encryption with ``envelope.arrow.KmsClient`` (column and footer keys,
  AES-GCM, double wrapping) against the same table written and read as plain Parquet.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.machine import describe
from envelope import Envelope
from envelope.arrow import (
    crypto_factory,
    decrypt_table,
    decryption_properties,
    encrypt_table,
    encryption_properties,
)
from envelope.kms import LocalKms

WIDTH = 24


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def column(rows: int) -> pa.Array:
    """``rows`` distinct 24-byte ASCII strings (e-mail-like), as one ``string`` array."""
    import numpy as np

    cells = np.empty((rows, WIDTH), np.uint8)
    cells[:, 0] = ord("u")
    n = np.arange(rows, dtype=np.int64)
    for k in range(12):  # 12 decimal digits, most significant first
        cells[:, 12 - k] = (n // 10**k) % 10 + ord("0")
    cells[:, 13:] = np.frombuffer(b"@ex.com.net", np.uint8)
    offsets = np.arange(0, (rows + 1) * WIDTH, WIDTH, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.string(), rows, [None, pa.py_buffer(offsets), pa.py_buffer(cells)]
    )


def line(label: str, rows: int, seconds: float, extra: str = "") -> None:
    print(
        f"| {label} | {rows:,} | {rows / seconds / 1e6:.3f} M | "
        f"{rows * WIDTH / seconds / 1e6:.0f} | {seconds:.3f} | {extra} |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--loop-rows", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-dask", action="store_true")
    parser.add_argument("--jobs-only", action="store_true", help="only the whole-job cases")
    parser.add_argument(
        "--strategies", default="partition,job", help="Dask strategies, in this order"
    )
    args = parser.parse_args()
    rows = args.rows
    print(f"machine: {describe('envelope-kms', 'pyarrow', 'dask', 'distributed')}")
    work = Path(tempfile.mkdtemp(prefix="bench-data-"))
    try:
        LocalKms.create(work / "keyring.json")
        env = Envelope(LocalKms.open(work / "keyring.json"))
        col = column(rows)
        table = pa.table({"id": pa.array(range(rows), pa.int64()), "email": col})
        print("\n| case | rows | values/s | plaintext MB/s | seconds | notes |")
        print("|---|---:|---:|---:|---:|---|")

        if args.jobs_only:
            job_rows(env, table, work, args, rows)
            return
        loop_values = [v.encode() for v in col.slice(0, args.loop_rows).to_pylist()]
        t = best(lambda: [env.encrypt(v) for v in loop_values], 1)
        line("Envelope.encrypt loop", args.loop_rows, t, f"rate of {args.loop_rows:,} values")

        t_batch = best(lambda: env.encrypt_batch(col), args.repeat)
        line("encrypt_batch", rows, t_batch, "one pyarrow string array")
        sealed_batch = env.encrypt_batch(col)
        t = best(lambda: env.decrypt_batch(sealed_batch), args.repeat)
        line("decrypt_batch", rows, t, "")

        t_table = best(lambda: encrypt_table(env, table, ["email"]), args.repeat)
        line("encrypt_table", rows, t_table, f"{t_batch / t_table:.2f}x encrypt_batch")
        sealed = encrypt_table(env, table, ["email"])
        t = best(lambda: decrypt_table(env, sealed), args.repeat)
        line("decrypt_table", rows, t, "")
        t = best(lambda: encrypt_table(env, table, ["email"], aad_column="id"), args.repeat)
        line("encrypt_table, AAD id", rows, t, "int64 key column as AAD (cast to text)")

        job_rows(env, table, work, args, rows)
        pme(env, table, work, rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"\ncommand: python benchmarks/bench_data.py --rows {rows} --loop-rows "
        f"{args.loop_rows} --partitions {args.partitions} --repeat {args.repeat}"
        + (" --jobs-only" if args.jobs_only else "")
        + f" --strategies {args.strategies}"
    )


def job_rows(
    env: Envelope, table: pa.Table, work: Path, args: argparse.Namespace, rows: int
) -> None:
    """Read Parquet -> encrypt -> write Parquet, one process and Dask on 2 workers."""
    src = work / "plain"
    src.mkdir()
    step = -(-rows // args.partitions)
    for i in range(args.partitions):
        pq.write_table(table.slice(i * step, step), src / f"part.{i}.parquet")
    files = sorted(src.iterdir())

    def single() -> None:
        out = work / "single"
        out.mkdir(exist_ok=True)
        for f in files:
            pq.write_table(encrypt_table(env, pq.read_table(f), ["email"]), out / f.name)

    t_single = best(single, 1)
    line("job, 1 process", rows, t_single, f"{args.partitions} files, kernel on all cores")
    if args.skip_dask:
        return
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    from envelope.dask import to_parquet

    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parent.parent / "src"), os.environ.get("PYTHONPATH", "")]
    )
    one_core = Envelope(LocalKms.open(work / "keyring.json"), threads=1)
    with (
        LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        Client(cluster),
    ):
        warm = dd.read_parquet(str(src)).head(10, compute=False)
        to_parquet(warm, work / "warm", one_core, ["email"])  # workers import everything
        for strategy in args.strategies.split(","):
            t = best(
                lambda s=strategy: to_parquet(
                    dd.read_parquet(str(src)), work / f"dask-{s}", one_core, ["email"], strategy=s
                ),
                2,
            )
            line(
                f"job, Dask 2 workers ({strategy})",
                rows,
                t,
                f"{t_single / t:.2f}x 1 process; {rows / t / 2 / 1e6:.3f} M values/s per worker",
            )


def pme(env: Envelope, table: pa.Table, work: Path, rows: int) -> None:
    """Parquet Modular Encryption against plain Parquet, write and read."""
    plain_path, pme_path = work / "plain.parquet", work / "pme.parquet"
    factory = crypto_factory(env)
    props = encryption_properties(factory, footer_key="footer", column_keys={"pii": ["email"]})
    t_plain = best(lambda: pq.write_table(table, plain_path), 1)
    t_pme = best(lambda: pq.write_table(table, pme_path, encryption_properties=props), 1)
    nbytes = table.nbytes
    ratio = pme_path.stat().st_size / plain_path.stat().st_size
    print(
        f"| Parquet write, plain | {rows:,} | {rows / t_plain / 1e6:.3f} M | "
        f"{nbytes / t_plain / 1e9:.2f} GB/s (table) | {t_plain:.3f} | "
        f"{plain_path.stat().st_size / 1e6:.0f} MB file |"
    )
    print(
        f"| Parquet write, PME | {rows:,} | {rows / t_pme / 1e6:.3f} M | "
        f"{nbytes / t_pme / 1e9:.2f} GB/s (table) | {t_pme:.3f} | "
        f"{t_pme / t_plain:.2f}x plain time; file {ratio:.3f}x plain |"
    )
    dec = decryption_properties(factory)
    t_read_plain = best(lambda: pq.read_table(plain_path), 3)
    t_read_pme = best(lambda: pq.read_table(pme_path, decryption_properties=dec), 3)
    print(
        f"| Parquet read, plain | {rows:,} | {rows / t_read_plain / 1e6:.3f} M | "
        f"{nbytes / t_read_plain / 1e9:.2f} GB/s (table) | {t_read_plain:.3f} | |"
    )
    print(
        f"| Parquet read, PME | {rows:,} | {rows / t_read_pme / 1e6:.3f} M | "
        f"{nbytes / t_read_pme / 1e9:.2f} GB/s (table) | {t_read_pme:.3f} | "
        f"{t_read_pme / t_read_plain:.2f}x plain time |"
    )


if __name__ == "__main__":
    main()
