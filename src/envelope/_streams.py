"""Cobblestone bodies between binary streams at the speed of the one-shot path.

Plaintext and ciphertext move through buffers allocated once per stream (two for
input, two for output): each step seals or opens :data:`PIECE_CHUNKS` chunks in one
native call on every core (GIL released) while a reader thread fills the other input
buffer and a writer thread drains the other output buffer, so I/O overlaps the
cryptography. Memory stays constant (about 8 MiB) whatever the stream's length.

Decryption writes only chunks that authenticated; a chunk of full size is never the
final one, so a stream cut anywhere still fails at the end (the caller has then
written an authenticated prefix, and :class:`~envelope.errors.DecryptionError` tells
it to discard it). The last piece (the whole message, if it fits in one) is written
only after the final chunk verified, so short messages are all or nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

from envelope import _native, chunked

__all__ = ["PIECE_CHUNKS", "open_stream", "seal_stream"]

#: Chunks per native call: 2 MiB of plaintext, enough to keep every core busy.
PIECE_CHUNKS = 128

CHUNK = _native.CHUNK_LEN
SEALED = _native.SEALED_CHUNK_LEN
PREFIX = _native.PREFIX_LEN

Progress = Callable[[int], None]


def _fill(src: BinaryIO, view: memoryview) -> int:
    """Reads into ``view`` until it is full or ``src`` ends; returns the bytes read."""
    readinto = getattr(src, "readinto", None)
    got = 0
    while got < len(view):
        if readinto is not None:
            n = readinto(view[got:])
        else:
            data = src.read(len(view) - got)
            n = len(data)
            view[got : got + n] = data
        if not n:
            break
        got += n
    return got


class _Pipe:
    """One reader and one writer thread: each runs its jobs in submission order."""

    def __init__(self, src: BinaryIO, dst: BinaryIO) -> None:
        self._src, self._dst = src, dst
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="envelope-read")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="envelope-write")
        self._read: Future[int] | None = None
        self._write: Future[object] | None = None

    def start_read(self, view: memoryview) -> None:
        self._read = self._reader.submit(_fill, self._src, view)

    def read_result(self) -> int:
        """Bytes the last :meth:`start_read` got (0 if none is pending)."""
        pending, self._read = self._read, None
        return pending.result() if pending is not None else 0

    def write(self, view: memoryview | bytes) -> None:
        """Queues ``view`` after the previous write has finished (one write in flight)."""
        self.flush()
        if len(view):
            self._write = self._writer.submit(self._dst.write, view)

    def flush(self) -> None:
        pending, self._write = self._write, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Waits for both threads (their errors are already raised or superseded)."""
        for pending in (self._read, self._write):
            if pending is not None:
                pending.exception()
        self._reader.shutdown()
        self._writer.shutdown()


def seal_stream(
    input_key: bytes | bytearray,
    context: bytes,
    src: BinaryIO,
    dst: BinaryIO,
    *,
    threads: int = 0,
    progress: Progress | None = None,
) -> int:
    """Writes to ``dst`` the Cobblestone ciphertext of everything ``src`` holds.

    Returns:
        The number of plaintext bytes read.

    Raises:
        ValueError: the key is not 32 bytes; OSError from the streams.
    """
    sealer = _native.StreamSealer(bytes(input_key), chunked._salt(None), context)
    plain = [bytearray(PIECE_CHUNKS * CHUNK) for _ in range(2)]
    sealed = [memoryview(bytearray(PIECE_CHUNKS * SEALED)) for _ in range(2)]
    pv = [memoryview(b) for b in plain]
    pipe = _Pipe(src, dst)
    total, i = 0, 0
    try:
        pipe.write(sealer.update(b""))  # salt and commitment
        pipe.start_read(pv[0])
        while True:
            n = pipe.read_result()
            end = n < len(pv[i])
            if not end:
                pipe.start_read(pv[1 - i])
            full = n // CHUNK
            if full:
                sealer.seal_chunks(pv[i][: full * CHUNK], sealed[i][: full * SEALED], threads)
                pipe.write(sealed[i][: full * SEALED])
            total += n
            if progress and n:
                progress(n)
            if end:  # the rest is the final, short chunk
                last = sealer.update(pv[i][full * CHUNK : n]) + sealer.finalize()
                pipe.write(last)
                pipe.flush()
                return total
            i = 1 - i
    finally:
        pipe.close()
        for b in plain:  # plaintext does not linger in freed memory
            b[:] = bytes(len(b))


def open_stream(
    input_key: bytes | bytearray,
    context: bytes,
    src: BinaryIO,
    dst: BinaryIO,
    *,
    threads: int = 0,
    progress: Progress | None = None,
) -> int:
    """Decrypts the Cobblestone ciphertext that ``src`` holds (from its position) to ``dst``.

    Only authenticated plaintext is written. Whole chunks are opened only once at
    least one more byte of ciphertext is known to follow them; the last piece is
    written only after the final chunk verified.

    Returns:
        The number of plaintext bytes written.

    Raises:
        DecryptionError: wrong key or context, tampering, truncation or trailing data
            (``dst`` may then hold an authenticated prefix of the plaintext).
        OSError: from the streams.
    """
    opener = _native.StreamOpener(bytes(input_key), context)
    # Each input buffer keeps SEALED bytes in front for the piece carried over.
    bufs = [memoryview(bytearray((PIECE_CHUNKS + 1) * SEALED)) for _ in range(2)]
    plain = [bytearray(PIECE_CHUNKS * CHUNK) for _ in range(2)]
    pv = [memoryview(b) for b in plain]
    pipe = _Pipe(src, dst)
    total, i, lo, first = 0, 0, SEALED, True
    try:
        pipe.start_read(bufs[0][SEALED:])
        while True:
            got = pipe.read_result()
            end = got < PIECE_CHUNKS * SEALED
            if not end:
                pipe.start_read(bufs[1 - i][SEALED:])
            if progress and got:
                progress(got)
            cur, hi = bufs[i], SEALED + got
            if first:  # the commitment is checked once its 56 bytes are there
                take = min(PREFIX, hi - lo)
                opener.update(cur[lo : lo + take])
                lo, first = lo + take, False
            whole = (hi - lo - 1) // SEALED if hi > lo else 0
            opened = pv[i][: whole * CHUNK]
            if whole:
                opener.open_chunks(cur[lo : lo + whole * SEALED], opened, threads)
                lo += whole * SEALED
            rest = cur[lo:hi]
            if end:
                last = opener.update(rest) + opener.finalize()
                pipe.write(opened)
                pipe.write(last)
                pipe.flush()
                return total + len(opened) + len(last)
            pipe.write(opened)
            total += len(opened)
            nxt = bufs[1 - i]
            nxt[SEALED - len(rest) : SEALED] = rest
            i, lo = 1 - i, SEALED - len(rest)
    finally:
        pipe.close()
        for b in plain:
            b[:] = bytes(len(b))
