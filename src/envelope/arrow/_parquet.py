"""Parquet files of tables from ``encrypt_table``: written atomically, read back with
errors that name the file (headers travel in the Arrow schema Parquet stores)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import pyarrow.parquet as pq

from envelope._atomic import atomic_output
from envelope.arrow._table import METADATA_KEY, decrypt_table, encrypt_table
from envelope.errors import ConfigError, DecryptionError, EnvelopeError

if TYPE_CHECKING:
    from envelope._envelope import Envelope

__all__ = ["read_row_group", "read_table", "write_table"]

#: Rows per row group (and per encrypted batch) when none is given: pyarrow's default.
DEFAULT_ROW_GROUP = 1 << 20


def _in_file(exc: EnvelopeError, path: str | os.PathLike[str]) -> EnvelopeError:
    """``exc`` again (same class, same row index), its message naming ``path``."""
    if isinstance(exc, DecryptionError):
        return type(exc)(f"{os.fspath(path)}: {exc}", index=exc.index)
    return type(exc)(f"{os.fspath(path)}: {exc}")


def write_table(
    env: Envelope,
    table: Any,
    path: str | os.PathLike[str],
    columns: Sequence[str],
    *,
    aad_column: str | None = None,
    context: Mapping[str, str] | None = None,
    row_group_size: int = DEFAULT_ROW_GROUP,
    mode: int = 0o600,
    **parquet_options: Any,
) -> None:
    """Encrypts ``columns`` (see :func:`encrypt_table`) and writes a Parquet file
    atomically, one encrypted batch per row group, so each row group decrypts alone.

    Raises:
        ValueError, TypeError: as :func:`encrypt_table` (naming the column).
        KmsError: as :func:`encrypt_table`. ConfigError: the file cannot be written.
    """
    sealed = encrypt_table(
        env, table, columns, aad_column=aad_column, context=context, batch_rows=row_group_size
    )
    try:
        with atomic_output(path, mode=mode) as out:
            pq.write_table(sealed, out, row_group_size=row_group_size, **parquet_options)
    except OSError as exc:
        raise ConfigError(f"cannot write {os.fspath(path)}: {exc.strerror or exc}") from None


def _open(path: str | os.PathLike[str]) -> Any:
    try:
        return pq.ParquetFile(path)
    except OSError as exc:
        raise ConfigError(f"cannot read {os.fspath(path)}: {exc}") from None


def read_table(
    env: Envelope,
    path: str | os.PathLike[str],
    *,
    columns: Sequence[str] | None = None,
    context: Mapping[str, str] | None = None,
    errors: Literal["raise", "collect"] = "raise",
) -> Any:
    """Reads a Parquet file and decrypts its encrypted columns (see :func:`decrypt_table`).

    Args:
        columns: read only these columns (an encrypted column's AAD column is added).

    Raises:
        DecryptionError, KeyUnavailableError, FormatError: as :func:`decrypt_table`,
            the message naming the file and column. ConfigError: unreadable file.
    """
    f = _open(path)
    wanted = _with_aad(f.schema_arrow, columns)
    table = f.read(columns=wanted)
    try:
        return decrypt_table(env, table, context=context, errors=errors)
    except (EnvelopeError, ValueError) as exc:
        raise _wrap(exc, path) from None


def read_row_group(
    env: Envelope,
    path: str | os.PathLike[str],
    index: int,
    *,
    context: Mapping[str, str] | None = None,
    errors: Literal["raise", "collect"] = "raise",
) -> Any:
    """Reads and decrypts one row group alone (written by :func:`write_table`).

    Raises:
        As :func:`read_table`; IndexError: no such row group.
    """
    f = _open(path)
    if not 0 <= index < f.num_row_groups:
        raise IndexError(f"{os.fspath(path)} has {f.num_row_groups} row groups, not {index + 1}")
    offset = sum(f.metadata.row_group(i).num_rows for i in range(index))
    table = f.read_row_group(index)
    try:
        return decrypt_table(env, table, context=context, errors=errors, row_offset=offset)
    except (EnvelopeError, ValueError) as exc:
        raise _wrap(exc, path) from None


def _wrap(exc: Exception, path: str | os.PathLike[str]) -> Exception:
    if isinstance(exc, EnvelopeError):
        return _in_file(exc, path)
    return type(exc)(f"{os.fspath(path)}: {exc}")


def _with_aad(schema: Any, columns: Sequence[str] | None) -> list[str] | None:
    if columns is None:
        return None
    wanted = list(columns)
    for name in columns:
        meta = (schema.field(name).metadata or {}) if name in schema.names else {}
        if METADATA_KEY in meta:
            aad = json.loads(meta[METADATA_KEY]).get("aad_column")
            if aad and aad not in wanted:
                wanted.append(aad)
    return wanted
