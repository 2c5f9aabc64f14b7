"""``encrypt_table`` / ``decrypt_table``: named columns of an Arrow table, sealed in place.

Each encrypted column becomes ``binary`` (or ``large_binary``) and keeps, in its field
metadata under ``envelope.encrypted``, a small JSON document: the format, the column's
original type, the AAD column if any, and the base64 batch header of each of its record
batches. The column's values are bound to its name (the batch context holds
``column=NAME``), so swapping two encrypted columns fails to decrypt. One data key (one
KMS call) per encrypted column; each record batch of the table is a batch of its own, so
a row group or record batch read alone decrypts alone (pass its first row as
``row_offset``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from envelope._batch import BatchHeader, BatchResult, EncryptedBatch
from envelope._batch.sealer import BatchOpener, BatchSealer
from envelope._format.context import Context, canonical_context
from envelope.errors import DecryptionError, FormatError, KeyUnavailableError

if TYPE_CHECKING:
    from envelope._envelope import Envelope
    from envelope._keys.source import KeySource

__all__ = [
    "FORMAT",
    "METADATA_KEY",
    "TableResult",
    "decrypt_table",
    "encrypt_table",
    "encrypted_columns",
    "open_table",
    "seal_table",
]

METADATA_KEY = b"envelope.encrypted"
FORMAT = "envelope-arrow/v1"
#: Field metadata documents larger than this are refused (bounded parsing).
MAX_METADATA_BYTES = 64 << 20
_PLAIN_TYPES: dict[str, Any] = {
    str(t): t
    for t in (
        pa.string(),
        pa.large_string(),
        pa.binary(),
        pa.large_binary(),
        pa.string_view(),
        pa.binary_view(),
    )
}


@dataclass(frozen=True, slots=True)
class TableResult:
    """What ``decrypt_table(..., errors="collect")`` returns: the table with every value
    that authenticated (the others null) and, per column, the rows that did not."""

    table: Any
    failed: dict[str, tuple[int, ...]]

    @property
    def ok(self) -> bool:
        """True if every value decrypted."""
        return not any(self.failed.values())


def _internals(env: Envelope) -> tuple[KeySource, int]:
    # The Envelope's key source and thread count: this module is a front end over it.
    return env._keys, env._threads


def _as_table(data: Any) -> Any:
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pa.Table):
        return data
    raise TypeError(f"expected a pyarrow Table or RecordBatch, not {type(data).__name__}")


def _like_input(table: Any, data: Any) -> Any:
    if not isinstance(data, pa.RecordBatch):
        return table
    batches = table.combine_chunks().to_batches()
    return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)


def _column_ctx(context: Mapping[str, str] | None, name: str) -> Context:
    given = dict(context or {})
    if given.get("column", name) != name:
        raise ValueError(f"context names column {given['column']!r}, not {name!r}")
    return canonical_context({**given, "column": name})


def _one_array(chunked: Any) -> Any:
    if chunked.num_chunks == 1:
        return chunked.chunk(0)
    return chunked.combine_chunks() if chunked.num_chunks else pa.array([], chunked.type)


def _aad_values(table: Any, name: str) -> Any:
    """The AAD column as binary values (integers as their decimal text)."""
    if name not in table.column_names:
        raise ValueError(
            f"AAD column {name!r} is not in the table ({', '.join(table.column_names)})"
        )
    col = table.column(name)
    typ = col.type
    if pa.types.is_integer(typ):
        return pc.cast(col, pa.string())
    if typ in _PLAIN_TYPES.values():
        return col
    raise TypeError(f"AAD column {name!r} has type {typ}: use a string, binary or integer column")


def _check_column(table: Any, name: str) -> None:
    if name not in table.column_names:
        raise ValueError(f"column {name!r} is not in the table ({', '.join(table.column_names)})")
    field = table.schema.field(name)
    if field.metadata and METADATA_KEY in field.metadata:
        raise ValueError(f"column {name!r} is already encrypted")
    if field.type not in _PLAIN_TYPES.values():
        raise TypeError(
            f"column {name!r} has type {field.type}: only string, large_string, binary, "
            "large_binary, string_view and binary_view columns can be encrypted (cast or "
            "serialize other types first)"
        )


def encrypt_table(
    env: Envelope,
    table: Any,
    columns: Sequence[str],
    *,
    aad_column: str | None = None,
    context: Mapping[str, str] | None = None,
    batch_rows: int | None = None,
) -> Any:
    """Encrypts the named columns of ``table`` (a pyarrow Table or RecordBatch).

    Args:
        env: the Envelope whose KMS and cluster secret seal the values.
        table: the data; other columns are untouched.
        columns: names of string or binary columns to encrypt.
        aad_column: a string, binary or integer column (a primary key, say) bound to
            each row's values, so a value moved to another row fails to decrypt.
        context: encryption context added to every column's (``column=NAME`` is added).
        batch_rows: rows per batch (default: the table's record batches); use the
            Parquet ``row_group_size`` so each row group decrypts on its own.

    Returns:
        The table (or record batch) with those columns encrypted.

    Raises:
        ValueError: a column or the AAD column does not exist or is encrypted already.
        TypeError: a column has a type that cannot be encrypted (nested, numeric, ...).
        KmsError: the KMS could not generate a data key.
    """
    keys, threads = _internals(env)
    return seal_table(
        table,
        columns,
        aad_column=aad_column,
        context=context,
        batch_rows=batch_rows,
        sealer_for=lambda ctx: (BatchSealer.fresh(keys, ctx, threads), True),
    )


def seal_table(
    table: Any,
    columns: Sequence[str],
    *,
    aad_column: str | None,
    context: Mapping[str, str] | None,
    batch_rows: int | None,
    sealer_for: Callable[[Context], tuple[BatchSealer, bool]],
) -> Any:
    """:func:`encrypt_table` with the sealer of each column's context from ``sealer_for``
    (and whether to close it after).

    Raises:
        As :func:`encrypt_table`.
    """
    tbl = _as_table(table)
    names = list(dict.fromkeys(columns))
    for name in names:
        _check_column(tbl, name)
    if aad_column is not None and aad_column in names:
        raise ValueError(f"AAD column {aad_column!r} cannot be encrypted itself")
    aad = None if aad_column is None else _aad_values(tbl, aad_column)
    lengths = [b.num_rows for b in tbl.to_batches(max_chunksize=batch_rows)]
    for name in names:
        col, field = tbl.column(name), tbl.schema.field(name)
        headers: list[str] = []
        chunks: list[Any] = []
        if lengths:
            sealer, owned = sealer_for(_column_ctx(context, name))
            try:
                start = 0
                for n in lengths:
                    part_aad = None if aad is None else _one_array(aad.slice(start, n))
                    sealed = sealer.seal(_one_array(col.slice(start, n)), part_aad)
                    headers += [base64.b64encode(h.to_bytes()).decode() for h in sealed.headers]
                    chunks.append(sealed.records)
                    start += n
            finally:
                if owned:
                    sealer.close()
        if any(c.type == pa.large_binary() for c in chunks):
            chunks = [c.cast(pa.large_binary()) for c in chunks]
        out_type = chunks[0].type if chunks else pa.binary()
        doc = {
            "format": FORMAT,
            "type": str(field.type),
            "aad_column": aad_column,
            "headers": headers,
        }
        meta = {**(field.metadata or {}), METADATA_KEY: json.dumps(doc).encode()}
        new_field = pa.field(name, out_type, nullable=True, metadata=meta)
        tbl = tbl.set_column(
            tbl.schema.get_field_index(name), new_field, pa.chunked_array(chunks, out_type)
        )
    return _like_input(tbl, table)


def encrypted_columns(schema: Any) -> list[str]:
    """Names of the columns of ``schema`` (or a table's) that ``encrypt_table`` sealed."""
    schema = getattr(schema, "schema", schema)
    return [f.name for f in schema if f.metadata and METADATA_KEY in f.metadata]


@dataclass(frozen=True, slots=True)
class _Column:
    plain_type: Any
    aad_column: str | None
    headers: list[BatchHeader]


def _column_doc(schema: Any, name: str) -> _Column:
    if name not in schema.names:
        raise ValueError(f"column {name!r} is not in the table ({', '.join(schema.names)})")
    meta = schema.field(name).metadata or {}
    raw = meta.get(METADATA_KEY)
    if raw is None:
        raise FormatError(
            f"column {name!r} has no envelope header in its field metadata: was it written "
            "by encrypt_table, and was the schema's metadata kept?"
        )
    if len(raw) > MAX_METADATA_BYTES:
        raise FormatError(f"column {name!r}: the envelope metadata is too large")
    try:
        doc = json.loads(raw)
        if doc.get("format") != FORMAT:
            raise FormatError(f"column {name!r}: not {FORMAT} metadata")
        plain = _PLAIN_TYPES[doc["type"]]
        aad = doc.get("aad_column")
        headers = [
            BatchHeader.from_bytes(base64.b64decode(h, validate=True)) for h in doc["headers"]
        ]
    except FormatError as exc:
        raise FormatError(f"column {name!r}: {exc}") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise FormatError(f"column {name!r}: the envelope metadata is corrupt") from None
    if aad is not None and not isinstance(aad, str):
        raise FormatError(f"column {name!r}: the envelope metadata is corrupt")
    return _Column(plain, aad, headers)


def _ranges(col: _Column, name: str, row_offset: int, rows: int) -> list[tuple[BatchHeader, int]]:
    """The headers covering rows ``row_offset .. row_offset + rows`` and where each starts
    in the table; the rows must line up with whole batches."""
    out: list[tuple[BatchHeader, int]] = []
    start = 0
    for h in col.headers:
        stop = start + h.record_count
        if start >= row_offset and stop <= row_offset + rows:
            out.append((h, start - row_offset))
        start = stop
    if sum(h.record_count for h, _ in out) != rows or (out and out[0][1] != 0):
        bounds = [0]
        for h in col.headers:
            bounds.append(bounds[-1] + h.record_count)
        raise ValueError(
            f"column {name!r}: rows {row_offset}..{row_offset + rows} do not line up with its "
            f"encrypted batches (which start at rows {_listing(bounds)}); "
            "decrypt whole row groups or record batches, passing the first row as row_offset"
        )
    return out


def _listing(bounds: list[int]) -> str:
    return ", ".join(map(str, bounds[:8])) + (", ..." if len(bounds) > 8 else "")


def decrypt_table(
    env: Envelope,
    table: Any,
    *,
    columns: Sequence[str] | None = None,
    context: Mapping[str, str] | None = None,
    errors: Literal["raise", "collect"] = "raise",
    row_offset: int = 0,
) -> Any:
    """Decrypts the columns ``encrypt_table`` sealed (all found in the field metadata, or
    ``columns``), restoring their type and nulls.

    Args:
        env: an Envelope with the KMS (and cluster secret) the table was sealed with.
        table: a pyarrow Table or RecordBatch: all of it, or a row group / record batch
            of it starting at row ``row_offset``.
        columns: only these columns (default: every encrypted column).
        context: if given, the context each column must have been sealed with.
        errors: ``"collect"`` returns a :class:`TableResult` (bad values null).

    Raises:
        DecryptionError: a value is tampered or moved (the message names the column and
            row), a column holds another column's values, or another key or context;
            :class:`~envelope.errors.FormatError` if a column's metadata is missing or
            corrupt, :class:`~envelope.errors.KeyUnavailableError` if it needs a key this
            Envelope lacks (both name the column).
        ValueError: a column does not exist, or the rows do not line up with batches.
        KmsError: the KMS could not be used.
    """
    keys, threads = _internals(env)
    return open_table(
        table,
        columns=columns,
        context=context,
        errors=errors,
        row_offset=row_offset,
        opener_for=lambda expected: (BatchOpener(keys, expected, threads), True),
    )


def open_table(
    table: Any,
    *,
    columns: Sequence[str] | None,
    context: Mapping[str, str] | None,
    errors: Literal["raise", "collect"],
    row_offset: int,
    opener_for: Callable[[Context | None], tuple[BatchOpener, bool]],
) -> Any:
    """:func:`decrypt_table` with each column's opener from ``opener_for`` (and whether
    to close it after).

    Raises:
        As :func:`decrypt_table`.
    """
    if errors not in ("raise", "collect"):
        raise ValueError('errors must be "raise" or "collect"')
    tbl = _as_table(table)
    names = list(columns) if columns is not None else encrypted_columns(tbl.schema)
    failed: dict[str, tuple[int, ...]] = {}
    for name in names:
        info = _column_doc(tbl.schema, name)
        expected = None if context is None else _column_ctx(context, name)
        aad = None
        if info.aad_column is not None:
            if info.aad_column not in tbl.column_names:
                raise ValueError(
                    f"column {name!r} is bound to AAD column {info.aad_column!r}, which is "
                    "not in the table"
                )
            aad = _aad_values(tbl, info.aad_column)
        col = tbl.column(name)
        chunks, bad = [], []
        opener, owned = opener_for(expected)
        try:
            for header, start in _ranges(info, name, row_offset, tbl.num_rows):
                n = header.record_count
                if header.context.get("column") != name:
                    raise DecryptionError(
                        f"decryption failed in column {name!r}: it holds values sealed for "
                        f"column {header.context.get('column')!r}"
                    )
                part = EncryptedBatch((header,), _one_array(col.slice(start, n)), info.plain_type)
                part_aad = None if aad is None else _one_array(aad.slice(start, n))
                try:
                    out = opener.open(part, part_aad, errors)
                except KeyUnavailableError as exc:
                    raise KeyUnavailableError(f"column {name!r}: {exc}") from None
                except FormatError as exc:
                    raise FormatError(f"column {name!r}: {exc}") from None
                except DecryptionError as exc:
                    raise _located(exc, name, start + row_offset) from None
                if isinstance(out, BatchResult):
                    bad += [start + i for i in out.failed]
                    out = out.records
                chunks.append(out)
        finally:
            if owned:
                opener.close()
        failed[name] = tuple(bad)
        field = tbl.schema.field(name)
        meta = {k: v for k, v in (field.metadata or {}).items() if k != METADATA_KEY} or None
        new_field = pa.field(name, info.plain_type, nullable=True, metadata=meta)
        tbl = tbl.set_column(
            tbl.schema.get_field_index(name), new_field, pa.chunked_array(chunks, info.plain_type)
        )
    result = _like_input(tbl, table)
    return TableResult(result, failed) if errors == "collect" else result


def _located(exc: DecryptionError, column: str, first_row: int) -> DecryptionError:
    if exc.index is None:
        return DecryptionError(
            f"decryption failed in column {column!r} (rows from {first_row}): the values, "
            "their key, context or AAD are wrong, or rows were added or dropped"
        )
    row = first_row + exc.index
    return DecryptionError(
        f"decryption failed in column {column!r} at row {row}: the value, its key, its AAD "
        "or its position is wrong",
        index=row,
    )
