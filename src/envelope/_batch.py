"""Record batches: many small values, each stored and decrypted on its own.

One data key (one KMS call) per batch; record ``i`` is sealed with AES-256-GCM under a
batch key and nonce derived as in Cobblestone (own label) and carries its index, so a
database can store the :class:`BatchHeader` once and each record in its own row.
The whole batch goes through the Rust kernel in one call, across all cores.

Accepted shapes, for records and for the optional per-record AAD; outputs keep the
input's shape:

- a ``list`` of bytes-like objects -> ``list[bytes]``;
- ``(data, offsets)``: one buffer and ``n + 1`` offsets (int64, or int32, or a list of
  ints; the Arrow binary layout) -> ``(bytes, memoryview of int64 offsets from 0)``;
- a pyarrow ``BinaryArray`` / ``LargeBinaryArray`` -> the same Arrow type (nulls kept);
- a 2-D C-contiguous numpy ``uint8`` array of fixed-width rows -> 2-D ``uint8`` array.
"""

from __future__ import annotations

import array
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from envelope import _native
from envelope._format.batch import BatchHeaderFields, decode, digest, encode
from envelope._format.context import Context
from envelope.errors import ConfigError, DecryptionError

if TYPE_CHECKING:
    from envelope._envelope import Envelope

__all__ = [
    "RECORD_OVERHEAD",
    "BatchHeader",
    "BatchResult",
    "EncryptedBatch",
]

#: Bytes each sealed record adds: a 4-byte index and a 16-byte tag.
RECORD_OVERHEAD: int = _native.RECORD_OVERHEAD
#: Records per batch; larger inputs become several batches (tests lower it).
MAX_RECORDS_PER_BATCH: int = _native.MAX_BATCH_RECORDS


class BatchHeader:
    """The serialized header of one batch: wrapped data key, context, split, salt,
    commitment, record count. Safe to store next to the records.

    A header from :meth:`Envelope.encrypt_batch` or :meth:`Envelope.batch_header`
    holds the batch key and can :meth:`decrypt_record`; one from :meth:`from_bytes`
    only describes the batch.
    """

    __slots__ = ("_bytes", "_cipher", "_fields")

    def __init__(
        self, fields: BatchHeaderFields, cipher: _native.BatchCipher | None = None
    ) -> None:
        self._fields = fields
        self._bytes = encode(fields)
        self._cipher = cipher

    @classmethod
    def from_bytes(cls, blob: bytes | bytearray | memoryview) -> BatchHeader:
        """Parses a stored header (no key: pass it to :meth:`Envelope.batch_header`).

        Raises:
            FormatError: not a batch header this version reads.
        """
        return cls(decode(blob))

    def to_bytes(self) -> bytes:
        """The header's bytes, to store once per batch."""
        return self._bytes

    @property
    def fields(self) -> BatchHeaderFields:
        """The parsed header fields."""
        return self._fields

    @property
    def context(self) -> dict[str, str]:
        """The batch's encryption context."""
        return dict(self._fields.context)

    @property
    def record_count(self) -> int:
        """How many records the batch holds."""
        return self._fields.record_count

    @property
    def cluster_secret_id(self) -> str | None:
        """The cluster-secret part the batch needs, if split."""
        return self._fields.split.cluster_secret_id

    def decrypt_record(
        self, record: bytes | bytearray | memoryview, aad: bytes | None = None
    ) -> bytes:
        """Decrypts one record of this batch alone (for example one database row).

        Args:
            record: the sealed record.
            aad: the record's AAD, if it was sealed with one (e.g. the row's primary key).

        Raises:
            DecryptionError: the record is tampered, belongs to another batch, or its
                AAD differs.
            ConfigError: this header holds no key (use :meth:`Envelope.batch_header`).
        """
        if self._cipher is None:
            raise ConfigError(
                "this BatchHeader holds no key: open it with Envelope.batch_header(header) "
                "before decrypting records"
            )
        index, plaintext = self._cipher.open_record(bytes(record), bytes(aad or b""))
        if index >= self._fields.record_count:
            raise DecryptionError()
        return plaintext

    def __repr__(self) -> str:
        return (
            f"BatchHeader(records={self.record_count}, context={self.context!r}, "
            f"cluster_secret_id={self.cluster_secret_id!r}, "
            f"key={'held' if self._cipher else 'none'})"
        )


@dataclass(frozen=True, slots=True)
class EncryptedBatch:
    """Sealed records in the input's shape, with their header(s).

    ``headers`` has one entry per 2^32 records (almost always exactly one).
    """

    headers: tuple[BatchHeader, ...]
    records: Any

    @property
    def header(self) -> BatchHeader:
        """The batch's header (raises ValueError if the input needed several batches)."""
        if len(self.headers) != 1:
            raise ValueError(f"this input was split into {len(self.headers)} batches; use .headers")
        return self.headers[0]

    @classmethod
    def from_parts(cls, header: bytes | BatchHeader, records: Any) -> EncryptedBatch:
        """Rebuilds a batch from a stored header and its records.

        Raises:
            FormatError: the header does not parse.
        """
        h = header if isinstance(header, BatchHeader) else BatchHeader.from_bytes(header)
        return cls((h,), records)

    def __len__(self) -> int:
        return sum(h.record_count for h in self.headers)


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What ``decrypt_batch(..., errors="collect")`` returns: every record that
    authenticated, in the input's shape, and the positions of those that did not.

    Failed positions are ``None`` in a list, null in Arrow, and zero bytes in buffers and
    numpy rows.
    """

    records: Any
    failed: tuple[int, ...]

    @property
    def ok(self) -> bool:
        """True if every record decrypted."""
        return not self.failed


# -- shapes -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Shaped:
    """Records normalized for the kernel, with what is needed to restore their shape."""

    kind: Literal["list", "buffer", "arrow", "numpy"]
    count: int
    records: Any
    offsets: Any = None
    arrow_large: bool = False
    validity: Any = None
    width: int = 0


def _module(obj: object) -> str:
    return type(obj).__module__.split(".")[0]


def _int64_offsets(offsets: Any) -> Any:
    if isinstance(offsets, (list, tuple)):
        return array.array("q", offsets)
    view = memoryview(offsets)
    if view.itemsize == 8 and view.format in ("q", "l", "<q", "=q", "@q"):
        return offsets
    if view.itemsize == 4 and view.format in ("i", "l", "<i", "=i", "@i"):
        return array.array("q", view.cast("B").cast("i"))
    raise TypeError("offsets must be int64 or int32 values")


def _shape(records: Any, what: str) -> _Shaped:
    if isinstance(records, list):
        return _Shaped("list", len(records), records)
    if isinstance(records, tuple):
        if len(records) != 2:
            raise TypeError(f"{what} given as a tuple must be (data, offsets)")
        data, offsets = records
        offsets = _int64_offsets(offsets)
        n = len(memoryview(offsets)) - 1
        if n < 0:
            raise ValueError(f"{what} offsets must have at least one entry")
        return _Shaped("buffer", n, data, offsets)
    if _module(records) == "pyarrow":
        return _arrow_shape(records, what)
    if _module(records) == "numpy":
        if records.ndim != 2 or records.dtype.name != "uint8":
            raise TypeError(
                f"a numpy {what} array must be 2-D uint8 (one fixed-width row per record)"
            )
        import numpy as np  # noqa: PLC0415 - optional dependency, present if numpy input is

        rows = np.ascontiguousarray(records)
        n, width = rows.shape
        offsets = (
            np.arange(0, (n + 1) * width, width, dtype=np.int64)
            if width
            else np.zeros(n + 1, np.int64)
        )
        return _Shaped("numpy", n, rows, offsets, width=width)
    raise TypeError(
        f"{what} must be a list of bytes-like objects, a (data, offsets) tuple, a pyarrow "
        "binary array or a 2-D numpy uint8 array"
    )


def _arrow_shape(arr: Any, what: str) -> _Shaped:
    import pyarrow as pa  # noqa: PLC0415 - optional dependency
    import pyarrow.compute as pc  # noqa: PLC0415

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type not in (pa.binary(), pa.large_binary()):
        raise TypeError(f"a pyarrow {what} array must be binary or large_binary, not {arr.type}")
    n = len(arr)
    large = arr.type == pa.large_binary()
    _, offsets_buf, data_buf = arr.buffers()
    if data_buf is None:
        data_buf = pa.py_buffer(b"")
    width = 8 if large else 4
    raw = pa.Array.from_buffers(
        pa.int64() if large else pa.int32(), n + 1, [None, offsets_buf], offset=arr.offset
    )
    if large:
        offsets = memoryview(offsets_buf).cast("B")[
            arr.offset * width : (arr.offset + n + 1) * width
        ]
    else:
        offsets = memoryview(raw.cast(pa.int64()).buffers()[1]).cast("B")[: (n + 1) * 8]
    validity = pc.is_valid(arr).buffers()[1] if arr.null_count else None
    # Arrow exports its buffers as signed bytes: view them as what they hold.
    data = memoryview(data_buf).cast("B")
    return _Shaped("arrow", n, data, offsets.cast("q"), arrow_large=large, validity=validity)


def _payload_bytes(shape: _Shaped) -> int | None:
    """Plaintext bytes of a batch, for the cache's byte limit (None if unknown)."""
    if shape.kind == "list":
        return sum(memoryview(r).nbytes for r in shape.records)
    try:
        return memoryview(shape.records).nbytes
    except TypeError:
        return None


def _restore(shape: _Shaped, out: Any, width_delta: int, failed: Sequence[int] = ()) -> Any:
    if shape.kind == "list":
        if failed:
            out = list(out)
            for i in failed:
                out[i] = None
        return out
    data, offsets = out
    if shape.kind == "buffer":
        return data, memoryview(offsets).cast("q")
    if shape.kind == "numpy":
        import numpy as np  # noqa: PLC0415

        return np.frombuffer(data, dtype=np.uint8).reshape(shape.count, shape.width + width_delta)
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    validity = shape.validity
    if failed:
        bad = pa.array([True] * shape.count)
        mask = [True] * shape.count
        for i in failed:
            mask[i] = False
        bad = pa.array(mask)
        if validity is not None:
            current = pa.Array.from_buffers(pa.bool_(), shape.count, [None, validity])
            bad = pc.and_(bad, current)
        validity = bad.buffers()[1]
    offsets_buf = pa.py_buffer(offsets)
    typ = pa.large_binary()
    if not shape.arrow_large:
        as64 = pa.Array.from_buffers(pa.int64(), shape.count + 1, [None, offsets_buf])
        try:
            offsets_buf = as64.cast(pa.int32()).buffers()[1]
            typ = pa.binary()
        except pa.ArrowInvalid:
            typ = pa.large_binary()  # outputs past 2 GiB need 64-bit offsets
    return pa.Array.from_buffers(typ, shape.count, [validity, offsets_buf, pa.py_buffer(data)])


def _slice(records: Any, start: int, stop: int) -> Any:
    """Records start..stop of any accepted shape (for inputs beyond one batch)."""
    if isinstance(records, list):
        return records[start:stop]
    if isinstance(records, tuple):
        data, offsets = records
        return data, memoryview(_int64_offsets(offsets)).cast("B").cast("q")[start : stop + 1]
    if _module(records) == "pyarrow":
        return records.slice(start, stop - start)
    return records[start:stop]


def _concat(parts: list[Any]) -> Any:
    first = parts[0]
    if len(parts) == 1:
        return first
    if isinstance(first, list):
        return [r for p in parts for r in p]
    if isinstance(first, tuple):
        data = b"".join(bytes(p[0]) for p in parts)
        offsets = array.array("q", [0])
        base = 0
        for p_data, p_offsets in parts:
            offsets.extend(base + o for o in list(p_offsets)[1:])
            base += len(p_data)
        return data, memoryview(offsets)
    if _module(first) == "pyarrow":
        import pyarrow as pa  # noqa: PLC0415

        return pa.concat_arrays(parts)
    import numpy as np  # noqa: PLC0415

    return np.concatenate(parts)


def _count(records: Any) -> int:
    return _shape(records, "records").count


# -- encrypt / decrypt --------------------------------------------------------------------


def encrypt(
    env: Envelope, records: Any, aad: Any, ctx: Context, threads: int, *, key_ref: str | None = None
) -> EncryptedBatch:
    """Envelope.encrypt_batch: one KMS call per 2^32 records."""
    total = _count(records)
    if aad is not None and _count(aad) != total:
        raise ValueError(f"aad has {_count(aad)} entries for {total} records")
    headers, parts = [], []
    step = MAX_RECORDS_PER_BATCH
    for start in range(0, max(total, 1), step):
        stop = min(start + step, total)
        part = records if total <= step else _slice(records, start, stop)
        part_aad = aad if (aad is None or total <= step) else _slice(aad, start, stop)
        header, sealed = _encrypt_one(env, part, part_aad, ctx, threads=threads, key_ref=key_ref)
        headers.append(header)
        parts.append(sealed)
    return EncryptedBatch(tuple(headers), _concat(parts))


def _encrypt_one(
    env: Envelope, records: Any, aad: Any, ctx: Context, *, threads: int, key_ref: str | None
) -> tuple[BatchHeader, Any]:
    shape = _shape(records, "records")
    ashape = None if aad is None else _shape(aad, "aad")
    nbytes = _payload_bytes(shape)
    slots, split, input_key = env._keys.fresh(ctx, key_ref=key_ref, nbytes=nbytes)
    salt = secrets.token_bytes(24)
    draft = BatchHeaderFields(ctx, split, shape.count, salt, bytes(32), slots)
    try:
        cipher, commitment = _native.BatchCipher.derive(bytes(input_key), salt, digest(draft))
    finally:
        input_key[:] = bytes(len(input_key))
    fields = BatchHeaderFields(ctx, split, shape.count, salt, commitment, slots)
    out = cipher.seal(
        shape.records,
        shape.offsets,
        None if ashape is None else ashape.records,
        None if ashape is None else ashape.offsets,
        threads,
    )
    return BatchHeader(fields, cipher), _restore(shape, out, RECORD_OVERHEAD)


def open_header(
    env: Envelope, header: bytes | bytearray | memoryview | BatchHeader, expected: Any
) -> BatchHeader:
    """Envelope.batch_header: unwrap the batch key (one KMS call)."""
    h = header if isinstance(header, BatchHeader) else BatchHeader.from_bytes(header)
    f = h.fields
    input_key = env._keys.input_key(f.slots, f.split, f.context, expected)
    try:
        cipher = _native.BatchCipher.verify(bytes(input_key), f.salt, f.commitment, digest(f))
    finally:
        input_key[:] = bytes(len(input_key))
    return BatchHeader(f, cipher)


def decrypt(
    env: Envelope,
    batch: EncryptedBatch,
    aad: Any,
    expected: Any,
    *,
    errors: Literal["raise", "collect"],
    threads: int,
) -> Any:
    """Envelope.decrypt_batch."""
    if errors not in ("raise", "collect"):
        raise ValueError('errors must be "raise" or "collect"')
    total = _count(batch.records)
    if total != len(batch):
        raise DecryptionError()  # records added or dropped
    if aad is not None and _count(aad) != total:
        raise ValueError(f"aad has {_count(aad)} entries for {total} records")
    parts, failed_all = [], []
    start = 0
    for h in batch.headers:
        stop = start + h.record_count
        single = len(batch.headers) == 1
        part = batch.records if single else _slice(batch.records, start, stop)
        part_aad = aad if (aad is None or single) else _slice(aad, start, stop)
        opened = open_header(env, h, expected)
        shape = _shape(part, "records")
        ashape = None if part_aad is None else _shape(part_aad, "aad")
        assert opened._cipher is not None
        out, status, failed = opened._cipher.open(
            shape.records,
            shape.offsets,
            None if ashape is None else ashape.records,
            None if ashape is None else ashape.offsets,
            threads,
        )
        bad = [start + i for i, s in enumerate(status) if s] if failed else []
        if bad and errors == "raise":
            raise DecryptionError(index=bad[0])
        failed_all += bad
        parts.append(_restore(shape, out, -RECORD_OVERHEAD, [i - start for i in bad]))
        start = stop
    records = _concat(parts)
    if errors == "collect":
        return BatchResult(records, tuple(failed_all))
    return records
