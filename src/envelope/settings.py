"""Build a KMS backend or a key store from plain settings (CLI options, config files)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from envelope.errors import ConfigError
from envelope.keystore import FileKeyStore, KeyStore, S3KeyStore
from envelope.kms import KmsBackend

__all__ = ["KMS_KINDS", "VAULT_AUTH_METHODS", "VaultSettings", "make_keystore", "make_kms"]

KMS_KINDS = ("local", "aws", "vault")
VAULT_AUTH_METHODS = ("token", "approle", "jwt", "kubernetes")


@dataclass(frozen=True)
class VaultSettings:
    """How to reach and log in to Vault / OpenBao (see ``envelope.kms._vault.VaultTransit``)."""

    mount: str = "transit"
    auth: str = "token"
    role: str | None = None
    jwt_file: str | None = None
    auth_mount: str | None = None
    token_file: str | None = None
    role_id: str | None = None
    secret_id_file: str | None = None
    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    namespace: str | None = None
    deadline: float = 30.0


def make_kms(
    kind: str,
    *,
    key: str | None = None,
    region: str | None = None,
    endpoint: str | None = None,
    keyring: str | os.PathLike[str] | None = None,
    passphrase: str | None = None,
    vault: VaultSettings | None = None,
) -> KmsBackend:
    """A KMS backend of ``kind``.

    Args:
        kind: ``local`` (the keyring file ``keyring``) or ``aws`` (KMS key ``key``).
        key: the KMS key (AWS: key id, ARN or alias).
        region, endpoint: where the KMS is (AWS region; endpoint URL).
        keyring, passphrase: the local keyring file and its passphrase.
        vault: Vault settings (kind ``vault``; ``key`` is the transit key name).

    Raises:
        ConfigError: unknown kind, a missing key, or a backend that cannot be set up.
    """
    if kind == "local":
        from envelope.kms._local import LocalKms  # noqa: PLC0415 - per backend

        return LocalKms.open(keyring, passphrase=passphrase)
    if kind == "aws":
        if not key:
            raise ConfigError(
                "the aws KMS needs a key: --kms-key KEY_ID|ARN|alias/NAME (ENVELOPE_KMS_KEY)"
            )
        from envelope.kms._aws import AwsKms  # noqa: PLC0415 - imports boto3

        return AwsKms(key, region=region, endpoint_url=endpoint)
    if kind == "vault":
        if not key:
            raise ConfigError(
                "the vault KMS needs a transit key name: --kms-key NAME (ENVELOPE_KMS_KEY)"
            )
        return _vault(key, endpoint, vault or VaultSettings())
    raise ConfigError(f"unknown KMS kind {kind!r}; choose one of {', '.join(KMS_KINDS)}")


def make_keystore(uri: str, *, endpoint: str | None = None, region: str | None = None) -> KeyStore:
    """A key store from ``s3://bucket/prefix``, ``file:///dir`` or a directory path.

    Raises:
        ConfigError: an unsupported scheme or an empty bucket name.
    """
    if uri.startswith("s3://"):
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        if not bucket:
            raise ConfigError(f"key store {uri!r} names no bucket")
        return S3KeyStore(bucket, prefix, endpoint_url=endpoint, region=region)
    if uri.startswith("file://"):
        return FileKeyStore(uri[len("file://") :])
    if "://" in uri:
        raise ConfigError(f"key store {uri!r}: use s3://bucket/prefix, file:///dir or a directory")
    return FileKeyStore(Path(uri))


def _vault(key: str, url: str | None, v: VaultSettings) -> KmsBackend:
    from envelope.kms import _vault_auth as vault_auth  # noqa: PLC0415 - per backend
    from envelope.kms._vault import VaultTransit  # noqa: PLC0415 - imports hvac

    auth: vault_auth.VaultAuth
    if v.auth == "token":
        auth = vault_auth.TokenAuth(token_file=v.token_file)
    elif v.auth == "approle":
        if not v.role_id or not v.secret_id_file:
            raise ConfigError("AppRole auth needs --vault-role-id and --vault-secret-id-file")
        auth = vault_auth.AppRoleAuth(
            v.role_id, secret_id_file=v.secret_id_file, mount=v.auth_mount or "approle"
        )
    elif v.auth in ("jwt", "kubernetes"):
        if not v.role:
            raise ConfigError(f"{v.auth} auth needs the Vault role: --vault-role ROLE")
        cls = vault_auth.JwtAuth if v.auth == "jwt" else vault_auth.KubernetesAuth
        auth = cls(
            v.role,
            jwt_file=v.jwt_file or vault_auth.SERVICE_ACCOUNT_TOKEN,
            mount=v.auth_mount or v.auth,
        )
    else:
        raise ConfigError(
            f"unknown Vault auth method {v.auth!r}; choose one of {', '.join(VAULT_AUTH_METHODS)}"
        )
    if bool(v.client_cert) != bool(v.client_key):
        raise ConfigError("mTLS needs both --vault-client-cert and --vault-client-key")
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
