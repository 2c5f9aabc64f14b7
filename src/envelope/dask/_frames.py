"""Frames in memory: encrypted columns with a ``<column>.envelope`` header column."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import dask.dataframe as dd
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from envelope.arrow._table import FORMAT, METADATA_KEY, open_table, seal_table
from envelope.dask._workers import Strategy, openers, plan, sealers

if TYPE_CHECKING:
    from envelope._envelope import Envelope
    from envelope.settings import Settings

__all__ = ["HEADER_SUFFIX", "check_columns", "decrypt_columns", "encrypt_columns"]

#: Suffix of the column that holds each row's batch header in a frame in memory.
HEADER_SUFFIX = ".envelope"

# -- frames in memory --------------------------------------------------------------------


def _arrow_column(series: pd.Series) -> Any:
    arr = pa.array(series, from_pandas=True)
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _encrypt_partition(
    pdf: pd.DataFrame,
    *,
    spec: bytes,
    columns: Sequence[str],
    aad_column: str | None,
    context: Mapping[str, str] | None,
    job: str | None,
    headers: dict[str, bytes] | None,
) -> pd.DataFrame:
    names = [*columns, *([aad_column] if aad_column else [])]
    table = pa.table({n: _arrow_column(pdf[n]) for n in names})
    sealed = seal_table(
        table,
        columns,
        aad_column=aad_column,
        context=context,
        batch_rows=None,
        sealer_for=sealers(spec, job, headers),
    )
    out = pdf.copy(deep=False)
    for name in columns:
        doc = json.loads(sealed.schema.field(name).metadata[METADATA_KEY])
        if len(doc["headers"]) != 1:
            raise ValueError(f"partition too large for one batch in column {name!r}")
        header = base64.b64decode(doc["headers"][0])
        binary = pd.ArrowDtype(pa.binary())
        values = sealed.column(name).combine_chunks().cast(pa.binary())
        out[name] = pd.Series(pd.arrays.ArrowExtensionArray(values), index=pdf.index)
        out[name + HEADER_SUFFIX] = pd.Series([header] * len(pdf), index=pdf.index, dtype=binary)
    return out


def _encrypted_meta(meta: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    out = meta.copy(deep=False)
    binary = pd.ArrowDtype(pa.binary())
    for name in columns:
        out[name] = pd.Series([], dtype=binary)
        out[name + HEADER_SUFFIX] = pd.Series([], dtype=binary)
    return out


def check_columns(ddf: dd.DataFrame, columns: Sequence[str], aad_column: str | None) -> None:
    missing = [c for c in [*columns, *([aad_column] if aad_column else [])] if c not in ddf.columns]
    if missing:
        raise ValueError(
            f"column {missing[0]!r} is not in the frame ({', '.join(map(str, ddf.columns))})"
        )


def encrypt_columns(
    ddf: dd.DataFrame,
    env: Envelope | Settings,
    columns: Sequence[str],
    *,
    aad_column: str | None = None,
    context: Mapping[str, str] | None = None,
    strategy: Strategy = "partition",
) -> dd.DataFrame:
    """Encrypts ``columns`` of every partition (lazily, like any Dask operation).

    Args:
        ddf: the frame; string or binary columns to encrypt.
        env: an Envelope or the settings to build one in each worker.
        columns: the columns to encrypt.
        aad_column: a column bound to each row's values (a primary key, say).
        context: encryption context (``column=NAME`` is added per column).
        strategy: ``"partition"`` or ``"job"`` (see the module docstring).

    Raises:
        ValueError: a column does not exist, or a bad strategy. pickle.PicklingError:
            ``env`` holds raw key material. KmsError: (``"job"``) no data key.
        TypeError, KmsError: when computed, as :func:`envelope.arrow.encrypt_table`.
    """
    names = list(dict.fromkeys(columns))
    check_columns(ddf, names, aad_column)
    spec, job, headers = plan(env, names, context, strategy, encrypting=True)
    return ddf.map_partitions(
        _encrypt_partition,
        spec=spec,
        columns=names,
        aad_column=aad_column,
        context=context,
        job=job,
        headers=headers,
        meta=_encrypted_meta(ddf._meta, names),
    )


def _decrypt_partition(
    pdf: pd.DataFrame,
    *,
    spec: bytes,
    columns: Sequence[str],
    context: Mapping[str, str] | None,
    job: str | None,
    aad: Mapping[str, str | None],
    as_bytes: Sequence[str],
) -> pd.DataFrame:
    out = pdf.drop(columns=[c + HEADER_SUFFIX for c in columns])
    for name in columns:
        headers = _arrow_column(pdf[name + HEADER_SUFFIX])
        runs = pc.run_end_encode(headers) if len(headers) else None
        values = [] if runs is None else runs.values.to_pylist()
        doc = {
            "format": FORMAT,
            "type": "binary" if name in as_bytes else "string",
            "aad_column": aad[name],
            "headers": [base64.b64encode(h).decode() for h in values],
        }
        fields = {name: _arrow_column(pdf[name]).cast(pa.binary())}
        aad_name = aad[name]
        if aad_name:
            fields[aad_name] = _arrow_column(pdf[aad_name])
        table = pa.table(fields)
        i = table.schema.get_field_index(name)
        field = table.schema.field(name).with_metadata({METADATA_KEY: json.dumps(doc)})
        table = table.set_column(i, field, table.column(name))
        plain = open_table(
            table,
            columns=[name],
            context=context,
            errors="raise",
            row_offset=0,
            opener_for=openers(spec, job),
        )
        out[name] = plain.column(name).to_pandas().set_axis(pdf.index)
    return out


def decrypt_columns(
    ddf: dd.DataFrame,
    env: Envelope | Settings,
    columns: Sequence[str] | None = None,
    *,
    aad_column: str | None = None,
    context: Mapping[str, str] | None = None,
    strategy: Strategy = "partition",
    as_bytes: Sequence[str] = (),
) -> dd.DataFrame:
    """Decrypts what :func:`encrypt_columns` sealed (default: every column that has a
    ``<column>.envelope`` header column), dropping the header columns.

    Args:
        aad_column: the AAD column given to :func:`encrypt_columns`, if any.
        as_bytes: columns that held bytes (the others come back as strings).
        strategy: ``"job"``: one unwrap per worker process (see the module docstring).

    Raises:
        ValueError: a column or its header column does not exist. DecryptionError:
            when computed, a tampered or moved value (naming the column and row), or a
            partition that no longer holds whole batches.
    """
    names = (
        list(columns)
        if columns is not None
        else [str(c)[: -len(HEADER_SUFFIX)] for c in ddf.columns if str(c).endswith(HEADER_SUFFIX)]
    )
    check_columns(ddf, [*names, *(n + HEADER_SUFFIX for n in names)], aad_column)
    spec, job, _ = plan(env, names, context, strategy, encrypting=False)
    meta = ddf._meta.drop(columns=[n + HEADER_SUFFIX for n in names])
    for name in names:
        typ = pa.binary() if name in as_bytes else pa.string()
        meta[name] = pa.array([], typ).to_pandas()
    aad = dict.fromkeys(names, aad_column)
    return ddf.map_partitions(
        _decrypt_partition,
        spec=spec,
        columns=names,
        context=context,
        job=job,
        aad=aad,
        as_bytes=tuple(as_bytes),
        meta=meta,
    )
