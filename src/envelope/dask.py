"""Dask DataFrames with encrypted columns (needs ``envelope-kms[dask]``).

``env`` is an :class:`~envelope.Envelope` (it pickles as references to its configuration,
never key bytes) or the settings model (:class:`~envelope.settings.Settings`); each worker
process builds its own Envelope from it once, with its own KMS client and credentials.

Two strategies, for where KMS calls happen:

- ``"partition"`` (default): every partition draws its own data key (one KMS call per
  encrypted column per partition) and every partition decrypts with its own unwrap.
  KMS calls grow with the partition count; a leaked data key exposes one partition.
- ``"job"``: the client draws one data key per encrypted column for the whole job and
  broadcasts the (public) batch header; each worker process unwraps it once and keeps
  the key in memory while it seals its partitions, each still a batch of its own with
  its own salt and batch key. KMS calls: one per column plus one per worker process,
  whatever the partition count (decryption likewise: one unwrap per worker process);
  a leaked data key exposes the whole job's column.

Frames in memory: :func:`encrypt_columns` replaces each column by its ciphertext
(``binary``) and adds ``<column>.envelope`` holding each row's batch header (the same
value for a whole partition; dictionary-encoded in Parquet, so it costs next to nothing).
:func:`decrypt_columns` reverses it, provided each partition still holds whole batches
(decrypt before filtering or repartitioning). Parquet on disk: :func:`to_parquet` writes
one file per partition atomically (headers in the Arrow field metadata, see
:mod:`envelope.arrow`) and :func:`read_parquet` reads such a directory back, decrypting.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import pickle
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import dask
import dask.dataframe as dd
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from envelope._atomic import atomic_output
from envelope._batch.sealer import BatchOpener, BatchSealer
from envelope._envelope import Envelope
from envelope._format.context import Context
from envelope.arrow._table import (
    FORMAT,
    METADATA_KEY,
    _column_ctx,
    _internals,
    encrypted_columns,
    open_table,
    seal_table,
)
from envelope.errors import ConfigError, DecryptionError, EnvelopeError

if TYPE_CHECKING:
    from envelope.settings import Settings

__all__ = [
    "HEADER_SUFFIX",
    "Strategy",
    "decrypt_columns",
    "encrypt_columns",
    "read_parquet",
    "to_parquet",
]

Strategy = Literal["partition", "job"]
#: Suffix of the column that holds each row's batch header in a frame in memory.
HEADER_SUFFIX = ".envelope"
_PART = re.compile(r"^part\.(\d+)\.parquet$")
_MEMO_SIZE = 16

# -- per worker process: one Envelope per configuration, job keys while a job runs ------

_lock = threading.Lock()
_envs: OrderedDict[bytes, Envelope] = OrderedDict()
_job_keys: OrderedDict[tuple[bytes, str, Context], BatchSealer | BatchOpener] = OrderedDict()


def _spec(env: Envelope | Settings) -> bytes:
    """What tasks carry: the pickled Envelope (references only) or settings.

    Raises:
        pickle.PicklingError: the Envelope holds raw key material (see Envelope.__reduce__).
    """
    if isinstance(env, Envelope):
        return pickle.dumps(env)
    return pickle.dumps(("settings", env))


def _env_of(spec: bytes) -> Envelope:
    with _lock:
        env = _envs.get(spec)
        if env is not None:
            _envs.move_to_end(spec)
            return env
    loaded = pickle.loads(spec)  # noqa: S301 - our own bytes, from the client
    if isinstance(loaded, tuple):
        loaded = Envelope.from_settings(loaded[1])
    assert isinstance(loaded, Envelope)
    with _lock:
        _envs[spec] = loaded
        while len(_envs) > _MEMO_SIZE:
            _envs.popitem(last=False)
    return loaded


def _job_key(spec: bytes, job: str, ctx: Context, header: bytes | None) -> Any:
    """This process's sealer (``header`` given) or opener for column context ``ctx`` of
    ``job``: the data key is unwrapped once per process and kept while the job runs."""
    memo = (spec, job, ctx)
    with _lock:
        found = _job_keys.get(memo)
        if found is not None:
            return found
    keys, threads = _internals(_env_of(spec))
    made: BatchSealer | BatchOpener
    if header is not None:
        made = BatchSealer.like(keys, header, ctx, threads)
    else:
        made = BatchOpener(keys, None, threads)
    with _lock:
        _job_keys[memo] = made
        while len(_job_keys) > _MEMO_SIZE:
            _job_keys.popitem(last=False)[1].close()
    return made


def _release_job(job: str) -> None:
    """Zeroes and drops this process's keys of ``job`` (run on every worker at the end)."""
    with _lock:
        for memo in [m for m in _job_keys if m[1] == job]:
            _job_keys.pop(memo).close()


def _job_headers(
    env: Envelope, columns: Sequence[str], context: Mapping[str, str] | None
) -> dict[str, bytes]:
    """One data key per column for a whole job: a header of zero records each."""
    keys, threads = _internals(env)
    out = {}
    for name in columns:
        with BatchSealer.fresh(keys, _column_ctx(context, name), threads) as sealer:
            out[name] = sealer.seal([]).header.to_bytes()
    return out


def _plan(
    env: Envelope | Settings,
    columns: Sequence[str],
    context: Mapping[str, str] | None,
    strategy: Strategy,
    encrypting: bool,
) -> tuple[bytes, str | None, dict[str, bytes] | None]:
    if strategy not in ("partition", "job"):
        raise ValueError('strategy must be "partition" or "job"')
    spec = _spec(env)
    if strategy == "partition":
        return spec, None, None
    job = secrets.token_hex(8)
    if not encrypting:
        return spec, job, None
    client_env = env if isinstance(env, Envelope) else _env_of(spec)
    return spec, job, _job_headers(client_env, columns, context)


def _sealers(spec: bytes, job: str | None, headers: dict[str, bytes] | None) -> Any:
    if job is None or headers is None:
        keys, threads = _internals(_env_of(spec))
        return lambda ctx: (BatchSealer.fresh(keys, ctx, threads), True)
    by_ctx = {}
    for name, h in headers.items():
        sealer = _job_key(spec, job, _column_ctx_of(h), h)
        by_ctx[_column_ctx_of(h)] = sealer
        del name
    return lambda ctx: (by_ctx[ctx], False)


def _column_ctx_of(header: bytes) -> Context:
    from envelope._batch import BatchHeader  # noqa: PLC0415

    return BatchHeader.from_bytes(header).fields.context


def _openers(spec: bytes, job: str | None) -> Any:
    keys, threads = _internals(_env_of(spec))
    if job is None:
        return lambda expected: (BatchOpener(keys, expected, threads), True)
    return lambda expected: (_job_key(spec, job, expected or (), None), False)


def _finish(job: str | None) -> None:
    if job is None:
        return
    with contextlib.suppress(ValueError):  # no distributed client: the local scheduler
        from distributed import get_client  # noqa: PLC0415

        get_client().run(_release_job, job)
    _release_job(job)


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
        sealer_for=_sealers(spec, job, headers),
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


def _check(ddf: dd.DataFrame, columns: Sequence[str], aad_column: str | None) -> None:
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
    _check(ddf, names, aad_column)
    spec, job, headers = _plan(env, names, context, strategy, encrypting=True)
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
        runs = pa.compute.run_end_encode(headers) if len(headers) else None
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
            opener_for=_openers(spec, job),
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
    _check(ddf, [*names, *(n + HEADER_SUFFIX for n in names)], aad_column)
    spec, job, _ = _plan(env, names, context, strategy, encrypting=False)
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
        sealer_for=_sealers(spec, job, headers),
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
    task is retried); runs the job and returns the files written.

    Raises:
        ValueError, pickle.PicklingError: as :func:`encrypt_columns`. ConfigError: the
            directory cannot be written. TypeError, KmsError: as
            :func:`envelope.arrow.encrypt_table`.
    """
    names = list(dict.fromkeys(columns))
    _check(ddf, names, aad_column)
    directory = os.fspath(path)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {directory}: {exc.strerror}") from None
    spec, job, headers = _plan(env, names, context, strategy, encrypting=True)
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
        _finish(job)
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
            opener_for=_openers(spec, job),
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
    spec, job, _ = _plan(env, [], context, strategy, encrypting=False)
    meta = plain.empty_table().to_pandas()
    return dd.from_map(_read_part, files, args=(spec, context, job), meta=meta)
