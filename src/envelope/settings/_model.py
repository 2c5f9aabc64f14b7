"""The settings model: which KMS and how to reach it, the cluster secret, the key store."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from envelope.kms._vault_auth import SERVICE_ACCOUNT_TOKEN
from envelope.kms._vault_env import parse_bool, parse_duration
from envelope.settings._env import flag_hint, merge, split_patterns
from envelope.settings._errors import config_error
from envelope.settings._kinds import KMS_KINDS, VAULT_AUTH_METHODS, KmsKind, VaultAuthMethod
from envelope.settings._schema import Model, ValidationError, field_problem, setting

__all__ = [
    "KMS_KINDS",
    "SERVICE_ACCOUNT_TOKEN",
    "VAULT_AUTH_METHODS",
    "ClusterSecretSettings",
    "KeyStoreSettings",
    "KmsSettings",
    "Settings",
    "VaultAuthSettings",
    "VaultSettings",
]


#: Validation context key: the caller decrypts only, so ``kms.key`` may be left to
#: discovery (the message's slots, checked against ``allowed_keys``).
DISCOVER = "discover"


#: Vault's per-request timeout, seconds (also what a zero duration means, as in bao).
_TIMEOUT = 10.0


def _bao_bool(v: Any) -> Any:
    """A string (an environment variable) is read as bao reads a boolean."""
    return parse_bool(v) if isinstance(v, str) else v


def _bao_duration(v: Any) -> Any:
    """A string is seconds or a Go duration (``30``, ``1m30s``), as bao reads one; as in
    bao, a zero duration keeps the default."""
    if not isinstance(v, str):
        return v
    return parse_duration(v) or _TIMEOUT


def _patterns(v: Any) -> Any:
    return split_patterns(v) if isinstance(v, str) else v


def _nonempty(v: tuple[str, ...]) -> tuple[str, ...]:
    if any(not p.strip() for p in v):
        raise ValueError("an empty pattern: give glob patterns over key ids")
    return tuple(p.strip() for p in v)


def _uri(v: str) -> str:
    if v.startswith("s3://"):
        if not v[len("s3://") :].partition("/")[0]:
            raise ValueError(f"key store {v!r} names no bucket: use s3://bucket/prefix")
    elif "://" in v and not v.startswith("file://"):
        raise ValueError(f"key store {v!r}: use s3://bucket/prefix, file:///dir or a directory")
    elif not v:
        raise ValueError("an empty key store: use s3://bucket/prefix or a directory")
    return v


class VaultAuthSettings(Model):
    """How to log in to Vault / OpenBao."""

    method: VaultAuthMethod = "token"
    role: str | None = None
    mount: str | None = None
    jwt_file: str = SERVICE_ACCOUNT_TOKEN
    token_file: str | None = None
    role_id: str | None = None
    secret_id_file: str | None = None


class VaultSettings(Model):
    """How to reach Vault / OpenBao (the address is :attr:`KmsSettings.endpoint`)."""

    mount: str = "transit"
    auth: VaultAuthSettings = setting(default_factory=VaultAuthSettings)
    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    namespace: str | None = None
    ca_path: str | None = None
    skip_verify: bool = setting(default=False, before=_bao_bool)
    tls_server_name: str | None = None
    timeout: float = setting(default=_TIMEOUT, gt=0, before=_bao_duration)
    deadline: float = setting(default=30.0, gt=0)

    def _check(self, context: Mapping[str, Any]) -> None:
        if bool(self.client_cert) != bool(self.client_key):
            missing = "client_key" if self.client_cert else "client_cert"
            raise field_problem(missing, "mTLS needs both 'client_cert' and 'client_key'")


class KmsSettings(Model):
    """Which KMS backend holds the key-encryption key."""

    kind: KmsKind = "local"
    key: str | None = None
    region: str | None = None
    endpoint: str | None = None
    keyring: str | None = None
    passphrase_file: str | None = None
    vault: VaultSettings = setting(default_factory=VaultSettings)
    #: Without ``key``: decrypt with the key a message's slot names, if one of these
    #: glob patterns allows it (:mod:`envelope.settings._discovery`).
    allowed_keys: tuple[str, ...] = setting(default=(), before=_patterns, after=_nonempty)

    def _check(self, context: Mapping[str, Any]) -> None:
        discovering = bool(self.allowed_keys) or bool(context.get(DISCOVER))
        if self.kind in ("aws", "vault") and not self.key and not discovering:
            what = (
                "the KMS key id, ARN or alias/NAME"
                if self.kind == "aws"
                else "the transit key name"
            )
            raise field_problem("key", f"kind {self.kind!r} needs 'key': {what}")
        if self.kind == "vault":
            auth = self.vault.auth
            if auth.method in ("kubernetes", "jwt") and not auth.role:
                raise field_problem(
                    "vault.auth.role",
                    f"vault.auth.method {auth.method!r} needs vault.auth.role: "
                    "the Vault role bound to this service account",
                )
            if auth.method == "approle" and not (auth.role_id and auth.secret_id_file):
                missing = "role_id" if not auth.role_id else "secret_id_file"
                raise field_problem(
                    f"vault.auth.{missing}",
                    "vault.auth.method 'approle' needs vault.auth.role_id and "
                    "vault.auth.secret_id_file",
                )


class ClusterSecretSettings(Model):
    """This service's cluster-secret part: a file, or an environment variable (hex/base64)."""

    file: str | None = None
    env: str | None = None
    previous: tuple[str, ...] = ()

    def _check(self, context: Mapping[str, Any]) -> None:
        if (self.file is None) == (self.env is None):
            raise field_problem(
                "file", "give exactly one of 'file' (a path) or 'env' (a variable name)"
            )


class KeyStoreSettings(Model):
    """Where stored data keys live: ``s3://bucket/prefix``, ``file:///dir`` or a directory."""

    uri: str = setting(after=_uri)
    endpoint: str | None = None
    region: str | None = None


class Settings(Model):
    """Everything a front end needs to build an :class:`~envelope.Envelope`."""

    kms: KmsSettings = setting(default_factory=KmsSettings)
    cluster_secret: ClusterSecretSettings | None = None
    keystore: KeyStoreSettings | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings the environment variables give (``os.environ`` by default).

        Raises:
            ConfigError: a variable holds an invalid value (the message names it).
        """
        return cls.resolve({}, environ)

    @classmethod
    def resolve(
        cls,
        explicit: Mapping[str, Any],
        environ: Mapping[str, str] | None = None,
        *,
        source: str = "settings (command line and environment)",
        decrypt_only: bool = False,
    ) -> Settings:
        """``explicit`` values (a nested mapping; None means not given) over the environment.

        ``decrypt_only``: the caller only decrypts, so an AWS or Vault KMS without
        ``kms.key`` is valid: the key comes from each message's slots, if
        ``kms.allowed_keys`` allows it (none given: every message is refused, naming its
        keys and what to pass).

        Raises:
            ConfigError: invalid settings; one line per problem, naming the field, its
                flag and environment variable, and what to do.
        """
        tree = merge(explicit, os.environ if environ is None else environ)
        try:
            return cls.model_validate(tree, context={DISCOVER: decrypt_only})
        except ValidationError as exc:
            raise config_error(exc, cls, source, flag_hint) from None
