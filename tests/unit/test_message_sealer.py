"""The one-call message sealer of the cached path matches the general kernel call."""

from __future__ import annotations

import os
import pickle

import pytest

from envelope import _native, chunked

KEY, CTX, PREFIX = os.urandom(32), os.urandom(32), b"header bytes"


@pytest.mark.parametrize("length", [0, 64, chunked.CHUNK_SIZE, 70_000, 3 << 20])
def test_same_bytes_as_cobblestone_seal(length: int) -> None:
    data, salt = os.urandom(length), os.urandom(24)
    sealer = _native.MessageSealer(KEY, CTX, PREFIX)
    out = sealer.seal(data, salt)
    assert out == _native.cobblestone_seal(KEY, salt, CTX, data, 0, None, PREFIX)
    assert chunked.decrypt(KEY, out[len(PREFIX) :], CTX) == data
    assert out[len(PREFIX) : len(PREFIX) + 24] == salt


def test_bad_sizes_and_no_pickling() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        _native.MessageSealer(KEY[:31], CTX, PREFIX)
    sealer = _native.MessageSealer(KEY, CTX, PREFIX)
    with pytest.raises(ValueError, match="24 bytes"):
        sealer.seal(b"x", b"short")
    with pytest.raises(TypeError):
        pickle.dumps(sealer)  # the key never leaves through a pickle


@pytest.mark.parametrize("length", [0, 64, 70_000])
def test_opener_reads_the_body_after_offset_and_fails_opaquely(length: int) -> None:
    from envelope import DecryptionError

    data = os.urandom(length)
    blob = _native.MessageSealer(KEY, CTX, PREFIX).seal(data, os.urandom(24))
    opener = _native.MessageOpener(KEY, CTX)
    assert opener.open(blob, len(PREFIX)) == data
    assert opener.open(memoryview(blob), len(PREFIX), 1) == data
    bad = bytearray(blob)
    bad[-1] ^= 1
    for args in ((bytes(bad), len(PREFIX)), (blob, len(PREFIX) + 1), (blob, len(blob) + 5)):
        with pytest.raises(DecryptionError):
            opener.open(*args)
    with pytest.raises(DecryptionError):
        _native.MessageOpener(KEY[:5], CTX).open(blob, len(PREFIX))
    with pytest.raises(DecryptionError):
        _native.MessageOpener(KEY, b"other").open(blob, len(PREFIX))
