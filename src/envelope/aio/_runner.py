"""Runs blocking Envelope calls on a bounded, dedicated thread pool from a running
event loop, with cancellation that leaves no half-done work behind."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from collections.abc import Callable
from typing import Any, BinaryIO, TypeVar

__all__ = ["Aborted", "GuardedWriter", "Runner", "check"]

T = TypeVar("T")

#: Worker threads of an AsyncEnvelope's own pool when none is given: enough for a few
#: KMS calls waiting at once beside large messages (the kernel runs the crypto of one
#: message on its own threads, without the GIL).
DEFAULT_WORKERS = 8


class Aborted(Exception):
    """Raised inside a worker whose caller was cancelled, at its next checkpoint (an
    ordinary exception, so that the stream and file paths unwind as after any failure:
    key wiped, buffers wiped, a temporary output discarded)."""

    def __init__(self) -> None:
        super().__init__("the call was cancelled")


def check(abort: threading.Event) -> None:
    """A checkpoint.

    Raises:
        Aborted: ``abort`` is set (the caller was cancelled).
    """
    if abort.is_set():
        raise Aborted()


class GuardedWriter:
    """A writable stream that refuses every write once ``abort`` is set: the checkpoint
    between a slow KMS call and the first byte of output, and between pieces."""

    def __init__(self, dst: BinaryIO, abort: threading.Event) -> None:
        self._dst = dst
        self._abort = abort

    def write(self, data: Any) -> int:
        """Writes ``data`` to the wrapped stream.

        Raises:
            Aborted: the caller was cancelled.
        """
        check(self._abort)
        return self._dst.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dst, name)


class Runner:
    """A bounded thread pool for one AsyncEnvelope (its own, or one the caller owns).

    Args:
        max_workers: threads of the pool this runner creates (None: :data:`DEFAULT_WORKERS`).
        executor: run on this pool instead; the runner then never shuts it down.

    Raises:
        ValueError: ``max_workers`` is less than 1, or given with ``executor``.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        executor: concurrent.futures.ThreadPoolExecutor | None = None,
    ) -> None:
        if executor is not None and max_workers is not None:
            raise ValueError("pass either max_workers= or executor=, not both")
        workers = DEFAULT_WORKERS if max_workers is None else max_workers
        if workers < 1:
            raise ValueError("max_workers must be >= 1")
        self._owned = executor is None
        self.executor = executor or concurrent.futures.ThreadPoolExecutor(
            workers, thread_name_prefix="envelope-aio"
        )
        self.closed = False

    async def run(self, call: Callable[[threading.Event], T], *, settle: bool) -> T:
        """``call(abort)`` on the pool; its result or exception, as if called here.

        On cancellation ``abort`` is set (``call`` checks it at its checkpoints) and a
        job that has not started never runs. With ``settle``, the cancelled await first
        waits for a started job to stop, so that an output it was writing is final
        (complete before the cancel, or discarded) when CancelledError reaches the
        caller; without it (bytes in, bytes out) the job finishes on its own, wiping its
        key as always, and its result is dropped.

        Raises:
            RuntimeError: the runner is closed. Whatever ``call`` raises.
            asyncio.CancelledError: the await was cancelled.
        """
        if self.closed:
            raise RuntimeError("this AsyncEnvelope is closed")
        abort = threading.Event()
        context = contextvars.copy_context()

        def job() -> T:
            check(abort)  # cancelled while queued behind other calls
            return context.run(call, abort)

        done = self.executor.submit(job)
        waiter = asyncio.wrap_future(done)
        waiter.add_done_callback(_consume)
        try:
            return await asyncio.shield(waiter)
        except asyncio.CancelledError:
            abort.set()
            if not done.cancel() and settle:
                await _settled(waiter)
            raise

    async def aclose(self) -> None:
        """Refuses new calls and, if the pool is this runner's own, waits (off the loop)
        for the calls under way to finish, then stops its threads."""
        if self.closed:
            return
        self.closed = True
        if self._owned:
            await asyncio.to_thread(self.executor.shutdown, wait=True)


async def _settled(waiter: asyncio.Future[Any]) -> None:
    """Waits until ``waiter`` is done, through further cancellations (re-raised after)."""
    cancelled = False
    while not waiter.done():
        try:
            await asyncio.wait({waiter})
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError()


def _consume(waiter: asyncio.Future[Any]) -> None:
    """Marks a dropped job's exception as seen (asyncio would log it as unhandled)."""
    if not waiter.cancelled():
        waiter.exception()
