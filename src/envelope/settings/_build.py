"""Builders: a KMS backend, a key store, a cluster secret from their settings."""

from __future__ import annotations

import os
from pathlib import Path

from envelope import _sdk
from envelope._keys.cluster import ClusterSecret
from envelope.errors import ConfigError
from envelope.keystore import FileKeyStore, KeyStore, S3KeyStore
from envelope.kms import KmsBackend
from envelope.settings._env import VAULT_ADDRESS, flag_hint
from envelope.settings._model import (
    ClusterSecretSettings,
    KeyStoreSettings,
    KmsSettings,
    VaultSettings,
)

__all__ = ["build_keystore", "build_kms", "keyring_passphrase", "load_cluster_secret"]

PASSPHRASE_ENV = "ENVELOPE_KEYRING_PASSPHRASE"  # noqa: S105 - a variable name


def keyring_passphrase(settings: KmsSettings) -> str | None:
    """The local keyring's passphrase: ``passphrase_file``, else ``$ENVELOPE_KEYRING_PASSPHRASE``.

    Raises:
        ConfigError: the passphrase file cannot be read.
    """
    if settings.passphrase_file is not None:
        try:
            return Path(settings.passphrase_file).read_text().rstrip("\n")
        except OSError as exc:
            raise ConfigError(
                f"cannot read passphrase file {settings.passphrase_file}: {exc.strerror}"
            ) from None
    return os.environ.get(PASSPHRASE_ENV)


def build_kms(settings: KmsSettings) -> KmsBackend:
    """The KMS backend ``settings`` describe (backends are imported only when used).

    Raises:
        ConfigError: the backend cannot be set up (missing keyring, unreadable file, no AWS
            region, no Vault address, ...); the message names the flag and variables.
    """
    if settings.kind == "local":
        from envelope.kms._local import LocalKms  # noqa: PLC0415 - per backend

        return LocalKms.open(settings.keyring, passphrase=keyring_passphrase(settings))
    assert settings.key is not None  # validated by KmsSettings
    if settings.kind == "aws":
        from envelope.kms._aws import AwsKms  # noqa: PLC0415 - imports boto3

        try:
            return AwsKms(settings.key, region=settings.region, endpoint_url=settings.endpoint)
        except _sdk.MissingRegionError:
            raise ConfigError(
                f"no AWS region for KMS: give one{flag_hint('kms.region')}"
                " or set a region in the AWS profile"
            ) from None
    if settings.endpoint is None and not any(os.environ.get(n) for n in VAULT_ADDRESS):
        names = ", ".join(f"${n}" for n in VAULT_ADDRESS)
        raise ConfigError(f"no Vault address: give one (--kms-endpoint, {names})")
    return _vault(settings.key, settings.endpoint, settings.vault)


def build_keystore(settings: KeyStoreSettings) -> KeyStore:
    """The key store at ``settings.uri``."""
    uri = settings.uri
    if uri.startswith("s3://"):
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        return S3KeyStore(bucket, prefix, endpoint_url=settings.endpoint, region=settings.region)
    if uri.startswith("file://"):
        return FileKeyStore(uri[len("file://") :])
    return FileKeyStore(Path(uri))


def load_cluster_secret(settings: ClusterSecretSettings) -> ClusterSecret:
    """The cluster-secret part (and older parts still accepted during rotation).

    Raises:
        ConfigError: a part file or the environment variable is missing or malformed.
    """
    if settings.file is not None:
        return ClusterSecret.from_file(settings.file, previous=list(settings.previous))
    assert settings.env is not None  # validated by ClusterSecretSettings
    current = ClusterSecret.from_env(settings.env)
    if not settings.previous:
        return current
    older = ClusterSecret.from_file(settings.previous[0], previous=list(settings.previous[1:]))
    return ClusterSecret(current.current, older.parts())


def _vault(key: str, url: str | None, v: VaultSettings) -> KmsBackend:
    from envelope.kms import _vault_auth as vault_auth  # noqa: PLC0415 - per backend
    from envelope.kms._vault import VaultTransit  # noqa: PLC0415 - imports hvac

    a = v.auth
    auth: vault_auth.VaultAuth
    if a.method == "token":
        auth = vault_auth.TokenAuth(token_file=a.token_file)
    elif a.method == "approle":
        assert a.role_id is not None and a.secret_id_file is not None  # validated
        auth = vault_auth.AppRoleAuth(
            a.role_id, secret_id_file=a.secret_id_file, mount=a.mount or "approle"
        )
    else:
        assert a.role is not None  # validated by KmsSettings
        cls = vault_auth.JwtAuth if a.method == "jwt" else vault_auth.KubernetesAuth
        auth = cls(a.role, jwt_file=a.jwt_file, mount=a.mount or a.method)
    cert = (v.client_cert, v.client_key) if v.client_cert and v.client_key else None
    return VaultTransit(
        key,
        mount=v.mount,
        url=url,
        auth=auth,
        namespace=v.namespace,
        ca_bundle=v.ca_bundle,
        client_cert=cert,
        deadline=v.deadline,
    )
