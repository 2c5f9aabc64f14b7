"""Wycheproof and NIST CAVP AES-256-GCM (96-bit IV, 128-bit tag) through the native kernel."""

from __future__ import annotations

import pytest

from envelope import _native
from envelope.errors import DecryptionError
from tests.support.vectorfiles import GcmVector, nist_gcm, wycheproof_aes256_gcm

WYCHEPROOF = list(wycheproof_aes256_gcm())
NIST = list(nist_gcm("gcmEncryptExtIV256.rsp")) + list(nist_gcm("gcmDecrypt256.rsp"))


def test_vector_counts() -> None:
    assert len(WYCHEPROOF) == 66
    assert sum(v.msg is None for v in WYCHEPROOF) == 27
    assert len(NIST) == 750
    assert sum(v.msg is None for v in NIST) == 191


@pytest.mark.parametrize("v", WYCHEPROOF + NIST, ids=lambda v: v.name)
def test_aes256gcm(v: GcmVector) -> None:
    if v.msg is None:
        with pytest.raises(DecryptionError):
            _native.aes256gcm_open(v.key, v.iv, v.aad, v.sealed)
    else:
        assert _native.aes256gcm_open(v.key, v.iv, v.aad, v.sealed) == v.msg
        assert _native.aes256gcm_seal(v.key, v.iv, v.aad, v.msg) == v.sealed
