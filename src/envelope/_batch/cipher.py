"""Sealing and opening record batches: one data key (one KMS call) per batch, all
records through the kernel's ``BatchCipher`` in one call, across all cores."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, Literal

from envelope import _native, _telemetry
from envelope._batch.records import RECORD_OVERHEAD, BatchHeader, BatchResult, EncryptedBatch
from envelope._batch.shapes import (
    arrow_type,
    concat,
    count,
    failures,
    payload_bytes,
    restore,
    restore_type,
    shape_of,
    slice_records,
)
from envelope._format.batch import GROUP_ID_LEN, BatchHeaderFields, digest, new_salt
from envelope._format.context import Context
from envelope._format.message import KeySlot, SplitDescriptor
from envelope._keys.source import KeySource, wipe
from envelope.errors import DecryptionError

__all__ = ["MAX_RECORDS_PER_BATCH", "decrypt", "encrypt", "open_header", "seal_one", "verify"]

#: Records per batch; larger inputs become several batches (tests lower it).
MAX_RECORDS_PER_BATCH: int = _native.MAX_BATCH_RECORDS


def encrypt(
    keys: KeySource,
    records: Any,
    aad: Any,
    ctx: Context,
    threads: int,
    *,
    key_ref: str | None = None,
) -> EncryptedBatch:
    """Envelope.encrypt_batch: one KMS call per 2^32 records.

    Raises:
        KmsError: no data key. TypeError, ValueError: an unsupported shape, bad offsets,
            or an ``aad`` whose length differs from ``records``.
    """
    total = count(records)
    if aad is not None and count(aad) != total:
        raise ValueError(f"aad has {count(aad)} entries for {total} records")
    headers, parts = [], []
    step = MAX_RECORDS_PER_BATCH
    starts = range(0, max(total, 1), step)
    group = (secrets.token_bytes(GROUP_ID_LEN), len(starts))
    for index, start in enumerate(starts):
        stop = min(start + step, total)
        part = records if total <= step else slice_records(records, start, stop)
        part_aad = aad if (aad is None or total <= step) else slice_records(aad, start, stop)
        header, sealed = _encrypt_one(
            keys, part, part_aad, ctx, threads=threads, key_ref=key_ref, group=(*group, index)
        )
        headers.append(header)
        parts.append(sealed)
    return EncryptedBatch(tuple(headers), concat(parts), arrow_type(records))


def _encrypt_one(
    keys: KeySource,
    records: Any,
    aad: Any,
    ctx: Context,
    *,
    threads: int,
    key_ref: str | None,
    group: tuple[bytes, int, int],
) -> tuple[BatchHeader, Any]:
    shape = shape_of(records, "records")
    # For a list this is a Python pass over every record: only when something uses it
    # (the encryption cache's byte limit, or a real meter provider).
    counted = shape.kind != "list" or keys.cache is not None or _telemetry.measuring()
    nbytes = payload_bytes(shape) if counted else None
    slots, split, input_key = keys.fresh(ctx, key_ref=key_ref, nbytes=nbytes)
    try:
        sealed = seal_one(
            slots, split, input_key, ctx, records, aad=aad, threads=threads, group=group
        )
    finally:
        wipe(input_key)
    if _telemetry.measuring():
        processed("encrypt_batch", nbytes or 0, shape.count)
    return sealed


def processed(operation: str, nbytes: int, records: int) -> None:
    """Reports ``records`` batch records of ``nbytes`` plaintext bytes in all
    (:mod:`envelope._telemetry`; call only when ``_telemetry.measuring()``)."""
    _telemetry.processed(operation, nbytes, records)
    _telemetry.data_log.debug(
        "%s: %d records, %d bytes",
        operation,
        records,
        nbytes,
        extra={"operation": operation, "records": records, "bytes": nbytes},
    )


def seal_one(
    slots: tuple[KeySlot, ...],
    split: SplitDescriptor,
    input_key: bytearray,
    ctx: Context,
    records: Any,
    *,
    aad: Any,
    threads: int,
    group: tuple[bytes, int, int] | None = None,
) -> tuple[BatchHeader, Any]:
    """One batch (at most 2^32 records) under ``input_key``: a fresh salt, hence a fresh
    batch key, nonces and commitment, whatever else ``input_key`` sealed. ``group`` is
    (group id, number of sub-batches, this one's index); None: a group of one."""
    shape = shape_of(records, "records")
    ashape = None if aad is None else shape_of(aad, "aad")
    salt = new_salt()
    gid, parts, index = group if group is not None else (secrets.token_bytes(GROUP_ID_LEN), 1, 0)
    draft = BatchHeaderFields(ctx, split, shape.count, salt, bytes(32), slots, gid, index, parts)
    cipher, commitment = _native.BatchCipher.derive(bytes(input_key), salt, digest(draft))
    fields = BatchHeaderFields(ctx, split, shape.count, salt, commitment, slots, gid, index, parts)
    out = cipher.seal(
        shape.records,
        shape.offsets,
        None if ashape is None else ashape.records,
        None if ashape is None else ashape.offsets,
        threads,
    )
    return BatchHeader(fields, cipher), restore(shape, out, RECORD_OVERHEAD)


def open_header(
    keys: KeySource,
    header: bytes | bytearray | memoryview | BatchHeader,
    expected: Context | None,
) -> BatchHeader:
    """Envelope.batch_header: unwrap the batch key (one KMS call).

    Raises:
        FormatError: not a batch header. DecryptionError, KmsError: as Envelope.decrypt.
    """
    h = header if isinstance(header, BatchHeader) else BatchHeader.from_bytes(header)
    return BatchHeader(h.fields, _cipher(keys, h.fields, expected))


def _cipher(
    keys: KeySource, fields: BatchHeaderFields, expected: Context | None
) -> _native.BatchCipher:
    """The batch key of ``fields``, checked against its commitment."""
    input_key = keys.input_key(fields.slots, fields.split, fields.context, expected)
    try:
        return verify(input_key, fields)
    finally:
        wipe(input_key)


def verify(input_key: bytearray, fields: BatchHeaderFields) -> _native.BatchCipher:
    """The batch key of ``fields`` under ``input_key``, checked against its commitment.

    Raises:
        DecryptionError: the commitment does not match (another key, a forged header).
    """
    return _native.BatchCipher.verify(
        bytes(input_key), fields.salt, fields.commitment, digest(fields)
    )


def decrypt(
    keys: KeySource,
    batch: EncryptedBatch,
    aad: Any,
    expected: Context | None,
    *,
    errors: Literal["raise", "collect"],
    threads: int,
    cipher_of: Callable[[BatchHeaderFields], _native.BatchCipher] | None = None,
) -> Any:
    """Envelope.decrypt_batch (``cipher_of``: where batch keys come from, default one
    unwrap per header).

    Raises:
        DecryptionError: a record or the header is bad (see Envelope.decrypt_batch).
        KmsError: the KMS could not be used. ValueError: a bad ``errors`` or ``aad``.
    """
    if errors not in ("raise", "collect"):
        raise ValueError('errors must be "raise" or "collect"')
    total = count(batch.records)
    if total != len(batch):
        raise DecryptionError()  # records added or dropped
    if not batch.headers:
        raise DecryptionError()
    first = batch.headers[0].fields
    if any(
        (h.fields.group, h.fields.part, h.fields.parts) != (first.group, i, len(batch.headers))
        for i, h in enumerate(batch.headers)
    ):
        raise DecryptionError()  # a sub-batch dropped, added, moved or from another batch
    if aad is not None and count(aad) != total:
        raise ValueError(f"aad has {count(aad)} entries for {total} records")
    parts, failed_all = [], []
    start = 0
    for h in batch.headers:
        stop = start + h.record_count
        single = len(batch.headers) == 1
        part = batch.records if single else slice_records(batch.records, start, stop)
        part_aad = aad if (aad is None or single) else slice_records(aad, start, stop)
        cipher = _cipher(keys, h.fields, expected) if cipher_of is None else cipher_of(h.fields)
        shape = shape_of(part, "records")
        ashape = None if part_aad is None else shape_of(part_aad, "aad")
        out, status, failed = cipher.open(
            shape.records,
            shape.offsets,
            None if ashape is None else ashape.records,
            None if ashape is None else ashape.offsets,
            threads,
        )
        bad = [start + i for i in failures(shape, status)] if failed else []
        if _telemetry.measuring():  # a pass over list records: only when reported
            sealed_bytes = (payload_bytes(shape) or 0) - RECORD_OVERHEAD * shape.count
            processed("decrypt_batch", max(0, sealed_bytes), shape.count - len(bad))
        if bad and errors == "raise":
            raise DecryptionError(index=bad[0])
        failed_all += bad
        parts.append(restore(shape, out, -RECORD_OVERHEAD, [i - start for i in bad]))
        start = stop
    records = concat(parts)
    if batch.plain_type is not None:
        records = restore_type(records, batch.plain_type)
    if errors == "collect":
        return BatchResult(records, tuple(failed_all))
    return records
