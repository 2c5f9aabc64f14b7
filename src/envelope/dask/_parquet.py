"""Parquet on disk: one file per partition, written atomically, read back decrypted."""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask
import dask.dataframe as dd
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from envelope._atomic import atomic_output
from envelope.arrow._table import METADATA_KEY, encrypted_columns, open_table, seal_table
from envelope.dask._frames import check_columns
from envelope.dask._workers import Strategy, finish, openers, plan, sealers
from envelope.errors import ConfigError, DecryptionError, EnvelopeError

if TYPE_CHECKING:
    from envelope._envelope import Envelope
    from envelope.settings import Settings

__all__ = ["read_parquet", "to_parquet"]

_PART = re.compile(r"^part\.(\d+)\.parquet$")

# -- Parquet on disk: one file per partition, written atomically -------------------------


def _write_part(
    pdf: pd.DataFrame,
    *,
    index: int,
    directory: str,
    spec: bytes,
    columns: Sequence[str],
    options: dict[str, Any],
    job: str | None,
    headers: dict[str, bytes] | None,
) -> str:
    table = pa.Table.from_pandas(pdf, preserve_index=False)
    sealed = seal_table(
        table,
        columns,
        aad_column=options["aad_column"],
        context=options["context"],
        batch_rows=options["row_group_size"],
        sealer_for=sealers(spec, job, headers),
    )
    path = os.path.join(directory, f"part.{index}.parquet")
    try:
        with atomic_output(path, mode=options["mode"]) as f:
            pq.write_table(sealed, f, row_group_size=options["row_group_size"])
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def to_parquet(
    ddf: dd.DataFrame,
    path: str | os.PathLike[str],
    env: Envelope | Settings,
    columns: Sequence[str],
    *,
    aad_column: str | None = None,
    context: Mapping[str, str] | None = None,
    strategy: Strategy = "partition",
    row_group_size: int = 1 << 20,
    mode: int = 0o600,
) -> list[str]:
    """Encrypts ``columns`` and writes ``path/part.N.parquet``, one file per partition,
    each atomically (a file appears whole or not at all, also when a worker dies and the
    task is retried); runs the job and returns the files written. The index is not
    written (``reset_index()`` first to keep it); each row group is one batch.

    Raises:
        ValueError, pickle.PicklingError: as :func:`encrypt_columns`. ConfigError: the
            directory cannot be written. TypeError, KmsError: as
            :func:`envelope.arrow.encrypt_table`.
    """
    names = list(dict.fromkeys(columns))
    check_columns(ddf, names, aad_column)
    directory = os.fspath(path)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {directory}: {exc.strerror}") from None
    spec, job, headers = plan(env, names, context, strategy, encrypting=True)
    options = {
        "aad_column": aad_column,
        "context": dict(context or {}),
        "row_group_size": row_group_size,
        "mode": mode,
    }
    tasks = [
        dask.delayed(_write_part)(
            part,
            index=i,
            directory=directory,
            spec=spec,
            columns=names,
            options=options,
            job=job,
            headers=headers,
        )
        for i, part in enumerate(ddf.to_delayed())
    ]
    try:
        written: list[str] = list(dask.compute(*tasks))
    finally:
        finish(job)
        _remove_stale_temporaries(directory)
    return written


def _remove_stale_temporaries(directory: str) -> None:
    """Temporary files a killed worker left (never visible under a part's name)."""
    for p in Path(directory).glob(".part.*.parquet.*.tmp"):
        with contextlib.suppress(OSError):
            p.unlink()


def _parts(directory: str) -> list[str]:
    try:
        names = os.listdir(directory)
    except OSError as exc:
        raise ConfigError(f"cannot read {directory}: {exc.strerror}") from None
    found = sorted((int(m.group(1)), n) for n in names if (m := _PART.match(n)))
    if not found:
        raise ConfigError(f"{directory} holds no part.N.parquet files")
    return [os.path.join(directory, n) for _, n in found]


def _read_part(
    path: str, spec: bytes, context: Mapping[str, str] | None, job: str | None
) -> pd.DataFrame:
    table = pq.read_table(path)
    try:
        plain = open_table(
            table,
            columns=None,
            context=context,
            errors="raise",
            row_offset=0,
            opener_for=openers(spec, job),
        )
    except DecryptionError as exc:
        raise type(exc)(f"{path}: {exc}", index=exc.index) from None
    except EnvelopeError as exc:
        raise type(exc)(f"{path}: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return plain.to_pandas()


def read_parquet(
    path: str | os.PathLike[str],
    env: Envelope | Settings,
    *,
    context: Mapping[str, str] | None = None,
    strategy: Strategy = "partition",
) -> dd.DataFrame:
    """A frame of the files :func:`to_parquet` wrote, one partition per file, with the
    encrypted columns decrypted (lazily).

    Raises:
        ConfigError: no such directory or no part files. DecryptionError: when computed,
            a tampered value or file (the message names the file, column and row).
    """
    files = _parts(os.fspath(path))
    schema = pq.read_schema(files[0])
    plain = pa.schema(
        [
            f.with_type(pa.type_for_alias(json.loads(f.metadata[METADATA_KEY])["type"]))
            if f.name in encrypted_columns(schema)
            else f
            for f in schema
        ],
        metadata=schema.metadata,
    )
    spec, job, _ = plan(env, [], context, strategy, encrypting=False)
    meta = plain.empty_table().to_pandas()
    return dd.from_map(_read_part, files, args=(spec, context, job), meta=meta)
