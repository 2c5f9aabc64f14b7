"""Derivation of a message's Cobblestone input key from its key parts."""

from __future__ import annotations

from envelope import _native

__all__ = ["derive_input_key", "input_key_label"]

_LABEL_SPLIT = b"envelope.dev/v1 input key: kms part || cluster part"
_LABEL_KMS_ONLY = b"envelope.dev/v1 input key: kms part"


def input_key_label(split: bool) -> bytes:
    """The HKDF info of :func:`derive_input_key` with (``split``) or without a cluster
    part, for the native one-call path, which derives the same key."""
    return _LABEL_SPLIT if split else _LABEL_KMS_ONLY


def derive_input_key(
    data_key: bytes | bytearray, cluster_part: bytes | bytearray | None
) -> bytearray:
    """HKDF-SHA512 (extract with an all-zero salt, then expand) to 32 bytes.

    With a cluster part the IKM is ``data_key || cluster_part``; without, ``data_key``.
    The two cases use different labels, so they never yield the same key. Computed
    by aws-lc in the native module (the vectors in tests/vectors pin the bytes),
    into buffers that are wiped here or by the caller.
    """
    out = bytearray(32)
    if cluster_part is None:
        _native.hkdf_sha512_into(data_key, _LABEL_KMS_ONLY, out)
        return out
    # Sized once: growing a bytearray can move it, leaving an unwiped copy behind.
    n = len(data_key)
    ikm = bytearray(n + len(cluster_part))
    ikm[:n] = data_key
    ikm[n:] = cluster_part
    try:
        _native.hkdf_sha512_into(ikm, _LABEL_SPLIT, out)
    finally:
        ikm[:] = bytes(len(ikm))
    return out
