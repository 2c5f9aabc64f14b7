"""The KMS protocol: the only thing the rest of envelope knows about a KMS.

A backend holds one key-encryption key (KEK) and wraps, unwraps and rewraps
256-bit data keys under it, binding the encryption context. Backends for AWS KMS
and Vault/OpenBao Transit live in their own private modules and import their SDKs
there, lazily: importing this package needs neither boto3 nor hvac.

Error contract, for every backend:

- ``unwrap``/``rewrap`` raise :class:`~envelope.errors.DecryptionError` when the wrapped
  key or the context is wrong (the KMS authenticated the request and said no to the
  *bytes*);
- every operation raises :class:`~envelope.errors.KmsError` when the KMS could not be
  used (unreachable, access denied, key disabled or missing), naming the backend and key.
"""

from __future__ import annotations

from envelope.kms._aws import AwsKms
from envelope.kms._local import KeyVersion, LocalKms, default_keyring_path
from envelope.kms._protocol import KmsBackend
from envelope.kms._types import DataKey, WrappedKey
from envelope.kms._vault import VaultTransit
from envelope.kms._vault_auth import AppRoleAuth, JwtAuth, KubernetesAuth, TokenAuth, VaultAuth

__all__ = [
    "AppRoleAuth",
    "AwsKms",
    "DataKey",
    "JwtAuth",
    "KeyVersion",
    "KmsBackend",
    "KubernetesAuth",
    "LocalKms",
    "TokenAuth",
    "VaultAuth",
    "VaultTransit",
    "WrappedKey",
    "default_keyring_path",
]
