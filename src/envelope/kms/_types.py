"""Values that cross the KMS protocol."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DATA_KEY_BYTES", "DataKey", "WrappedKey"]

DATA_KEY_BYTES = 32


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A data key encrypted under a KEK: safe to store and to print."""

    provider: str
    key_id: str
    blob: bytes

    def __repr__(self) -> str:
        return (
            f"WrappedKey(provider={self.provider!r}, key_id={self.key_id!r}, "
            f"blob=<{len(self.blob)} bytes>)"
        )


class DataKey:
    """A plaintext data key with its wrapped form.

    The plaintext lives in a ``bytearray`` that :meth:`wipe` (or leaving a ``with``
    block) zeroes. It never appears in ``repr``.

    Args:
        plaintext: the 32 key bytes (kept, not copied: wiping zeroes the caller's buffer).
        wrapped: the same key wrapped by a KMS.

    Raises:
        ValueError: ``plaintext`` is not 32 bytes.
    """

    __slots__ = ("_plaintext", "wrapped")

    def __init__(self, plaintext: bytearray, wrapped: WrappedKey) -> None:
        if len(plaintext) != DATA_KEY_BYTES:
            raise ValueError("a data key is 32 bytes")
        self._plaintext = plaintext
        self.wrapped = wrapped

    @property
    def plaintext(self) -> bytearray:
        """The key bytes (a live view: wiping the DataKey zeroes it)."""
        return self._plaintext

    def wipe(self) -> None:
        """Overwrites the plaintext key with zeros."""
        self._plaintext[:] = bytes(len(self._plaintext))

    def __enter__(self) -> DataKey:
        return self

    def __exit__(self, *exc: object) -> None:
        self.wipe()

    def __repr__(self) -> str:
        return f"DataKey(wrapped={self.wrapped!r})"
