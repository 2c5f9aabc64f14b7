"""envelope.chunked beyond the vectors: buffers, output buffers, threads, misuse."""

from __future__ import annotations

import os

import numpy as np
import pytest

from envelope import _native, chunked
from envelope.errors import DecryptionError

KEY = bytes(range(32))
SIZES = [0, 1, 16383, 16384, 16385, 3 * 16384, 40 * 16384 + 5]


@pytest.mark.parametrize("n", SIZES)
def test_round_trip_and_lengths(n: int) -> None:
    msg = os.urandom(n)
    ct = chunked.encrypt(KEY, msg, b"ctx")
    assert len(ct) == chunked.sealed_length(n)
    assert chunked.plaintext_length(len(ct)) == n
    assert chunked.decrypt(KEY, ct, b"ctx") == msg


def test_random_salt_per_message() -> None:
    a, b = chunked.encrypt(KEY, b"same", b""), chunked.encrypt(KEY, b"same", b"")
    assert a[:24] != b[:24] and a != b


def test_the_native_seal_draws_its_own_salt_when_given_none() -> None:
    a, b = (_native.cobblestone_seal(KEY, None, b"ctx", b"same", 1, None, b"P") for _ in "ab")
    assert a is not None and b is not None
    assert a[:1] == b[:1] == b"P" and a[1:25] != b[1:25]  # a fresh salt each
    assert chunked.decrypt(KEY, a[1:], b"ctx") == chunked.decrypt(KEY, b[1:], b"ctx") == b"same"


@pytest.mark.parametrize("threads", [1, 2, 3, 0])
def test_threads_do_not_change_output(threads: int) -> None:
    msg = os.urandom(50 * 16384 + 9)
    salt = b"s" * 24
    assert chunked.encrypt(KEY, msg, b"", salt=salt, threads=threads) == chunked.encrypt(
        KEY, msg, b"", salt=salt, threads=1
    )


def test_buffer_inputs() -> None:
    msg = os.urandom(100_000)
    expected = chunked.encrypt(KEY, msg, b"", salt=b"s" * 24)
    for buf in (bytearray(msg), memoryview(msg), np.frombuffer(msg, dtype=np.uint8)):
        assert chunked.encrypt(KEY, buf, b"", salt=b"s" * 24) == expected
    assert chunked.decrypt(KEY, memoryview(expected)[0:], b"") == msg


def test_non_contiguous_buffer_is_refused() -> None:
    arr = np.zeros((10, 10), dtype=np.uint8)[:, ::2]
    with pytest.raises(ValueError, match="contiguous"):
        chunked.encrypt(KEY, arr, b"")


def test_into_buffers_and_zeroing_on_failure() -> None:
    msg = os.urandom(40 * 16384 + 1)
    out = bytearray(chunked.sealed_length(len(msg)))
    chunked.encrypt_into(KEY, msg, b"c", out)
    back = bytearray(len(msg))
    chunked.decrypt_into(KEY, out, b"c", back)
    assert back == msg
    out[-1] ^= 1
    back = bytearray(b"\xff" * len(msg))
    with pytest.raises(DecryptionError):
        chunked.decrypt_into(KEY, out, b"c", back)
    assert back == bytes(len(msg))


def test_into_wrong_sizes_and_readonly() -> None:
    with pytest.raises(ValueError, match="output buffer"):
        chunked.encrypt_into(KEY, b"abc", b"", bytearray(5))
    with pytest.raises(ValueError, match="writable"):
        chunked.encrypt_into(KEY, b"abc", b"", bytes(chunked.sealed_length(3)))


@pytest.mark.parametrize("key", [b"", b"k" * 16, b"k" * 31, b"k" * 33])
def test_key_size(key: bytes) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        chunked.encrypt(key, b"m", b"")
    good = chunked.encrypt(KEY, b"m", b"")
    with pytest.raises(DecryptionError):
        chunked.decrypt(key, good, b"")


def test_salt_size() -> None:
    with pytest.raises(ValueError, match="24 bytes"):
        chunked.encrypt(KEY, b"m", b"", salt=b"short")


def test_streaming_misuse() -> None:
    enc = chunked.Encryptor(KEY, b"")
    enc.finalize()
    with pytest.raises(ValueError):
        enc.update(b"x")
    ct = chunked.encrypt(KEY, b"hello", b"")
    dec = chunked.Decryptor(KEY, b"")
    assert dec.update(ct) == b""  # the only chunk is final: held back until finalize
    assert dec.finalize() == b"hello"
    with pytest.raises(ValueError):
        dec.finalize()


def test_stream_decryptor_wrong_key_fails_at_commitment() -> None:
    ct = chunked.encrypt(KEY, b"x" * 50_000, b"")
    dec = chunked.Decryptor(b"\x00" * 32, b"")
    with pytest.raises(DecryptionError):
        dec.update(ct[:56])


def test_reprs_hide_keys() -> None:
    assert KEY.hex() not in repr(chunked.Encryptor(KEY, b"")) + repr(chunked.Decryptor(KEY, b""))
