"""The KMS protocol: the only thing the rest of envelope knows about a KMS.

A backend holds one key-encryption key (KEK) and wraps, unwraps and rewraps
256-bit data keys under it, binding the encryption context. Backends for AWS KMS
and Vault/OpenBao Transit live in their own modules and import their SDKs there.

Error contract, for every backend:

- ``unwrap``/``rewrap`` raise :class:`~envelope.errors.DecryptionError` when the wrapped
  key or the context is wrong (the KMS authenticated the request and said no to the
  *bytes*);
- every operation raises :class:`~envelope.errors.KmsError` when the KMS could not be
  used (unreachable, access denied, key disabled or missing), naming the backend and key.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from envelope.context import Context
from envelope.kms.types import DataKey, WrappedKey

__all__ = ["DataKey", "KmsBackend", "LocalKms", "WrappedKey"]


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


def __getattr__(name: str) -> object:
    if name == "LocalKms":
        from envelope.kms.local import LocalKms  # noqa: PLC0415 - lazy, keeps imports light

        return LocalKms
    raise AttributeError(name)
