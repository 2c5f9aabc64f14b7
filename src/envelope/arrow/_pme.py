"""Parquet Modular Encryption with envelope's KMS backends as Parquet's KMS.

Parquet (``pyarrow.parquet.encryption``) encrypts each column with its own data key
and asks a *KMS client* to wrap those keys (or, with double wrapping, the per-file
key-encryption keys) under named *master keys*. :class:`KmsClient` wraps them as
envelope messages: a fresh data key from the configured backend (local keyring, AWS
KMS, Vault Transit), split with the cluster secret when the Envelope has one, with the
master key's name in the encryption context (``parquet.master_key=NAME``). A reader
needs the same KMS access *and* the cluster part: without either, unwrapping fails and
the protected columns (and an encrypted footer) cannot be read.

A master key name may map to an Envelope of its own (``envelopes={"pii": vault_env}``),
so that, say, the footer uses the local keyring and PII columns Vault Transit.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow.parquet.encryption as pe

from envelope.errors import ConfigError

if TYPE_CHECKING:
    from envelope._envelope import Envelope

__all__ = [
    "CONTEXT_KEY",
    "KmsClient",
    "crypto_factory",
    "decryption_properties",
    "encryption_properties",
]

#: The encryption-context key that binds each wrapped key to its master key's name.
CONTEXT_KEY = "parquet.master_key"
#: How long pyarrow keeps unwrapped keys (and, double wrapping, KEKs) in its own cache.
DEFAULT_CACHE_LIFETIME = datetime.timedelta(minutes=10)


class KmsClient(pe.KmsClient):  # type: ignore[misc]
    """A ``pyarrow.parquet.encryption.KmsClient`` over envelope Envelopes.

    Args:
        env: the Envelope that wraps keys of every master key not in ``envelopes``
            (None: only those).
        envelopes: an Envelope per master-key name.

    Raises:
        ValueError: neither is given.
    """

    def __init__(
        self, env: Envelope | None = None, envelopes: Mapping[str, Envelope] | None = None
    ) -> None:
        super().__init__()
        if env is None and not envelopes:
            raise ValueError("give an Envelope, or one per master key (envelopes=)")
        self._default = env
        self._envelopes = dict(envelopes or {})

    def _env(self, master_key: str) -> Envelope:
        env = self._envelopes.get(master_key, self._default)
        if env is None:
            raise ConfigError(
                f"no Envelope for Parquet master key {master_key!r}: add it to envelopes= "
                f"(configured: {', '.join(sorted(self._envelopes))})"
            )
        return env

    def wrap_key(self, key_bytes: bytes, master_key_identifier: str) -> str:
        """Parquet's key as a base64 envelope message bound to the master key's name.

        Raises:
            KmsError: the KMS could not generate a data key. ConfigError: an unknown
                master key.
        """
        ctx = {CONTEXT_KEY: master_key_identifier}
        return base64.b64encode(self._env(master_key_identifier).encrypt(key_bytes, ctx)).decode()

    def unwrap_key(self, wrapped_key: str | bytes, master_key_identifier: str) -> bytes:
        """Parquet's key back from :meth:`wrap_key`'s output.

        Raises:
            DecryptionError: the wrapped key is tampered, bound to another master key, or
                needs a KMS key or cluster part this Envelope lacks
                (:class:`~envelope.errors.KeyUnavailableError`). KmsError: KMS failure.
        """
        ctx = {CONTEXT_KEY: master_key_identifier}
        blob = base64.b64decode(wrapped_key, validate=True)
        return self._env(master_key_identifier).decrypt(blob, ctx)


def crypto_factory(
    env: Envelope | None = None, envelopes: Mapping[str, Envelope] | None = None
) -> pe.CryptoFactory:
    """A ``pyarrow.parquet.encryption.CryptoFactory`` whose KMS is :class:`KmsClient`.

    Raises:
        ValueError: as :class:`KmsClient`.
    """
    KmsClient(env, envelopes)  # check the arguments now, not inside a Parquet write

    def make_client(_config: pe.KmsConnectionConfig) -> KmsClient:
        return KmsClient(env, envelopes)

    return pe.CryptoFactory(make_client)


def encryption_properties(
    factory: pe.CryptoFactory,
    *,
    footer_key: str,
    column_keys: Mapping[str, Sequence[str]],
    plaintext_footer: bool = False,
    double_wrapping: bool = True,
    cache_lifetime: datetime.timedelta = DEFAULT_CACHE_LIFETIME,
) -> Any:
    """``encryption_properties=`` for ``pq.write_table``: AES-GCM, 256-bit column keys.

    Args:
        factory: from :func:`crypto_factory`.
        footer_key: the master key that protects the footer.
        column_keys: master key name -> the columns it protects (each column still gets
            its own data key).
        plaintext_footer: leave the footer readable (unprotected columns then read
            without any key; protected ones still need it).
        double_wrapping: wrap column keys under per-file KEKs, and only those with the
            KMS (fewer KMS calls).

    Raises:
        OSError, ValueError: pyarrow refuses the configuration.
    """
    config = pe.EncryptionConfiguration(
        footer_key=footer_key,
        column_keys={k: list(v) for k, v in column_keys.items()},
        encryption_algorithm="AES_GCM_V1",
        plaintext_footer=plaintext_footer,
        double_wrapping=double_wrapping,
        cache_lifetime=cache_lifetime,
        data_key_length_bits=256,
    )
    return factory.file_encryption_properties(pe.KmsConnectionConfig(), config)


def decryption_properties(
    factory: pe.CryptoFactory, *, cache_lifetime: datetime.timedelta = DEFAULT_CACHE_LIFETIME
) -> Any:
    """``decryption_properties=`` for ``pq.read_table`` / ``pq.ParquetFile``.

    Raises:
        OSError: pyarrow refuses the configuration.
    """
    config = pe.DecryptionConfiguration(cache_lifetime=cache_lifetime)
    return factory.file_decryption_properties(pe.KmsConnectionConfig(), config)
