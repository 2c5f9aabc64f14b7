"""envelope.aio under cancellation, a full pool and cache fills in flight: a KMS that
waits on a gate (tests/support/gated_kms.py) holds a call for as long as the test needs
(tests/integration/test_aio_kms.py does the same with a real slow server)."""

from __future__ import annotations

import asyncio
import io
import os
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from envelope import ClusterSecret, DataKeyCache, Envelope, inspect
from envelope.aio import AsyncEnvelope
from envelope.aio._inline import INLINE_BYTES
from tests.support.gated_kms import GatedKms, wiped

CTX = {"service": "billing"}
LARGE = (4 << 20) + 5
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture
def cluster() -> ClusterSecret:
    return ClusterSecret.generate()


def test_the_pool_is_bounded(cluster: ClusterSecret) -> None:
    kms = GatedKms()
    kms.gate.clear()

    async def main() -> None:
        async with AsyncEnvelope(kms, cluster, max_workers=2) as env:
            tasks = [asyncio.create_task(env.encrypt(b"x")) for _ in range(5)]
            await kms.wait_entered()
            await kms.wait_entered()
            await asyncio.sleep(0)  # let the other three reach the pool's queue
            assert kms.calls == 2
            kms.gate.set()
            assert len(await asyncio.gather(*tasks)) == 5
        assert kms.calls == 5 and len(set(kms.threads)) <= 2

    run(main())


def test_cancelled_bytes_call_returns_at_once_and_wipes_its_key(cluster: ClusterSecret) -> None:
    kms = GatedKms()
    kms.gate.clear()

    async def main() -> None:
        async with AsyncEnvelope(kms, cluster, max_workers=1) as env:
            task = asyncio.create_task(env.encrypt(b"secret", CTX))
            queued = asyncio.create_task(env.encrypt(b"queued", CTX))
            await kms.wait_entered()
            task.cancel()
            queued.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task  # while the KMS call is still waiting
            with pytest.raises(asyncio.CancelledError):
                await queued
            assert not kms.gate.is_set()
            kms.gate.set()
            blob = await env.encrypt(b"later", CTX)  # the pool thread is free again
            assert await env.decrypt(blob, CTX) == b"later"
        assert kms.calls == 3  # the queued call never ran
        assert wiped(kms.keys)

    run(main())


@pytest.mark.parametrize("method", ["encrypt_file", "decrypt_file"])
def test_cancelled_file_call_leaves_no_output(
    tmp_path: Path, cluster: ClusterSecret, method: str
) -> None:
    kms = GatedKms()
    data = os.urandom(LARGE)
    (tmp_path / "in").write_bytes(
        data if method == "encrypt_file" else Envelope(kms, cluster).encrypt(data, CTX)
    )
    kms.gate.clear()

    async def main() -> None:
        async with AsyncEnvelope(kms, cluster) as env:
            task = asyncio.create_task(getattr(env, method)(tmp_path / "in", tmp_path / "out", CTX))
            await kms.wait_entered()
            task.cancel()
            await asyncio.sleep(0)
            assert not task.done()  # it waits for the worker to stop...
            kms.gate.set()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # ...which left nothing
            assert wiped(kms.keys)
            await getattr(env, method)(tmp_path / "in", tmp_path / "out", CTX)
            assert (tmp_path / "out").exists()

    run(main())


def test_cancelled_stream_call_writes_nothing_more(cluster: ClusterSecret) -> None:
    kms = GatedKms()
    kms.gate.clear()
    dst = io.BytesIO()

    async def main() -> None:
        async with AsyncEnvelope(kms, cluster) as env:
            task = asyncio.create_task(env.encrypt_stream(io.BytesIO(os.urandom(LARGE)), dst, CTX))
            await kms.wait_entered()
            task.cancel()
            await asyncio.sleep(0)  # the cancel reaches the call before the KMS answers
            kms.gate.set()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert dst.getvalue() == b""  # not even the header, and no worker writes on

    run(main())
    assert dst.getvalue() == b"" and wiped(kms.keys)


def test_cancelling_again_while_it_settles_still_waits(
    tmp_path: Path, cluster: ClusterSecret
) -> None:
    kms = GatedKms()
    (tmp_path / "in").write_bytes(os.urandom(1000))
    kms.gate.clear()

    async def main() -> None:
        async with AsyncEnvelope(kms, cluster) as env:
            task = asyncio.create_task(env.encrypt_file(tmp_path / "in", tmp_path / "out"))
            await kms.wait_entered()
            task.cancel()
            await asyncio.sleep(0)
            task.cancel()
            await asyncio.sleep(0)
            assert not task.done()
            kms.gate.set()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert not (tmp_path / "out").exists()

    run(main())


def test_aclose_waits_for_calls_and_refuses_new_ones(cluster: ClusterSecret) -> None:
    kms = GatedKms()
    kms.gate.clear()

    async def main() -> None:
        env = AsyncEnvelope(kms, cluster)
        task = asyncio.create_task(env.encrypt(b"in flight"))
        await kms.wait_entered()
        closing = asyncio.create_task(env.aclose())
        await asyncio.sleep(0)
        assert not closing.done()
        with pytest.raises(RuntimeError, match="closed"):
            await env.encrypt(b"late")
        kms.gate.set()
        await closing
        assert Envelope(kms, cluster).decrypt(await task) == b"in flight"
        await env.aclose()  # twice is fine

    run(main())


def test_cached_small_messages_run_on_the_loop_and_others_on_the_pool(
    cluster: ClusterSecret,
) -> None:
    kms = GatedKms()
    big = os.urandom(INLINE_BYTES + 1)

    async def main(inline_bytes: int) -> list[bool]:
        env = AsyncEnvelope(
            kms, cluster, cache=DataKeyCache(), max_workers=1, inline_bytes=inline_bytes
        )
        async with env:
            small_blob = await env.encrypt(b"small", CTX)  # the first call fills the cache
            big_blob = await env.encrypt(big, CTX)
            assert await env.decrypt(small_blob, CTX) == b"small"  # and the decrypt side
            kms.gate.clear()
            busy = asyncio.create_task(env.encrypt(b"x", {"other": "context"}))
            await kms.wait_entered()  # the pool's one thread waits on the KMS
            calls = [
                asyncio.create_task(env.encrypt(b"small", CTX)),
                asyncio.create_task(env.decrypt(small_blob, CTX)),
                asyncio.create_task(env.encrypt(big, CTX)),
                asyncio.create_task(env.decrypt(big_blob, CTX)),
            ]
            for _ in range(5):
                await asyncio.sleep(0)
            done = [c.done() for c in calls]
            kms.gate.set()
            await asyncio.gather(busy, *calls)
            assert calls[1].result() == b"small" and calls[3].result() == big
        return done

    assert run(main(INLINE_BYTES)) == [True, True, False, False]
    assert run(main(0)) == [False, False, False, False]


def test_messages_encrypted_on_the_loop_count_toward_the_cache_limits(
    cluster: ClusterSecret,
) -> None:
    cache = DataKeyCache(max_messages=3)
    kms = GatedKms()

    async def main() -> list[bytes]:
        async with AsyncEnvelope(kms, cluster, cache=cache) as env:
            return [await env.encrypt(b"m", CTX) for _ in range(7)]

    blobs = run(main())
    assert kms.calls == 3  # a fresh data key after every 3 messages, as in the sync API
    headers = {b[: inspect(b).header_bytes] for b in blobs}
    assert len(headers) == 3 and cache.stats.hits == 4


def test_the_loop_never_waits_for_a_cache_fill_nor_a_key_id_lookup(
    cluster: ClusterSecret,
) -> None:
    kms = GatedKms()
    env = AsyncEnvelope(kms, cluster, cache=DataKeyCache(), max_workers=2)
    kms.key_id_threads.clear()

    async def main() -> int:
        async with env:
            kms.gate.clear()
            leader = asyncio.create_task(env.encrypt(b"a", CTX))
            await kms.wait_entered()  # the cache's single flight for CTX is under way
            follower = asyncio.create_task(env.encrypt(b"b", CTX))
            await asyncio.sleep(0)  # a follower waiting on the flight here would hang
            assert not follower.done()
            kms.gate.set()
            blobs = await asyncio.gather(leader, follower)
            assert kms.calls == 1  # one KMS call for both: the follower took the cached key
            assert [await env.decrypt(b, CTX) for b in blobs] == [b"a", b"b"]
        return threading.get_ident()

    loop_thread = run(main())
    assert kms.key_id_threads and loop_thread not in kms.key_id_threads
