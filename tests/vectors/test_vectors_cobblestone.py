"""All 35 Wycheproof Cobblestone-256 vectors: one-shot, streaming, and re-encryption."""

from __future__ import annotations

import hashlib

import pytest

from envelope import chunked
from envelope.errors import DecryptionError
from tests.support.vectorfiles import ChunkedVector, cobblestone_256

VECTORS = cobblestone_256()


def test_there_are_35() -> None:
    assert len(VECTORS) == 35
    assert sum(v.valid for v in VECTORS) == 10


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: f"tc{v.tc_id}")
@pytest.mark.parametrize("threads", [1, 0])
def test_one_shot(v: ChunkedVector, threads: int) -> None:
    if v.valid:
        msg = chunked.decrypt(v.key, v.ct, v.ctx, threads=threads)
        assert len(msg) == v.msg_length
        assert hashlib.sha512(msg).digest() == v.msg_sha512
        # Encryption: re-encrypt with the vector's salt, byte for byte.
        assert chunked.encrypt(v.key, msg, v.ctx, salt=v.ct[:24], threads=threads) == v.ct
    else:
        with pytest.raises(DecryptionError):
            chunked.decrypt(v.key, v.ct, v.ctx, threads=threads)


# Byte-at-a-time feeding of the two 4 MiB vectors is left to `cargo test` (too slow here).
STREAM_CASES = [
    (v, step)
    for v in VECTORS
    for step in (1, 100, 16400, 16401, 1 << 20)
    if not (step == 1 and len(v.ct) > 40_000)
]


@pytest.mark.parametrize(("v", "step"), STREAM_CASES, ids=lambda x: str(getattr(x, "tc_id", x)))
def test_streaming(v: ChunkedVector, step: int) -> None:
    dec = chunked.Decryptor(v.key, v.ctx)
    released = bytearray()
    failed = False
    try:
        for i in range(0, max(len(v.ct), 1), step):
            released += dec.update(v.ct[i : i + step])
        released += dec.finalize()
    except DecryptionError:
        failed = True
    if v.valid:
        assert not failed
        assert hashlib.sha512(released).digest() == v.msg_sha512
        return
    assert failed
    limit = v.msg_length if "PartialPlaintext" in v.flags else 0
    assert limit is not None
    assert len(released) <= limit
    if 0 < len(released) == limit:
        assert hashlib.sha512(released).digest() == v.msg_sha512
    # It keeps failing, and releases nothing more.
    with pytest.raises(DecryptionError):
        dec.update(b"\x00" * 17)
    with pytest.raises(DecryptionError):
        dec.finalize()


@pytest.mark.parametrize("v", [v for v in VECTORS if v.valid], ids=lambda v: f"tc{v.tc_id}")
def test_streaming_encryptor_reproduces(v: ChunkedVector) -> None:
    msg = chunked.decrypt(v.key, v.ct, v.ctx)
    for step in (7, 16384, 100_000):
        enc = chunked.Encryptor(v.key, v.ctx, salt=v.ct[:24])
        out = bytearray()
        for i in range(0, len(msg), step):
            out += enc.update(msg[i : i + step])
        out += enc.finalize()
        assert bytes(out) == v.ct
