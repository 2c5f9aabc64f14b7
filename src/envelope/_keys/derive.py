"""Derivation of a message's Cobblestone input key from its key parts."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["derive_input_key"]

_LABEL_SPLIT = b"envelope.dev/v1 input key: kms part || cluster part"
_LABEL_KMS_ONLY = b"envelope.dev/v1 input key: kms part"


def derive_input_key(
    data_key: bytes | bytearray, cluster_part: bytes | bytearray | None
) -> bytearray:
    """HKDF-SHA512 (extract with an all-zero salt, then expand) to 32 bytes.

    With a cluster part the IKM is ``data_key || cluster_part``; without, ``data_key``.
    The two cases use different labels, so they never yield the same key.
    """
    if cluster_part is None:
        ikm, info = bytes(data_key), _LABEL_KMS_ONLY
    else:
        ikm, info = bytes(data_key) + bytes(cluster_part), _LABEL_SPLIT
    return bytearray(HKDF(algorithm=hashes.SHA512(), length=32, salt=None, info=info).derive(ikm))
