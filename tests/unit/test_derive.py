"""derive_input_key (native aws-lc HKDF) gives the bytes of `cryptography`'s HKDF."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from envelope import _native
from envelope._keys.derive import _LABEL_KMS_ONLY, _LABEL_SPLIT, derive_input_key


def reference(ikm: bytes, info: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA512(), length=length, salt=None, info=info).derive(ikm)


@pytest.mark.parametrize("split", [False, True])
def test_input_keys_match_cryptography_hkdf(split: bool) -> None:
    for _ in range(50):
        data_key, part = os.urandom(32), os.urandom(32) if split else None
        got = derive_input_key(bytearray(data_key), part)
        if part is None:
            assert bytes(got) == reference(data_key, _LABEL_KMS_ONLY)
        else:
            assert bytes(got) == reference(data_key + part, _LABEL_SPLIT)


@pytest.mark.parametrize("length", [1, 32, 64, 65, 200])
def test_hkdf_lengths_and_refusals(length: int) -> None:
    out = bytearray(length)
    _native.hkdf_sha512_into(b"ikm", b"info", out)
    assert bytes(out) == reference(b"ikm", b"info", length)
    with pytest.raises(ValueError):
        _native.hkdf_sha512_into(b"ikm", b"info", bytearray(0))
    with pytest.raises(ValueError):
        _native.hkdf_sha512_into(b"ikm", b"info", bytearray(255 * 64 + 1))
    shared = bytearray(64)
    with pytest.raises(ValueError):
        _native.hkdf_sha512_into(memoryview(shared)[:32], b"info", memoryview(shared)[16:48])
