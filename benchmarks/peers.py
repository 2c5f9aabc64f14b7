"""Peers more than one suite measures, set up once here."""

from __future__ import annotations

import os
from typing import Any


def esdk_raw_key() -> tuple[Any, Any]:
    """The AWS Encryption SDK with a raw AES-256 wrapping key (its best case: no network).

    Returns:
        ``(client, key_provider)`` for ``client.encrypt(source=..., key_provider=...)``.

    Raises:
        ImportError: aws-encryption-sdk is not installed.
    """
    import aws_encryption_sdk
    from aws_encryption_sdk.identifiers import (
        CommitmentPolicy,
        EncryptionKeyType,
        WrappingAlgorithm,
    )
    from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
    from aws_encryption_sdk.key_providers.raw import RawMasterKeyProvider

    wrapping = os.urandom(32)

    class Static(RawMasterKeyProvider):  # type: ignore[misc]
        provider_id = "bench"

        def _get_raw_key(self, key_id: bytes) -> WrappingKey:
            return WrappingKey(
                wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
                wrapping_key=wrapping,
                wrapping_key_type=EncryptionKeyType.SYMMETRIC,
            )

    provider = Static()
    provider.add_master_key(b"k")
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    return client, provider
