"""fork() after parallel kernel use: the child must not wait on the parent's workers.

The kernel spreads large messages (>= 16 chunks) and large batches (>= 8,192 records)
over a thread pool. Threads do not survive fork(), so a child forked after the pool
started (gunicorn --preload, Celery prefork, multiprocessing's fork start method) used
to hang for ever on its first parallel call. Each test forks for real and waits with a
deadline, so a regression fails instead of hanging the suite.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time

import pytest

from envelope import Envelope, LocalKms, chunked

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

#: Seconds a child gets to finish work that takes milliseconds.
DEADLINE = 30.0
KEY = bytes(range(32))
BIG = os.urandom(4 << 20)  # 256 chunks: parallel in the kernel
RECORDS = [os.urandom(64) for _ in range(10_000)]  # above the batch parallel threshold


def parallel_work() -> bool:
    """One large message and one large batch, round-tripped (True if all is well)."""
    ct = chunked.encrypt(KEY, BIG, b"ctx", threads=0)
    if chunked.decrypt(KEY, ct, b"ctx", threads=0) != BIG:
        return False
    env = Envelope(LocalKms.ephemeral())
    sealed = env.encrypt_batch(RECORDS)
    if list(env.decrypt_batch(sealed)) != RECORDS:
        return False
    return env.decrypt(env.encrypt(BIG)) == BIG


def _wait(pid: int) -> int:
    """Waits for ``pid`` until DEADLINE; kills it and fails the test if it hangs."""
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"forked child still running after {DEADLINE:.0f} s: it hangs on the pool")


def _fork_and_run() -> int:
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            code = 0 if parallel_work() else 2
        finally:
            os._exit(code)
    return _wait(pid)


def test_child_forked_after_parallel_use_does_not_hang() -> None:
    assert parallel_work()  # starts the parent's pool
    assert _fork_and_run() == 0
    assert parallel_work()  # the parent's pool still works


def test_grandchild_and_repeated_forks() -> None:
    assert parallel_work()
    for _ in range(2):
        assert _fork_and_run() == 0
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            parallel_work()
            code = _fork_and_run()  # a child of a child that used its own pool
        finally:
            os._exit(code)
    assert _wait(pid) == 0


@pytest.mark.skipif(sys.platform == "darwin", reason="fork start method unsafe on macOS")
def test_multiprocessing_fork_pool() -> None:
    assert parallel_work()
    ctx = multiprocessing.get_context("fork")
    pool = ctx.Pool(2)
    try:
        results = [pool.apply_async(parallel_work) for _ in range(4)]
        assert all(r.get(timeout=DEADLINE) for r in results)
    except multiprocessing.TimeoutError:
        pytest.fail("a fork-context Pool worker hangs on the parent's thread pool")
    finally:
        pool.terminate()
        pool.join()
