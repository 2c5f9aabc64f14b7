"""envelope.aio: AsyncEnvelope round trips, the sync API's errors, concurrency, the
thread pool, cancellation and closing, under a running loop (asyncio.run in each test).

A KMS that waits on a gate stands in for a slow KMS where the test must control the
moment a call returns (tests/integration/test_aio_kms.py uses a real slow server).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import doctest
import io
import os
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

import envelope.aio
from envelope import (
    ClusterSecret,
    DataKey,
    DataKeyCache,
    DecryptionError,
    Envelope,
    FormatError,
    KeyUnavailableError,
    LocalKms,
    WrappedKey,
    inspect,
)
from envelope._format.context import Context
from envelope.aio import AsyncEnvelope
from envelope.aio._inline import INLINE_BYTES
from envelope.keystore import FileKeyStore

CTX = {"service": "billing"}
LARGE = (4 << 20) + 5  # several stream pieces, several chunks per native call
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class GatedKms:
    """LocalKms whose calls wait until ``gate`` is set, recording each call's thread
    and every plaintext data key it hands out (to check they are wiped)."""

    def __init__(self) -> None:
        self._inner = LocalKms.ephemeral()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Semaphore(0)
        self.threads: list[int] = []
        self.keys: list[bytearray] = []
        self.calls = 0
        self.key_id_threads: list[int] = []  # a remote KMS may look its key id up

    @property
    def provider_id(self) -> str:
        return self._inner.provider_id

    @property
    def key_id(self) -> str:
        self.key_id_threads.append(threading.get_ident())
        return self._inner.key_id

    def matches(self, key_id: str) -> bool:
        return self._inner.matches(key_id)

    def _enter(self) -> None:
        self.calls += 1
        self.threads.append(threading.get_ident())
        self.entered.release()
        assert self.gate.wait(30), "the test never opened the gate"

    def generate_data_key(self, context: Context) -> DataKey:
        self._enter()
        key = self._inner.generate_data_key(context)
        self.keys.append(key.plaintext)
        return key

    def wrap(self, plaintext: bytes | bytearray, context: Context) -> WrappedKey:
        self._enter()
        return self._inner.wrap(plaintext, context)

    def unwrap(self, wrapped: WrappedKey, context: Context) -> bytearray:
        self._enter()
        key = self._inner.unwrap(wrapped, context)
        self.keys.append(key)
        return key

    def rewrap(self, wrapped: WrappedKey, context: Context) -> WrappedKey:
        self._enter()
        return self._inner.rewrap(wrapped, context)

    def health(self) -> None:
        self._inner.health()

    async def wait_entered(self) -> None:
        """Returns once a call is inside the KMS (waited for off the loop)."""
        assert await asyncio.to_thread(self.entered.acquire, True, 30)


def wiped(keys: list[bytearray]) -> bool:
    return all(not any(k) for k in keys)


@pytest.fixture
def cluster() -> ClusterSecret:
    return ClusterSecret.generate()


def test_bytes_round_trip_and_interop_with_the_sync_envelope(cluster: ClusterSecret) -> None:
    sync = Envelope(LocalKms.ephemeral(), cluster)

    async def main() -> None:
        async with AsyncEnvelope.wrap(sync) as env:
            assert env.envelope is sync and env.kms is sync.kms
            for n in (0, 1, 16385, LARGE):
                data = os.urandom(n)
                blob = await env.encrypt(data, CTX)
                assert sync.decrypt(blob, CTX) == data
                assert await env.decrypt(sync.encrypt(data, CTX), CTX) == data
                assert await env.decrypt(blob, any_context=True) == data

    run(main())


def test_built_from_the_envelope_arguments(tmp_path: Path, cluster: ClusterSecret) -> None:
    kms = LocalKms.ephemeral()

    async def main() -> None:
        cache = DataKeyCache()
        async with AsyncEnvelope(
            kms, cluster, keystore=FileKeyStore(tmp_path), cache=cache, threads=1
        ) as env:
            assert env.cache is cache
            assert "AsyncEnvelope(Envelope(" in repr(env)
            version = await env.store_new_key("reports", CTX)
            blob = await env.encrypt(b"by reference", CTX, key_ref="reports")
            assert await env.decrypt(blob, CTX) == b"by reference"
            assert await env.rewrap_stored_key("reports", version) == version
            assert await env.decrypt(blob, CTX) == b"by reference"
            first = await env.encrypt(b"a", CTX)
            second = await env.encrypt(b"b", CTX)
            assert cache.stats.hits >= 1
            assert [await env.decrypt(m, CTX) for m in (first, second)] == [b"a", b"b"]

    run(main())


def test_rewrap_and_verify_key_slots(cluster: ClusterSecret) -> None:
    kms = LocalKms.ephemeral()

    async def main() -> None:
        async with AsyncEnvelope(kms, cluster) as env:
            blob = await env.encrypt(b"payload", CTX)
            kms.rotate()
            rewrapped = await env.rewrap(blob)
            assert rewrapped != blob
            assert await env.decrypt(rewrapped, CTX) == b"payload"
            assert [p for _, _, p in await env.verify_key_slots(rewrapped)] == [None]

    run(main())


def test_record_batches(cluster: ClusterSecret) -> None:
    async def main() -> None:
        async with AsyncEnvelope(LocalKms.ephemeral(), cluster) as env:
            records = [os.urandom(i) for i in range(50)]
            aad = [str(i).encode() for i in range(50)]
            batch = await env.encrypt_batch(records, aad=aad, context=CTX)
            assert await env.decrypt_batch(batch, aad=aad, context=CTX) == records
            header = await env.batch_header(batch.header, context=CTX)
            assert header.decrypt_record(batch.records[7], aad[7]) == records[7]
            with pytest.raises(DecryptionError) as info:
                await env.decrypt_batch(batch, aad=aad[::-1], context=CTX)
            assert info.value.index == 0

    run(main())


def test_streams_and_files_round_trip(tmp_path: Path, cluster: ClusterSecret) -> None:
    data = os.urandom(LARGE)
    (tmp_path / "plain").write_bytes(data)

    async def main() -> None:
        async with AsyncEnvelope(LocalKms.ephemeral(), cluster) as env:
            sealed = io.BytesIO()
            assert await env.encrypt_stream(io.BytesIO(data), sealed, CTX) == LARGE
            opened = io.BytesIO()
            sealed.seek(0)
            assert await env.decrypt_stream(sealed, opened, CTX) == LARGE
            assert opened.getvalue() == data
            assert await env.encrypt_file(tmp_path / "plain", tmp_path / "sealed", CTX) == LARGE
            await env.rewrap_file(tmp_path / "sealed")
            n = await env.decrypt_file(tmp_path / "sealed", tmp_path / "out", CTX, mode=0o640)
            assert n == LARGE and (tmp_path / "out").read_bytes() == data
            assert (tmp_path / "out").stat().st_mode & 0o777 == 0o640

    run(main())


def test_errors_are_the_sync_apis(tmp_path: Path, cluster: ClusterSecret) -> None:
    sync = Envelope(LocalKms.ephemeral(), cluster)
    blob = sync.encrypt(b"secret", CTX)
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    other = Envelope(LocalKms.ephemeral(), cluster).encrypt(b"x", CTX)
    cases: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
        ("decrypt", (bytes(tampered), CTX), {}),
        ("decrypt", (blob, {"service": "other"}), {}),
        ("decrypt", (blob,), {}),
        ("decrypt", (b"not a message",), {"any_context": True}),
        ("decrypt", (other, CTX), {}),
        ("decrypt", (blob, CTX), {"any_context": True}),
        ("encrypt", (b"x", {"service": 1}), {}),
        ("encrypt", (b"x", CTX), {"key_ref": "nowhere"}),
        ("rewrap", (b"garbage",), {}),
        ("decrypt_file", (tmp_path / "missing", tmp_path / "out"), {}),
    ]

    async def main() -> None:
        async with AsyncEnvelope.wrap(sync) as env:
            for name, args, kwargs in cases:
                with pytest.raises(Exception) as expected:
                    getattr(sync, name)(*args, **kwargs)
                with pytest.raises(type(expected.value)) as got:
                    await getattr(env, name)(*args, **kwargs)
                assert type(got.value) is type(expected.value), name
                assert str(got.value) == str(expected.value), name

    run(main())
    cached = Envelope(sync.kms, cluster, cache=DataKeyCache())
    assert cached.decrypt(blob, CTX) == b"secret"  # cached: later calls run on the loop

    async def on_the_loop() -> None:
        async with AsyncEnvelope.wrap(cached) as env:
            for name, args, kwargs in cases[:6]:
                with pytest.raises(Exception) as expected:
                    getattr(cached, name)(*args, **kwargs)
                with pytest.raises(type(expected.value)) as got:
                    await getattr(env, name)(*args, **kwargs)
                assert str(got.value) == str(expected.value), name

    run(on_the_loop())
    kinds = {DecryptionError, FormatError, KeyUnavailableError}
    assert kinds <= {type(e) for e in _raised(sync, cases)}


def _raised(sync: Envelope, cases: list[tuple[str, tuple[Any, ...], dict[str, Any]]]) -> list[Any]:
    out = []
    for name, args, kwargs in cases:
        try:
            getattr(sync, name)(*args, **kwargs)
        except Exception as exc:
            out.append(exc)
    return out


def test_concurrent_calls(cluster: ClusterSecret) -> None:
    async def main() -> None:
        async with AsyncEnvelope(LocalKms.ephemeral(), cluster, max_workers=4) as env:
            plain = [os.urandom(100 + i) for i in range(64)]
            blobs = await asyncio.gather(
                *(env.encrypt(p, {"n": str(i)}) for i, p in enumerate(plain))
            )
            assert len(set(blobs)) == 64
            back = await asyncio.gather(
                *(env.decrypt(b, {"n": str(i)}) for i, b in enumerate(blobs))
            )
            assert back == plain

    run(main())


def test_calls_run_on_the_pool_not_the_loop(tmp_path: Path, cluster: ClusterSecret) -> None:
    kms = GatedKms()
    data = os.urandom(LARGE)
    sealed = Envelope(kms, cluster).encrypt(data, CTX)
    (tmp_path / "sealed").write_bytes(sealed)
    kms.threads.clear()
    progress_threads: list[int] = []

    async def main() -> int:
        loop_thread = threading.get_ident()
        async with AsyncEnvelope(kms, cluster) as env:
            assert await env.decrypt(sealed, CTX) == data
            await env.decrypt_file(
                tmp_path / "sealed",
                tmp_path / "out",
                CTX,
                progress=lambda n: progress_threads.append(threading.get_ident()),
            )
        return loop_thread

    loop_thread = run(main())
    assert len(kms.threads) == 2 and loop_thread not in kms.threads
    assert len(progress_threads) > 1 and loop_thread not in progress_threads


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


def test_a_shared_executor_is_left_running(cluster: ClusterSecret) -> None:
    with concurrent.futures.ThreadPoolExecutor(2) as pool:

        async def main() -> None:
            async with AsyncEnvelope(LocalKms.ephemeral(), cluster, executor=pool) as env:
                assert await env.decrypt(await env.encrypt(b"x")) == b"x"

        run(main())
        assert pool.submit(lambda: 42).result() == 42
    with pytest.raises(ValueError, match="not both"):
        AsyncEnvelope(LocalKms.ephemeral(), executor=pool, max_workers=2)
    with pytest.raises(ValueError, match=">= 1"):
        AsyncEnvelope(LocalKms.ephemeral(), max_workers=0)


def test_the_callers_context_variables_reach_the_pool(tmp_path: Path) -> None:
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")
    seen: list[str] = []
    (tmp_path / "in").write_bytes(b"x" * 100)

    async def main() -> None:
        async with AsyncEnvelope(LocalKms.ephemeral()) as env:
            request_id.set("req-7")
            await env.encrypt_file(
                tmp_path / "in", tmp_path / "out", progress=lambda n: seen.append(request_id.get())
            )

    run(main())
    assert seen == ["req-7"]


def test_from_settings(tmp_path: Path) -> None:
    from envelope.settings import Settings

    keyring = tmp_path / "ring.json"
    LocalKms.create(keyring)
    settings = Settings.resolve({"kms": {"kind": "local", "keyring": str(keyring)}}, {})

    async def main() -> None:
        env = await AsyncEnvelope.from_settings(settings, max_workers=2)
        async with env:
            assert await env.decrypt(await env.encrypt(b"x", CTX), CTX) == b"x"

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


def test_module_example() -> None:
    result = doctest.testmod(envelope.aio)
    assert result.attempted > 0 and result.failed == 0
