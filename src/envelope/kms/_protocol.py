"""The KmsBackend protocol (see :mod:`envelope.kms` for the error contract)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from envelope._format.context import Context
from envelope.kms._types import DataKey, WrappedKey

__all__ = ["KmsBackend"]


@runtime_checkable
class KmsBackend(Protocol):
    """A key-encryption key in some KMS."""

    @property
    def provider_id(self) -> str:
        """Short ASCII name of the backend kind, stored in each key slot (``local``)."""
        ...

    @property
    def key_id(self) -> str:
        """Identifier of the KEK, stored in each key slot; stable across KEK versions."""
        ...

    def matches(self, key_id: str) -> bool:
        """True if a key slot naming ``key_id`` was wrapped by this KEK (or an equivalent
        one, such as a multi-region replica). Decryption uses only slots that match."""
        ...

    def generate_data_key(self, context: Context) -> DataKey:
        """Returns a fresh random 256-bit data key and its wrapping under this KEK.

        Raises:
            KmsError: the KMS could not be used.
        """
        ...

    def wrap(self, plaintext: bytes | bytearray, context: Context) -> WrappedKey:
        """Wraps an existing data key under the newest version of this KEK.

        Raises:
            KmsError: the KMS could not be used.
        """
        ...

    def unwrap(self, wrapped: WrappedKey, context: Context) -> bytearray:
        """Returns the data key inside ``wrapped``.

        Raises:
            DecryptionError: the wrapped bytes or the context are wrong.
            KeyUnavailableError: ``wrapped`` names a key or version this backend lacks.
            KmsError: the KMS could not be used.
        """
        ...

    def rewrap(self, wrapped: WrappedKey, context: Context) -> WrappedKey:
        """Re-wraps under the newest KEK version (the plaintext key may stay in the KMS).

        Raises:
            DecryptionError, KeyUnavailableError, KmsError: as :meth:`unwrap`.
        """
        ...

    def health(self) -> None:
        """Checks the KEK is usable.

        Raises:
            KmsError: it is not, with the reason and the remedy.
        """
        ...
