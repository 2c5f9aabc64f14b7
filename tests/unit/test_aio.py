"""envelope.aio: AsyncEnvelope round trips, the sync API's errors, concurrency, calls on
the pool (not the loop), the executor options, under a running loop (asyncio.run in
each test). Cancellation and the pool's limits: test_aio_cancellation.py."""

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
    DataKeyCache,
    DecryptionError,
    Envelope,
    FormatError,
    KeyUnavailableError,
    LocalKms,
)
from envelope.aio import AsyncEnvelope
from envelope.keystore import FileKeyStore
from tests.support.gated_kms import GatedKms

CTX = {"service": "billing"}
LARGE = (4 << 20) + 5  # several stream pieces, several chunks per native call
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


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


def test_module_example() -> None:
    result = doctest.testmod(envelope.aio)
    assert result.attempted > 0 and result.failed == 0
