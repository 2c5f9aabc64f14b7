"""Streaming bodies through reused buffers: every length, short reads, failures."""

from __future__ import annotations

import io
import os
import threading
import time

import pytest

from envelope import DecryptionError, _native, chunked
from envelope._streams import PIECE_CHUNKS, RING, open_stream, seal_stream

KEY = os.urandom(32)
CTX = b"ctx"
CHUNK = chunked.CHUNK_SIZE
PIECE = PIECE_CHUNKS * CHUNK
LENGTHS = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, PIECE - 1, PIECE, PIECE + 1, 2 * PIECE + 5]
# Long enough to go round the ring of buffers more than once.
LONG = (2 * RING + 1) * PIECE + 7


class Trickle(io.RawIOBase):
    """A pipe-like reader that returns at most ``step`` bytes per call."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._pos, self._step = data, 0, step

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        n = min(len(b), self._step, len(self._data) - self._pos)
        b[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


class ReadOnly:
    """A reader with ``read`` but no ``readinto``."""

    def __init__(self, data: bytes) -> None:
        self._f = io.BytesIO(data)

    def read(self, n: int) -> bytes:
        return self._f.read(n)


@pytest.mark.parametrize("length", LENGTHS)
def test_stream_equals_one_shot_format(length: int) -> None:
    data = os.urandom(length)
    out = io.BytesIO()
    assert seal_stream(KEY, CTX, io.BytesIO(data), out) == length
    ct = out.getvalue()
    assert len(ct) == chunked.sealed_length(length)
    assert chunked.decrypt(KEY, ct, CTX) == data
    back = io.BytesIO()
    assert open_stream(KEY, CTX, io.BytesIO(ct), back) == length
    assert back.getvalue() == data


@pytest.mark.parametrize("step", [1000, CHUNK + 3, 3 * _native.SEALED_CHUNK_LEN])
def test_short_reads_and_read_only_sources(step: int) -> None:
    data = os.urandom(PIECE + 3 * CHUNK + 11)
    out = io.BytesIO()
    seal_stream(KEY, CTX, Trickle(data, step), out)  # type: ignore[arg-type]
    ct = out.getvalue()
    assert chunked.decrypt(KEY, ct, CTX) == data
    back = io.BytesIO()
    open_stream(KEY, CTX, Trickle(ct, step), back)  # type: ignore[arg-type]
    assert back.getvalue() == data
    back = io.BytesIO()
    open_stream(KEY, CTX, ReadOnly(ct), back)  # type: ignore[arg-type]
    assert back.getvalue() == data


def _ciphertext(length: int) -> tuple[bytes, bytes]:
    data = os.urandom(length)
    return data, chunked.encrypt(KEY, data, CTX)


@pytest.mark.parametrize("cut", [10, _native.PREFIX_LEN, -16, -(_native.SEALED_CHUNK_LEN + 16)])
def test_truncation_fails_and_only_authenticated_plaintext_is_written(cut: int) -> None:
    data, ct = _ciphertext(2 * PIECE + 100)
    back = io.BytesIO()
    with pytest.raises(DecryptionError):
        open_stream(KEY, CTX, io.BytesIO(ct[:cut]), back)
    written = back.getvalue()
    assert written == data[: len(written)]


class SlowSink(io.BytesIO):
    """A consumer that takes a while to copy each write, as a pipe's reader might."""

    def write(self, b: object) -> int:
        time.sleep(0.05)  # the failure is found meanwhile
        return super().write(b)  # type: ignore[arg-type]


def test_a_write_in_flight_at_a_failure_finishes_before_buffers_are_wiped() -> None:
    data, ct = _ciphertext(2 * PIECE + 100)
    back = SlowSink()
    with pytest.raises(DecryptionError):
        open_stream(KEY, CTX, io.BytesIO(ct[:-16]), back)
    written = back.getvalue()
    assert len(written) >= PIECE and written == data[: len(written)]


def test_tampered_chunk_mid_stream_stops_before_it() -> None:
    data, ct = _ciphertext(3 * PIECE)
    bad = bytearray(ct)
    bad[_native.PREFIX_LEN + (PIECE_CHUNKS + 5) * _native.SEALED_CHUNK_LEN] ^= 1
    back = io.BytesIO()
    with pytest.raises(DecryptionError):
        open_stream(KEY, CTX, io.BytesIO(bytes(bad)), back)
    written = back.getvalue()
    assert written == data[: len(written)] and len(written) <= (PIECE_CHUNKS + 5) * CHUNK


def test_wrong_context_and_trailing_data_fail() -> None:
    _, ct = _ciphertext(PIECE + 1)
    with pytest.raises(DecryptionError):
        open_stream(KEY, b"other", io.BytesIO(ct), io.BytesIO())
    with pytest.raises(DecryptionError):
        open_stream(KEY, CTX, io.BytesIO(ct + b"x"), io.BytesIO())


def test_whole_chunk_calls_refuse_misuse() -> None:
    sealer = _native.StreamSealer(KEY, os.urandom(24), CTX)
    buf = bytearray(_native.SEALED_CHUNK_LEN)
    with pytest.raises(ValueError, match="prefix"):
        sealer.seal_chunks(bytes(CHUNK), buf)  # prefix not taken yet
    sealer.update(b"")
    with pytest.raises(ValueError, match="overlap"):
        sealer.seal_chunks(memoryview(buf)[:CHUNK], buf)
    with pytest.raises(ValueError, match="output buffer"):
        sealer.seal_chunks(bytes(CHUNK), bytearray(10))


class LaggingSink(io.BytesIO):
    """A consumer slower than the producer: every write waits a little first."""

    def write(self, b: object) -> int:
        time.sleep(0.005)
        return super().write(b)  # type: ignore[arg-type]


def test_round_the_ring_with_writes_queued_behind_a_slow_consumer() -> None:
    data = os.urandom(LONG)
    out = LaggingSink()
    assert seal_stream(KEY, CTX, io.BytesIO(data), out) == LONG
    ct = out.getvalue()
    assert chunked.decrypt(KEY, ct, CTX) == data
    back = LaggingSink()
    assert open_stream(KEY, CTX, io.BytesIO(ct), back) == LONG
    assert back.getvalue() == data


class HeldSink(io.BytesIO):
    """Holds its first write of a piece (not the short prefix before it) until
    ``release`` is set or a few seconds pass, and records how many pieces the producer
    had read by then."""

    def __init__(self, release: threading.Event, pieces: list[int]) -> None:
        super().__init__()
        self._release, self._pieces = release, pieces
        self.seen: int | None = None

    def write(self, b: bytes) -> int:  # type: ignore[override]
        if self.seen is None and len(b) >= CHUNK:
            self._release.wait(5)
            self.seen = len(self._pieces)
        return super().write(b)


@pytest.mark.parametrize("direction", ["seal", "open"])
def test_the_producer_queues_further_pieces_while_a_write_is_in_progress(direction: str) -> None:
    """The writer must find the next piece waiting when it finishes one: while the
    first write is held, every buffer of the ring but the one being written fills."""
    data = os.urandom(LONG)
    source = data if direction == "seal" else chunked.encrypt(KEY, data, CTX)
    release, pieces = threading.Event(), []

    def progress(n: int) -> None:
        pieces.append(n)
        if len(pieces) >= RING:
            release.set()

    sink = HeldSink(release, pieces)
    run = seal_stream if direction == "seal" else open_stream
    run(KEY, CTX, io.BytesIO(source), sink, progress=progress)
    assert sink.seen is not None and sink.seen >= RING
    if direction == "open":
        assert sink.getvalue() == data


class FailingSink(io.BytesIO):
    """A consumer whose first write fails (a full disk)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def write(self, b: object) -> int:
        self.calls += 1
        time.sleep(0.05)  # later pieces are queued meanwhile
        raise OSError(28, "No space left on device")


@pytest.mark.parametrize("direction", ["seal", "open"])
def test_no_write_is_attempted_after_a_failed_one(direction: str) -> None:
    data = os.urandom(LONG)
    source = data if direction == "seal" else chunked.encrypt(KEY, data, CTX)
    run = seal_stream if direction == "seal" else open_stream
    sink = FailingSink()
    with pytest.raises(OSError, match="No space"):
        run(KEY, CTX, io.BytesIO(source), sink)
    assert sink.calls == 1
