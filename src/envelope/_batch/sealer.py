"""``BatchSealer``: many batches under one data key (one KMS call for all of them), and
``BatchOpener``: many batches opened with one unwrap per data key.

A table's columns and record batches, or a distributed job's partitions, are each sealed
as a batch of their own, with their own header, so each stays independently decryptable;
the sealer draws the data key once and every batch then draws a fresh 192-bit salt, hence
its own batch key, nonces and commitment (the argument is the data-key cache's: see
docs/design.md). The input key lives in this object only, and is zeroed by :meth:`close`.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Literal

from envelope import _native, _telemetry
from envelope._batch.cipher import MAX_RECORDS_PER_BATCH, decrypt, processed, seal_one, verify
from envelope._batch.records import BatchHeader, EncryptedBatch
from envelope._batch.shapes import arrow_type, concat, count, payload_bytes, shape_of, slice_records
from envelope._format.batch import BatchHeaderFields
from envelope._format.context import Context
from envelope._format.message import KeySlot, SplitDescriptor
from envelope._keys.source import KeySource, wipe
from envelope.errors import ConfigError

__all__ = ["BatchOpener", "BatchSealer"]


class BatchSealer:
    """Seals batches under one data key; use as a context manager (see the module)."""

    __slots__ = ("_closed", "_ctx", "_input_key", "_slots", "_split", "_threads", "sealed")

    def __init__(
        self,
        slots: tuple[KeySlot, ...],
        split: SplitDescriptor,
        ctx: Context,
        input_key: bytearray,
        threads: int,
    ) -> None:
        self._slots, self._split, self._ctx = slots, split, ctx
        self._input_key = input_key
        self._threads = threads
        self._closed = False
        #: Batches sealed so far.
        self.sealed = 0

    @classmethod
    def fresh(
        cls, keys: KeySource, ctx: Context, threads: int, *, key_ref: str | None = None
    ) -> BatchSealer:
        """A sealer over a new data key (one KMS call; ``key_ref``: a stored key).

        Raises:
            KmsError, ConfigError, KeyUnavailableError: as Envelope.encrypt_batch.
        """
        slots, split, input_key = keys.fresh(ctx, key_ref=key_ref)
        return cls(slots, split, ctx, input_key, threads)

    @classmethod
    def like(
        cls, keys: KeySource, header: bytes | BatchHeader, expected: Context, threads: int
    ) -> BatchSealer:
        """A sealer over the data key of ``header`` (one unwrap, or none through the
        Envelope's cache): new batches share its key slots but not its batch key.

        Raises:
            DecryptionError: the header's context is not ``expected``, or as
                Envelope.batch_header. KmsError: the KMS could not unwrap.
        """
        h = header if isinstance(header, BatchHeader) else BatchHeader.from_bytes(header)
        f = h.fields
        input_key = keys.input_key(f.slots, f.split, f.context, expected)
        return cls(f.slots, f.split, f.context, input_key, threads)

    def seal(self, records: Any, aad: Any = None) -> EncryptedBatch:
        """``records`` (any shape ``encrypt_batch`` takes) as a batch of their own.

        Raises:
            ConfigError: the sealer is closed. TypeError, ValueError: as encrypt_batch.
        """
        if self._closed:
            raise ConfigError("this BatchSealer is closed")
        total = count(records)
        if aad is not None and count(aad) != total:
            raise ValueError(f"aad has {count(aad)} entries for {total} records")
        headers, parts = [], []
        step = MAX_RECORDS_PER_BATCH
        for start in range(0, max(total, 1), step):
            stop = min(start + step, total)
            part = records if total <= step else slice_records(records, start, stop)
            part_aad = aad if (aad is None or total <= step) else slice_records(aad, start, stop)
            header, out = seal_one(
                self._slots,
                self._split,
                self._input_key,
                self._ctx,
                part,
                aad=part_aad,
                threads=self._threads,
            )
            headers.append(header)
            parts.append(out)
        self.sealed += len(headers)
        if _telemetry.measuring():  # a pass over list records: only when reported
            processed("encrypt_batch", payload_bytes(shape_of(records, "records")) or 0, total)
        return EncryptedBatch(tuple(headers), concat(parts), arrow_type(records))

    def close(self) -> None:
        """Zeroes the input key; the sealer seals nothing more."""
        wipe(self._input_key)
        self._closed = True

    def __enter__(self) -> BatchSealer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"BatchSealer(context={dict(self._ctx)!r}, sealed={self.sealed})"


class BatchOpener:
    """Decrypts batches, unwrapping each distinct data key once (key slots, split and
    context) for as long as it is open; use as a context manager.

    Args:
        keys: the Envelope's key source. expected: the context every batch must have
            (None: any). threads: kernel threads.
    """

    __slots__ = ("_expected", "_input_keys", "_keys", "_threads")

    def __init__(self, keys: KeySource, expected: Context | None, threads: int) -> None:
        self._keys, self._expected, self._threads = keys, expected, threads
        self._input_keys: dict[object, bytearray] = {}

    def _cipher(self, fields: BatchHeaderFields) -> _native.BatchCipher:
        memo = (fields.slots, fields.split, fields.context)
        input_key = self._input_keys.get(memo)
        if input_key is None:
            input_key = self._keys.input_key(
                fields.slots, fields.split, fields.context, self._expected
            )
            self._input_keys[memo] = input_key
        return verify(input_key, fields)

    def open(
        self, batch: EncryptedBatch, aad: Any = None, errors: Literal["raise", "collect"] = "raise"
    ) -> Any:
        """As Envelope.decrypt_batch.

        Raises:
            DecryptionError, KmsError, ValueError: as Envelope.decrypt_batch.
        """
        return decrypt(
            self._keys,
            batch,
            aad,
            self._expected,
            errors=errors,
            threads=self._threads,
            cipher_of=self._cipher,
        )

    def close(self) -> None:
        """Zeroes every input key held."""
        for key in self._input_keys.values():
            wipe(key)
        self._input_keys.clear()

    def __enter__(self) -> BatchOpener:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
