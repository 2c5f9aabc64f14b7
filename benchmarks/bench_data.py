"""Data platforms, side by side: a table of N rows with a 24-byte string column.

    python -m benchmarks run data [--quick]
    python benchmarks/bench_data.py [--rows 10000000] [--jobs-only] [--strategies job,partition]

Cases (local keyring, so no network; best of the repetitions, except the per-value loop
and the one-process job, run once, and Dask, best of two), all in one run:

- ``Envelope.encrypt`` loop: one envelope message per value, on fewer values (the rate
  is extrapolated: the loop is linear);
- ``encrypt_batch``: the whole column as one pyarrow ``string`` array;
- ``encrypt_table`` / ``decrypt_table``: the same column inside a two-column table;
- whole job, read Parquet -> encrypt -> write Parquet, on several input files: one
  process (``encrypt_table`` per file, the kernel on every core) against Dask on a
  ``LocalCluster(n_workers=2, processes=True, threads_per_worker=1)`` with
  ``envelope.dask.to_parquet`` (``Envelope(threads=1)`` per worker: one core each);
- Parquet Modular Encryption with ``envelope.arrow.KmsClient`` (column and footer keys,
  AES-GCM, double wrapping) against the same table written and read as plain Parquet.

``main()`` runs the same suite with other sizes, only the whole-job cases
(``--jobs-only``) or the Dask strategies in a chosen order, and prints its tables.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.machine import describe, versions
from benchmarks.report import Suite, Table, best, markdown
from benchmarks.servers import environment
from envelope import Envelope
from envelope.arrow import (
    crypto_factory,
    decrypt_table,
    decryption_properties,
    encrypt_table,
    encryption_properties,
)
from envelope.kms import LocalKms

ROOT = Path(__file__).resolve().parent.parent
WIDTH = 24
PACKAGES = ("envelope-kms", "pyarrow", "dask", "distributed")


@dataclass
class Sizes:
    """What one run measures (``run`` picks these; ``main`` reads them from flags)."""

    rows: int
    loop_rows: int
    partitions: int
    repeat: int
    dask: bool = True
    jobs_only: bool = False
    strategies: tuple[str, ...] = ("partition", "job")


QUICK = Sizes(rows=20_000, loop_rows=2_000, partitions=2, repeat=1)
FULL = Sizes(rows=10_000_000, loop_rows=200_000, partitions=10, repeat=3)


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


class Rows:
    """The suite's one table: a row per case, with its speed against a baseline case."""

    def __init__(self, rows: int) -> None:
        self.n = rows
        self.table = Table(
            f"{rows:,} rows, 24-byte string column, local keyring",
            ["case", "rows", "M values/s", "plaintext MB/s", "seconds", "x baseline", "notes"],
        )
        self.seconds: dict[str, float] = {}

    def add(
        self, case: str, seconds: float, notes: str = "", *, of: str = "", rows: int = 0
    ) -> float:
        """Adds a row; ``of`` names the baseline case (same rows) for the speed ratio."""
        rows = rows or self.n
        per_row = seconds / rows
        self.seconds[case] = per_row
        ratio = self.seconds[of] / per_row if of else float("nan")
        notes = f"vs {of}; {notes}" if of and notes else (f"vs {of}" if of else notes)
        self.table.rows.append(
            [case, rows, rows / seconds / 1e6, rows * WIDTH / seconds / 1e6, seconds, ratio, notes]
        )
        return seconds


def measure(sizes: Sizes) -> Suite:
    suite = Suite(
        "data",
        "Data platforms: Arrow tables, Parquet and Dask",
        packages=versions(*PACKAGES),
    )
    out = Rows(sizes.rows)
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        work = Path(tmp)
        LocalKms.create(work / "keyring.json")
        env = Envelope(LocalKms.open(work / "keyring.json"))
        col = column(sizes.rows)
        table = pa.table({"id": pa.array(range(sizes.rows), pa.int64()), "email": col})
        if not sizes.jobs_only:
            columns(env, col, table, sizes, out)
        jobs(env, table, work, sizes, out)
        if not sizes.jobs_only:
            pme(env, table, work, out)
    suite.tables.append(out.table)
    suite.notes += [
        "x baseline = speed relative to the case named in notes, in this run (higher is faster).",
        f"Load average at the end of the run: {', '.join(f'{x:.1f}' for x in os.getloadavg())}.",
    ]
    return suite


def columns(env: Envelope, col: pa.Array, table: pa.Table, sizes: Sizes, out: Rows) -> None:
    """The per-value loop against the one-call column and table paths."""
    loop = "Envelope.encrypt loop"
    values = [v.encode() for v in col.slice(0, sizes.loop_rows).to_pylist()]
    t, _ = best(lambda: [env.encrypt(v) for v in values], 1)
    out.add(loop, t, f"rate of {sizes.loop_rows:,} values", rows=sizes.loop_rows)
    t, sealed_batch = best(lambda: env.encrypt_batch(col), sizes.repeat)
    out.add("encrypt_batch", t, "one pyarrow string array", of=loop)
    t, _ = best(lambda: env.decrypt_batch(sealed_batch), sizes.repeat)
    out.add("decrypt_batch", t)
    t, sealed = best(lambda: encrypt_table(env, table, ["email"]), sizes.repeat)
    out.add("encrypt_table", t, of="encrypt_batch")
    t, _ = best(lambda: decrypt_table(env, sealed), sizes.repeat)
    out.add("decrypt_table", t, of="decrypt_batch")
    t, _ = best(lambda: encrypt_table(env, table, ["email"], aad_column="id"), sizes.repeat)
    out.add(
        "encrypt_table, AAD id", t, "int64 key column as AAD (cast to text)", of="encrypt_table"
    )


def jobs(env: Envelope, table: pa.Table, work: Path, sizes: Sizes, out: Rows) -> None:
    """Read Parquet -> encrypt -> write Parquet, one process and Dask on 2 workers."""
    src = work / "plain"
    src.mkdir()
    step = -(-sizes.rows // sizes.partitions)
    for i in range(sizes.partitions):
        pq.write_table(table.slice(i * step, step), src / f"part.{i}.parquet")
    files = sorted(src.iterdir())

    def single() -> None:
        done = work / "single"
        done.mkdir(exist_ok=True)
        for f in files:
            pq.write_table(encrypt_table(env, pq.read_table(f), ["email"]), done / f.name)

    one = "job, 1 process"
    t, _ = best(single, 1)
    out.add(one, t, f"{sizes.partitions} files, kernel on all cores")
    if not sizes.dask:
        return
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    from envelope.dask import to_parquet

    one_core = Envelope(LocalKms.open(work / "keyring.json"), threads=1)
    path = os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    # Workers import this tree's envelope; numpy's BLAS threads would busy-wait on the cores.
    with (
        environment(PYTHONPATH=path, OPENBLAS_NUM_THREADS="1"),
        LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        Client(cluster),
    ):
        warm = dd.read_parquet(str(src)).head(10, compute=False)
        to_parquet(warm, work / "warm", one_core, ["email"])  # workers import everything
        for strategy in sizes.strategies:
            t, _ = best(
                lambda s=strategy: to_parquet(
                    dd.read_parquet(str(src)), work / f"dask-{s}", one_core, ["email"], strategy=s
                ),
                2,
            )
            per_worker = sizes.rows / t / 2 / 1e6
            out.add(
                f"job, Dask 2 workers ({strategy})",
                t,
                f"{per_worker:.3f} M values/s per worker",
                of=one,
            )


def pme(env: Envelope, table: pa.Table, work: Path, out: Rows) -> None:
    """Parquet Modular Encryption against plain Parquet, write and read."""
    plain_path, pme_path = work / "plain.parquet", work / "pme.parquet"
    factory = crypto_factory(env)
    props = encryption_properties(factory, footer_key="footer", column_keys={"pii": ["email"]})
    gb = table.nbytes / 1e9
    t, _ = best(lambda: pq.write_table(table, plain_path), 1)
    plain_mb = plain_path.stat().st_size / 1e6
    out.add("Parquet write, plain", t, f"{gb / t:.2f} GB/s of table; {plain_mb:.1f} MB file")
    t, _ = best(lambda: pq.write_table(table, pme_path, encryption_properties=props), 1)
    ratio = pme_path.stat().st_size / plain_path.stat().st_size
    out.add(
        "Parquet write, PME",
        t,
        f"{gb / t:.2f} GB/s of table; file {ratio:.3f}x plain",
        of="Parquet write, plain",
    )
    dec = decryption_properties(factory)
    t, _ = best(lambda: pq.read_table(plain_path), 3)
    out.add("Parquet read, plain", t, f"{gb / t:.2f} GB/s of table")
    t, _ = best(lambda: pq.read_table(pme_path, decryption_properties=dec), 3)
    out.add("Parquet read, PME", t, f"{gb / t:.2f} GB/s of table", of="Parquet read, plain")


def run(quick: bool) -> Suite:
    return measure(QUICK if quick else FULL)


def main() -> None:
    """The suite at other sizes, or only some of its cases; prints its Markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=FULL.rows)
    parser.add_argument("--loop-rows", type=int, default=FULL.loop_rows)
    parser.add_argument("--partitions", type=int, default=FULL.partitions)
    parser.add_argument("--repeat", type=int, default=FULL.repeat)
    parser.add_argument("--skip-dask", action="store_true")
    parser.add_argument("--jobs-only", action="store_true", help="only the whole-job cases")
    parser.add_argument(
        "--strategies", default="partition,job", help="Dask strategies, in this order"
    )
    args = parser.parse_args()
    sizes = Sizes(
        rows=args.rows,
        loop_rows=args.loop_rows,
        partitions=args.partitions,
        repeat=args.repeat,
        dask=not args.skip_dask,
        jobs_only=args.jobs_only,
        strategies=tuple(args.strategies.split(",")),
    )
    suite = measure(sizes)
    command = shlex.join(["python", "benchmarks/bench_data.py", *sys.argv[1:]])
    print(markdown([suite], describe(*PACKAGES), command, "benchmarks"))


if __name__ == "__main__":
    main()
