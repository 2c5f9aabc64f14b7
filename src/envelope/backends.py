"""Build a KMS backend or a key store from plain settings (CLI options, config files)."""

from __future__ import annotations

import os
from pathlib import Path

from envelope.errors import ConfigError
from envelope.keystore import FileKeyStore, KeyStore, S3KeyStore
from envelope.kms import KmsBackend

__all__ = ["KMS_KINDS", "make_keystore", "make_kms"]

KMS_KINDS = ("local", "aws")


def make_kms(
    kind: str,
    *,
    key: str | None = None,
    region: str | None = None,
    endpoint: str | None = None,
    keyring: str | os.PathLike[str] | None = None,
    passphrase: str | None = None,
) -> KmsBackend:
    """A KMS backend of ``kind``.

    Args:
        kind: ``local`` (the keyring file ``keyring``) or ``aws`` (KMS key ``key``).
        key: the KMS key (AWS: key id, ARN or alias).
        region, endpoint: where the KMS is (AWS region; endpoint URL).
        keyring, passphrase: the local keyring file and its passphrase.

    Raises:
        ConfigError: unknown kind, a missing key, or a backend that cannot be set up.
    """
    if kind == "local":
        from envelope.kms.local import LocalKms  # noqa: PLC0415 - per backend

        return LocalKms.open(keyring, passphrase=passphrase)
    if kind == "aws":
        if not key:
            raise ConfigError(
                "the aws KMS needs a key: --kms-key KEY_ID|ARN|alias/NAME (ENVELOPE_KMS_KEY)"
            )
        from envelope.kms.aws import AwsKms  # noqa: PLC0415 - imports boto3

        return AwsKms(key, region=region, endpoint_url=endpoint)
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
