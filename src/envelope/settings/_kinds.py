"""The KMS kinds and Vault auth methods (no pydantic: the CLI's parser needs only these)."""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["KMS_KINDS", "VAULT_AUTH_METHODS", "KmsKind", "VaultAuthMethod"]

KmsKind = Literal["local", "aws", "vault"]
VaultAuthMethod = Literal["token", "approle", "jwt", "kubernetes"]
KMS_KINDS: tuple[str, ...] = get_args(KmsKind)
VAULT_AUTH_METHODS: tuple[str, ...] = get_args(VaultAuthMethod)
