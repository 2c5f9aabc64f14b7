"""Cobblestone bodies between binary streams at the speed of the one-shot path.

Plaintext and ciphertext move through a ring of :data:`RING` buffer pairs (input,
output) allocated once per stream: each step seals or opens :data:`PIECE_CHUNKS` chunks
in one native call on every core (GIL released) while a reader thread fills the next
input buffer and a writer thread drains the output buffers of earlier pieces, so I/O
overlaps the cryptography. Up to ``RING - 1`` writes are queued: the write is the
slowest step on tmpfs (a page allocation and a copy per page, one writer per inode), so
the writer must never wait for the next piece to be handed over. Memory stays constant
(about 12 MiB) whatever the stream's length. The first piece is handled on the calling
thread, and buffers are only touched (and wiped) as far as they are used, so a short
stream (most secrets) costs no threads and almost no memory traffic.

Decryption writes only chunks that authenticated; a chunk of full size is never the
final one, so a stream cut anywhere still fails at the end (the caller has then
written an authenticated prefix, and :class:`~envelope.errors.DecryptionError` tells
it to discard it). The last piece (the whole message, if it fits in one) is written
only after the final chunk verified, so short messages are all or nothing.
"""

from __future__ import annotations

import collections
import contextlib
import mmap
import os
import queue
import stat
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, BinaryIO

from envelope import _native, chunked

__all__ = ["PIECE_CHUNKS", "open_stream", "seal_stream"]

#: Chunks per native call: 2 MiB of plaintext, enough to keep every core busy. A stream
#: that ends within the first piece is handled on the calling thread (no threads
#: started), and a message that fits in it is decrypted all or nothing.
PIECE_CHUNKS = 128
#: Buffer pairs in rotation: one piece in the cryptography while up to RING - 1 earlier
#: ones are queued for (or in) the writer.
RING = 3

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


class Prepended:
    """``src`` with ``head`` in front of it: bytes a caller already read (a message's
    salt and key commitment, read to check a candidate key) go back into the stream."""

    def __init__(self, head: bytes, src: BinaryIO) -> None:
        self._head = memoryview(head)
        self._src = src

    def readinto(self, view: memoryview) -> int:
        """Fills ``view`` from the head first, then from ``src``."""
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        return _fill(self._src, view)

    def fileno(self) -> int:
        """The descriptor of the stream behind the head."""
        return self._src.fileno()

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all, when ``n`` is negative)."""
        if n < 0:
            return bytes(self._head) + self._src.read()
        buf = bytearray(n)
        got = self.readinto(memoryview(buf))
        return bytes(buf[:got])


def _regular(stream: BinaryIO) -> bool:
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (AttributeError, OSError, ValueError):
        return False  # no descriptor (BytesIO and the like): nothing blocks


class _Worker:
    """One daemon thread running jobs in submission order; once a job has failed, the
    jobs queued after it fail with the same exception without running. Daemon, unlike a
    ThreadPoolExecutor's: a read blocked on a FIFO or pipe must not keep a process that
    is exiting on a signal alive (the executor's threads are joined at exit)."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Any, tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def _run(self) -> None:
        failed: BaseException | None = None
        while (job := self._jobs.get()) is not None:
            future, fn, args = job
            if not future.set_running_or_notify_cancel():
                continue
            if failed is not None:  # a later write must not land after a failed one
                future.set_exception(failed)
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to the caller through the future
                failed = exc
                future.set_exception(exc)

    def submit(self, fn: Any, *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self._jobs.put((future, fn, args))
        return future

    def stop(self) -> None:
        """Ends the thread after its current job (never waits for it)."""
        self._jobs.put(None)


class _Pipe:
    """One reader and one writer thread (started on first use): each runs its jobs in
    submission order. Several writes may be queued, so that the writer finds the next
    piece waiting when it finishes one instead of sleeping until the caller hands it
    over (on tmpfs the write is the slowest step: any gap in it is lost time)."""

    def __init__(self, src: BinaryIO, dst: BinaryIO) -> None:
        self._src, self._dst = src, dst
        self._reader: _Worker | None = None
        self._writer: _Worker | None = None
        self._read: Future[int] | None = None
        # Queued writes, oldest first, each with the buffer it reads from.
        self._writes: collections.deque[tuple[Future[object], object]] = collections.deque()
        # Reads overlap with crypto only from regular files: a read blocked on a FIFO,
        # pipe or terminal holds its stream's lock, so the main thread, unwinding on a
        # signal, could never close that stream. Those are read on the calling thread.
        self._threaded_read = _regular(src)

    def start_read(self, view: memoryview) -> None:
        if not self._threaded_read:  # see __init__
            done: Future[int] = Future()
            done.set_result(_fill(self._src, view))
            self._read = done
            return
        if self._reader is None:
            self._reader = _Worker("envelope-read")
        self._read = self._reader.submit(_fill, self._src, view)

    def read_result(self) -> int:
        """Bytes the last :meth:`start_read` got (0 if none is pending)."""
        pending, self._read = self._read, None
        return pending.result() if pending is not None else 0

    def write(self, view: memoryview) -> None:
        """Queues ``view`` behind the writes already queued (:meth:`claim` its buffer
        before filling it again)."""
        if len(view):
            if self._writer is None:
                self._writer = _Worker("envelope-write")
            self._writes.append((self._writer.submit(self._dst.write, view), view.obj))

    def claim(self, buffer: object) -> None:
        """Waits until no queued write reads from ``buffer`` (writes finish in order)."""
        while any(obj is buffer for _, obj in self._writes):
            self._writes.popleft()[0].result()

    def write_last(self, *views: memoryview | bytes) -> None:
        """Writes on the calling thread once every queued write is done."""
        self.flush()
        for view in views:
            if len(view):
                self._dst.write(view)

    def flush(self) -> None:
        while self._writes:
            self._writes.popleft()[0].result()

    def close(self, failure: BaseException | None) -> list[object]:
        """Stops both threads and returns the buffers that writes still in flight read
        from, which must then not be wiped: their bytes are on their way to ``dst``.

        On success nothing is pending (the last read saw the end and the last write
        ran on the caller's thread). After an ordinary error (a chunk that failed to
        authenticate) the queued writes are waited for: they hold authenticated
        plaintext that precedes the failure, and their buffers are wiped next. On a
        signal (an exception that is not an :class:`Exception`) they are abandoned, as
        is a pending read: either may be blocked for ever on a pipe.
        """
        if isinstance(failure, Exception):
            while self._writes:
                with contextlib.suppress(Exception):  # the first failure is the one raised
                    self._writes.popleft()[0].result()
        for worker in (self._reader, self._writer):
            if worker is not None:
                worker.stop()
        return [obj for _, obj in self._writes]


class _Ring:
    """``RING`` pairs of (input, output) buffers, piece ``k`` using pair ``k % RING``;
    each pair is allocated when first used, so a short stream costs one pair only."""

    def __init__(self, in_size: int, out_size: int) -> None:
        self._sizes = (in_size, out_size)
        self.pairs: list[tuple[mmap.mmap, mmap.mmap]] = []

    def pair(self, k: int) -> tuple[mmap.mmap, mmap.mmap]:
        """The buffers of piece ``k`` (asked for in order: 0, 1, 2, ...)."""
        if k % RING == len(self.pairs):
            self.pairs.append((_buffer(self._sizes[0]), _buffer(self._sizes[1])))
        return self.pairs[k % RING]


def _unused(buffers: list[mmap.mmap], in_flight: list[object]) -> list[mmap.mmap]:
    """The buffers no abandoned write still reads from."""
    return [b for b in buffers if not any(b is obj for obj in in_flight)]


def _buffer(size: int) -> mmap.mmap:
    """``size`` bytes of anonymous memory: zero pages that cost nothing until touched
    (a ``bytearray`` would be zero-filled up front)."""
    return mmap.mmap(-1, size)


def _wipe(buffers: list[mmap.mmap], used: int) -> None:
    """Zeroes the first ``used`` bytes of each buffer (no buffer was written further)."""
    for b in buffers:  # plaintext does not linger in freed memory
        n = min(used, len(b))
        b[:n] = bytes(n)


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
    ring = _Ring(PIECE_CHUNKS * CHUNK, PIECE_CHUNKS * SEALED)
    pipe = _Pipe(src, dst)
    total, k, used, done = 0, 0, 0, False
    failure: BaseException | None = None
    try:
        dst.write(sealer.update(b""))  # salt and commitment
        cur = memoryview(ring.pair(0)[0])
        n = _fill(src, cur)
        used = n
        while True:
            end = n < len(cur)
            if not end:  # read the next piece while this one is sealed
                nxt = memoryview(ring.pair(k + 1)[0])
                pipe.start_read(nxt)
            out = ring.pair(k)[1]
            pipe.claim(out)
            full = n // CHUNK
            sealed = memoryview(out)[: full * SEALED]
            if full:
                sealer.seal_chunks(cur[: full * CHUNK], sealed, threads)
            total += n
            if progress and n:
                progress(n)
            if end:  # the rest is the final, short chunk
                last = sealer.update(cur[full * CHUNK : n]) + sealer.finalize()
                pipe.write_last(sealed, last)
                done = True
                return total
            pipe.write(sealed)
            n = pipe.read_result()
            used = max(used, n)
            cur, k = nxt, k + 1
    except BaseException as exc:
        failure = exc
        raise
    finally:
        in_flight = pipe.close(failure)
        plain = [p for p, _ in ring.pairs]
        # After an error, all of each buffer: how far it was used is not tracked then.
        _wipe(_unused(plain, in_flight), used if done else max(map(len, plain), default=0))


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
    ring = _Ring((PIECE_CHUNKS + 1) * SEALED, PIECE_CHUNKS * CHUNK)
    pipe = _Pipe(src, dst)
    total, k, lo, at_start, used, done = 0, 0, SEALED, True, 0, False
    failure: BaseException | None = None
    try:
        cur = memoryview(ring.pair(0)[0])
        got = _fill(src, cur[SEALED:])
        while True:
            end = got < len(cur) - SEALED
            if not end:
                nxt = memoryview(ring.pair(k + 1)[0])
                pipe.start_read(nxt[SEALED:])
            if progress and got:
                progress(got)
            hi = SEALED + got
            if at_start:  # the commitment is checked once its 56 bytes are there
                take = min(PREFIX, hi - lo)
                opener.update(cur[lo : lo + take])
                lo, at_start = lo + take, False
            whole = (hi - lo - 1) // SEALED if hi > lo else 0
            out = ring.pair(k)[1]
            pipe.claim(out)
            opened = memoryview(out)[: whole * CHUNK]
            used = max(used, whole * CHUNK)
            if whole:
                opener.open_chunks(cur[lo : lo + whole * SEALED], opened, threads)
                lo += whole * SEALED
            rest = cur[lo:hi]
            if end:
                last = opener.update(rest) + opener.finalize()
                pipe.write_last(opened, last)
                done = True
                return total + len(opened) + len(last)
            pipe.write(opened)
            total += len(opened)
            nxt[SEALED - len(rest) : SEALED] = rest
            lo = SEALED - len(rest)
            got = pipe.read_result()
            cur, k = nxt, k + 1
    except BaseException as exc:
        failure = exc
        raise
    finally:
        in_flight = pipe.close(failure)
        plain = [p for _, p in ring.pairs]
        # After an error, all of each buffer: how far it was used is not tracked then.
        _wipe(_unused(plain, in_flight), used if done else max(map(len, plain), default=0))
