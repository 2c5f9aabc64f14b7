"""Builders: a KMS backend, a key store, a cluster secret from their settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envelope import _sdk, keystore
from envelope._keys.cluster import ClusterSecret
from envelope.errors import ConfigError
from envelope.keystore import KeyStore
from envelope.kms import KmsBackend
from envelope.settings._env import VAULT_ADDRESS, flag_hint, vault_address

if TYPE_CHECKING:
    from envelope.kms._vault import VaultTransit
from envelope.settings._model import (
    ClusterSecretSettings,
    KeyStoreSettings,
    KmsSettings,
    VaultSettings,
)
from envelope.settings._schema import ValidationError

__all__ = [
    "build_keystore",
    "build_kms",
    "keyring_passphrase",
    "kms_from_mapping",
    "load_cluster_secret",
]

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

    Without ``key`` (AWS, Vault), or with ``allowed_keys`` for the local keyring: a
    :class:`~envelope._keys.discovery.DiscoveredKeys` that decrypts with the key each
    message's slot names, if ``allowed_keys`` allows it (:mod:`envelope.settings._discovery`).

    Raises:
        ConfigError: the backend cannot be set up (missing keyring, unreadable file, no AWS
            region, no Vault address, ...); the message names the flag and variables.
    """
    if (settings.kind == "local" and settings.allowed_keys) or (
        settings.kind != "local" and not settings.key
    ):
        from envelope.settings._discovery import discovered_kms  # noqa: PLC0415 - on use

        found = discovered_kms(settings, build_kms)
        tree = _absolute(settings.model_dump(mode="json", exclude_defaults=True))
        found._origin = {**tree, "kind": settings.kind}
        return found
    origin = _absolute(settings.model_dump(mode="json", exclude_defaults=True))
    if settings.kind == "local":
        from envelope.kms._local import LocalKms  # noqa: PLC0415 - per backend

        local = LocalKms.open(settings.keyring, passphrase=keyring_passphrase(settings))
        local._origin = {**origin, "kind": "local", "keyring": os.path.abspath(local.path or "")}
        return local
    assert settings.key is not None  # validated by KmsSettings
    if settings.kind == "aws":
        from envelope.kms._aws import AwsKms  # noqa: PLC0415 - imports boto3

        try:
            aws = AwsKms(settings.key, region=settings.region, endpoint_url=settings.endpoint)
        except _sdk.MissingRegionError:
            raise ConfigError(
                f"no AWS region for KMS: give one{flag_hint('kms.region')}"
                " or set a region in the AWS profile"
            ) from None
        aws._origin = {**origin, "kind": "aws"}
        return aws
    if settings.endpoint is None and not vault_address(os.environ):
        names = ", ".join(f"${n}" for n in VAULT_ADDRESS)
        raise ConfigError(f"no Vault address: give one (--kms-endpoint, {names})")
    vault = _vault(settings.key, settings.endpoint, settings.vault)
    vault._origin = {**origin, "kind": "vault"}
    return vault


def _absolute(tree: dict[str, Any]) -> dict[str, Any]:
    """``tree`` with its file paths absolute (a worker may run elsewhere)."""
    out: dict[str, Any] = {}
    for name, value in tree.items():
        if isinstance(value, dict):
            out[name] = _absolute(value)
        elif isinstance(value, str) and name in _PATH_FIELDS:
            out[name] = os.path.abspath(value)
        else:
            out[name] = value
    return out


_PATH_FIELDS = frozenset(
    ("keyring", "passphrase_file", "jwt_file", "token_file", "secret_id_file", "file")
) | frozenset(("ca_bundle", "ca_path", "client_cert", "client_key"))


def kms_from_mapping(
    values: Mapping[str, Any], source: str, *, base: Path | None = None
) -> KmsBackend:
    """A KMS backend from one plain mapping of :class:`KmsSettings` fields (a rules file's
    or a custodians file's entry); ``kind`` defaults to ``local``, and relative ``keyring``
    and ``passphrase_file`` paths are taken relative to ``base`` when given.

    Raises:
        ConfigError: an invalid entry (one line per problem, naming ``source``) or a
            backend that cannot be set up.
    """
    from envelope.settings._errors import config_error  # noqa: PLC0415 - keeps imports light

    entry = {"kind": "local", **values}
    if base is not None:
        for name in ("keyring", "passphrase_file"):
            if entry.get(name):
                entry[name] = str(base / str(entry[name]))
    try:
        settings = KmsSettings.model_validate(entry)
    except ValidationError as exc:
        raise config_error(exc, KmsSettings, source) from None
    try:
        return build_kms(settings)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def build_keystore(settings: KeyStoreSettings) -> KeyStore:
    """The key store at ``settings.uri``."""
    uri = settings.uri
    if uri.startswith("s3://"):
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        return keystore.S3KeyStore(
            bucket, prefix, endpoint_url=settings.endpoint, region=settings.region
        )
    if uri.startswith("file://"):
        return keystore.FileKeyStore(uri[len("file://") :])
    return keystore.FileKeyStore(Path(uri))


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
    both = ClusterSecret(current.current, older.parts())
    both._origin = {
        "env": settings.env,
        "previous": [os.path.abspath(p) for p in settings.previous],
    }
    return both


def _vault(key: str, url: str | None, v: VaultSettings) -> VaultTransit:
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
        ca_path=v.ca_path,
        client_cert=cert,
        skip_verify=v.skip_verify,
        tls_server_name=v.tls_server_name,
        timeout=v.timeout,
        deadline=v.deadline,
    )
