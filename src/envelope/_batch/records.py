"""The batch types callers hold: :class:`BatchHeader` (stored once per batch),
:class:`EncryptedBatch` (header(s) and sealed records), :class:`BatchResult`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envelope import _native
from envelope._format.batch import BatchHeaderFields, decode, encode
from envelope.errors import ConfigError, DecryptionError

__all__ = ["RECORD_OVERHEAD", "BatchHeader", "BatchResult", "EncryptedBatch"]

#: Bytes each sealed record adds: a 4-byte index and a 16-byte tag.
RECORD_OVERHEAD: int = _native.RECORD_OVERHEAD


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

    ``headers`` has one entry per 2^32 records (almost always exactly one). For a pyarrow
    input, ``records`` is binary (or large_binary) and ``plain_type`` the input's Arrow
    type (string, string_view, ...), which decryption restores.
    """

    headers: tuple[BatchHeader, ...]
    records: Any
    plain_type: Any = None

    @property
    def header(self) -> BatchHeader:
        """The batch's header (raises ValueError if the input needed several batches)."""
        if len(self.headers) != 1:
            raise ValueError(f"this input was split into {len(self.headers)} batches; use .headers")
        return self.headers[0]

    @classmethod
    def from_parts(
        cls, header: bytes | BatchHeader, records: Any, plain_type: Any = None
    ) -> EncryptedBatch:
        """Rebuilds a batch from a stored header and its records (``plain_type``: the
        Arrow type to decrypt pyarrow records to, e.g. ``pa.string()``).

        Raises:
            FormatError: the header does not parse.
        """
        h = header if isinstance(header, BatchHeader) else BatchHeader.from_bytes(header)
        return cls((h,), records, plain_type)

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
