"""envelope.aio against real KMSs: OpenBao's Transit and moto's AWS KMS, the latter also
behind SlowProxy (a real slow server), to show that a KMS call waiting does not block
the event loop, that big crypto runs off the loop thread, and that cancellation during a
slow call leaves nothing behind."""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from envelope import ClusterSecret, DecryptionError, Envelope, KmsError
from envelope.aio import AsyncEnvelope
from envelope.kms._aws import AwsKms
from envelope.kms._vault import VaultTransit
from envelope.kms._vault_auth import TokenAuth
from tests.support.kms_plugin import SlowProxy
from tests.support.openbao import OpenBao

CTX = {"service": "billing"}
DELAY = 1.0  # seconds SlowProxy holds each request to the KMS
TICK = DELAY / 20  # the heartbeat's period: about 20 ticks while one slow call waits


def aws_key(url: str) -> str:
    client = boto3.client("kms", endpoint_url=url, region_name="eu-west-1")
    return str(client.create_key(Description="aio KEK")["KeyMetadata"]["Arn"])


@pytest.fixture
def proxy(moto_url: str) -> Iterator[SlowProxy]:
    host, port = moto_url.removeprefix("http://").split(":")
    slow = SlowProxy((host, int(port)), delay=DELAY)
    try:
        yield slow
    finally:
        slow.close()


@pytest.fixture
def slow_aws(proxy: SlowProxy, moto_url: str) -> AwsKms:
    """An AwsKms whose requests go through the proxy (fast until ``proxy.slow`` is set)."""
    return AwsKms(aws_key(moto_url), endpoint_url=proxy.url, region="eu-west-1")


async def ticks_during(work: Callable[[], Awaitable[Any]]) -> tuple[int, Any]:
    """How often a heartbeat coroutine ticked (every TICK s) while ``work`` ran."""
    ticks = 0
    done = asyncio.Event()

    async def heartbeat() -> None:
        nonlocal ticks
        while not done.is_set():
            await asyncio.sleep(TICK)
            ticks += 1

    beat = asyncio.create_task(heartbeat())
    try:
        result = await work()
    finally:
        done.set()
        await beat
    return ticks, result


async def until_requests_exceed(proxy: SlowProxy, count: int) -> None:
    """Yields to the loop until the proxy holds a request beyond the first ``count``."""
    for _ in range(3000):
        if proxy.requests > count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no request reached the KMS")


# -- OpenBao --------------------------------------------------------------------------


@pytest.fixture
def key(openbao: OpenBao) -> str:
    name = f"aio-{secrets.token_hex(4)}"
    openbao.write(f"transit/keys/{name}", derived=True)
    return name


@pytest.fixture
def transit(openbao: OpenBao, key: str) -> VaultTransit:
    return VaultTransit(key, url=openbao.url, auth=TokenAuth(openbao.root_token))


def test_openbao_round_trips_and_concurrent_calls(transit: VaultTransit, tmp_path: Path) -> None:
    cluster = ClusterSecret.generate()
    data = os.urandom((2 << 20) + 11)
    (tmp_path / "plain").write_bytes(data)

    async def main() -> None:
        async with AsyncEnvelope(transit, cluster, max_workers=4) as env:
            blob = await env.encrypt(data, CTX)
            assert Envelope(transit, cluster).decrypt(blob, CTX) == data
            assert await env.decrypt(blob, CTX) == data
            await env.encrypt_file(tmp_path / "plain", tmp_path / "sealed", CTX)
            await env.decrypt_file(tmp_path / "sealed", tmp_path / "out", CTX)
            assert (tmp_path / "out").read_bytes() == data
            plain = [os.urandom(64) for _ in range(24)]
            blobs = await asyncio.gather(*(env.encrypt(p, CTX) for p in plain))
            assert await asyncio.gather(*(env.decrypt(b, CTX) for b in blobs)) == plain
            batch = await env.encrypt_batch(plain, context=CTX)
            assert await env.decrypt_batch(batch, context=CTX) == plain

    asyncio.run(main())


def test_openbao_errors_are_the_sync_apis(
    openbao: OpenBao, key: str, transit: VaultTransit
) -> None:
    sync = Envelope(transit)
    blob = sync.encrypt(b"secret", CTX)
    missing = VaultTransit("no-such-key", url=openbao.url, auth=TokenAuth(openbao.root_token))
    denied = VaultTransit(key, url=openbao.url, auth=TokenAuth("not-a-token"))

    async def same(sync_env: Envelope, method: str, *args: Any) -> Exception:
        with pytest.raises(Exception) as expected:
            getattr(sync_env, method)(*args)
        async with AsyncEnvelope.wrap(sync_env) as env:
            with pytest.raises(type(expected.value)) as got:
                await getattr(env, method)(*args)
        assert type(got.value) is type(expected.value)
        assert str(got.value) == str(expected.value)
        return got.value

    async def main() -> None:
        assert isinstance(await same(sync, "decrypt", blob, {"service": "other"}), DecryptionError)
        assert isinstance(await same(Envelope(missing), "encrypt", b"x", CTX), KmsError)
        assert isinstance(await same(Envelope(denied), "decrypt", blob, CTX), KmsError)

    asyncio.run(main())


# -- moto behind a slow proxy ---------------------------------------------------------


def test_the_loop_keeps_running_while_the_kms_is_slow(slow_aws: AwsKms, proxy: SlowProxy) -> None:
    cluster = ClusterSecret.generate()
    sync = Envelope(slow_aws, cluster)
    blob = sync.encrypt(b"warm the connection", CTX)

    async def main() -> tuple[int, int, int]:
        async with AsyncEnvelope.wrap(sync) as env:
            proxy.slow.set()
            before = proxy.requests
            async_ticks, out = await ticks_during(lambda: env.decrypt(blob, CTX))
            assert out == b"warm the connection" and proxy.requests > before
            gathered, _ = await ticks_during(
                lambda: asyncio.gather(*(env.encrypt(b"x", CTX) for _ in range(4)))
            )

            async def blocking() -> bytes:  # the control: the sync call on the loop
                return sync.decrypt(blob, CTX)

            sync_ticks, _ = await ticks_during(blocking)
        return async_ticks, gathered, sync_ticks

    async_ticks, gathered, sync_ticks = asyncio.run(main())
    expected = DELAY / TICK
    assert async_ticks >= expected / 4, (async_ticks, expected)
    assert gathered >= expected / 4, (gathered, expected)
    assert sync_ticks <= 1, sync_ticks  # blocked: the heartbeat never ran


def test_large_messages_are_decrypted_off_the_loop_thread(slow_aws: AwsKms, tmp_path: Path) -> None:
    cluster = ClusterSecret.generate()
    data = os.urandom(8 << 20)
    (tmp_path / "plain").write_bytes(data)
    progress_threads: list[int] = []

    async def main() -> int:
        async with AsyncEnvelope(slow_aws, cluster) as env:
            await env.encrypt_file(tmp_path / "plain", tmp_path / "sealed", CTX)
            await env.decrypt_file(
                tmp_path / "sealed",
                tmp_path / "out",
                CTX,
                progress=lambda n: progress_threads.append(threading.get_ident()),
            )
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert (tmp_path / "out").read_bytes() == data
    assert len(progress_threads) > 1 and loop_thread not in progress_threads


def test_cancelling_during_a_slow_kms_call(
    slow_aws: AwsKms, proxy: SlowProxy, tmp_path: Path
) -> None:
    cluster = ClusterSecret.generate()
    data = os.urandom(3 << 20)
    sealed = Envelope(slow_aws, cluster).encrypt(data, CTX)
    (tmp_path / "sealed").write_bytes(sealed)

    async def main() -> None:
        async with AsyncEnvelope(slow_aws, cluster) as env:
            proxy.slow.set()
            for call in (
                lambda: env.decrypt(sealed, CTX),
                lambda: env.decrypt_file(tmp_path / "sealed", tmp_path / "out", CTX),
            ):
                before = proxy.requests
                task = asyncio.create_task(call())
                await until_requests_exceed(proxy, before)  # the request is being held
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert sorted(p.name for p in tmp_path.iterdir()) == ["sealed"]
            with pytest.raises(TimeoutError):  # asyncio.timeout cancels the same way
                async with asyncio.timeout(DELAY / 4):
                    await env.decrypt_file(tmp_path / "sealed", tmp_path / "out", CTX)
            assert sorted(p.name for p in tmp_path.iterdir()) == ["sealed"]
            proxy.slow.clear()
            assert await env.decrypt(sealed, CTX) == data
            await env.decrypt_file(tmp_path / "sealed", tmp_path / "out", CTX)
            assert (tmp_path / "out").read_bytes() == data
            assert await env.decrypt(await env.encrypt(b"after", CTX), CTX) == b"after"

    asyncio.run(main())
