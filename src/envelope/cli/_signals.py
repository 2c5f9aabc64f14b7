"""SIGTERM, SIGHUP and SIGINT end a command cleanly: its temporary files are removed and
the process exits 128 + the signal number, quietly (Ctrl-C exits 130).

The handler raises :class:`Terminated` in the main thread, so every ``with`` block and
``finally`` on the way out runs (an atomic output discards its file, a key-store lock is
released, ``init`` removes its half-written version directory); then any named temporary
still registered in :mod:`envelope._atomic` is removed. A second signal while that runs is
ignored.

CPython runs a signal's handler only when the main thread returns to Python code; a
signal that lands just before a blocking ``read`` (a stalled pipe or FIFO) would wait for
more input. So the C handler also writes to a wakeup pipe, and a small watcher thread
re-sends the signal to the main thread until the handler has run: the ``read`` fails with
EINTR and the handler runs at once.

SIGKILL cannot be caught: there ``O_TMPFILE`` outputs (see :mod:`envelope._atomic`) are
what leaves nothing behind.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

from envelope._atomic import remove_temps

__all__ = ["HANDLED", "Terminated", "run_terminable"]

#: The signals that end a command cleanly.
HANDLED = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class Terminated(BaseException):
    """Raised in the main thread by a handled signal (a BaseException: no ``except
    Exception`` on the way out can swallow it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def run_terminable(command: Callable[[], int]) -> int:
    """Runs ``command`` with :data:`HANDLED` signals turned into a clean exit.

    Returns:
        The command's exit code, or 128 + the signal number if a signal ended it.
    """
    if threading.current_thread() is not threading.main_thread():
        return command()  # signal handlers can only be set from the main thread
    state: dict[str, int | None] = {"signum": None}

    def handler(signum: int, frame: FrameType | None) -> None:
        if state["signum"] is None:
            state["signum"] = signum
            raise Terminated(signum)

    previous = {s: signal.signal(s, handler) for s in HANDLED}
    wakeup_read, wakeup_write = os.pipe()
    os.set_blocking(wakeup_write, False)
    previous_fd = signal.set_wakeup_fd(wakeup_write, warn_on_full_buffer=False)
    threading.Thread(
        target=_nudge,
        args=(wakeup_read, state, threading.main_thread().ident, handler),
        name="envelope-signals",
        daemon=True,
    ).start()
    try:
        return command()
    except Terminated as exc:
        return 128 + exc.signum
    finally:
        state["signum"] = -1  # from here on a signal changes nothing: we are leaving
        remove_temps()
        signal.set_wakeup_fd(previous_fd)
        os.close(wakeup_write)  # the watcher reads EOF and ends
        for s, h in previous.items():
            signal.signal(s, h)


def _nudge(
    wakeup: int,
    state: dict[str, int | None],
    main: int | None,
    handler: Callable[[int, FrameType | None], None],
) -> None:
    """Re-sends a handled signal to the main thread until its handler has run, and only
    while that handler is in place: a command that set its own for a while (``edit``
    removes its scratch files on a signal) has had the signal delivered to that one, and
    a second delivery would interrupt its clean-up."""
    signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)  # process signals go to the main thread
    try:
        while data := os.read(wakeup, 64):
            for signum in data:
                while (
                    signum in HANDLED
                    and state["signum"] is None
                    and main is not None
                    and signal.getsignal(signum) is handler
                ):
                    signal.pthread_kill(main, signum)
                    time.sleep(0.05)
    finally:
        os.close(wakeup)
