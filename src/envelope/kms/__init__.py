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

from typing import TYPE_CHECKING

from envelope._lazy import lazy_getattr
from envelope.kms._protocol import KmsBackend
from envelope.kms._types import DataKey, WrappedKey

if TYPE_CHECKING:
    from envelope.kms._aws import AwsKms
    from envelope.kms._local import KeyVersion, LocalKms, default_keyring_path
    from envelope.kms._vault import VaultTransit
    from envelope.kms._vault_auth import (
        AppRoleAuth,
        JwtAuth,
        KubernetesAuth,
        TokenAuth,
        VaultAuth,
    )

# Each backend's module is imported on first use: a command that uses the local keyring
# does not pay for the AWS and Vault modules (start-up time, docs/benchmarks.md).
_LAZY = {
    "AwsKms": "_aws",
    **dict.fromkeys(("KeyVersion", "LocalKms", "default_keyring_path"), "_local"),
    "VaultTransit": "_vault",
    **dict.fromkeys(
        ("AppRoleAuth", "JwtAuth", "KubernetesAuth", "TokenAuth", "VaultAuth"), "_vault_auth"
    ),
}

__getattr__ = lazy_getattr(__name__, _LAZY, globals())


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
