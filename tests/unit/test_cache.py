"""DataKeyCache: limits honoured exactly, single-flight, zeroing, and key/nonce uniqueness."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import pytest

from envelope import ClusterSecret, DataKeyCache, Envelope, LocalKms
from envelope._format.context import Context
from envelope._format.message import parse_header
from envelope.kms._types import DataKey, WrappedKey


class CountingKms(LocalKms):
    """The local keyring, counting its calls (and optionally slowing them down)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.generated = 0
        self.unwrapped = 0
        self.delay: Callable[[], None] = lambda: None
        self._count_lock = threading.Lock()

    def generate_data_key(self, context: Context) -> DataKey:
        with self._count_lock:
            self.generated += 1
        self.delay()
        return super().generate_data_key(context)

    def unwrap(self, wrapped: WrappedKey, context: Context) -> bytearray:
        with self._count_lock:
            self.unwrapped += 1
        self.delay()
        return super().unwrap(wrapped, context)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def kms() -> CountingKms:
    base = LocalKms.ephemeral()
    return CountingKms(base.key_id, base._keys, base._created, path=None, passphrase=None)


def data_key_of(blob: bytes) -> bytes:
    return parse_header(blob)[0].slots[0].wrapped


def test_max_messages_is_exact(kms: CountingKms) -> None:
    env = Envelope(kms, cache=DataKeyCache(max_messages=3))
    blobs = [env.encrypt(b"m") for _ in range(7)]
    assert kms.generated == 3  # messages 1-3, 4-6, 7
    assert [data_key_of(b) for b in blobs].count(data_key_of(blobs[0])) == 3
    assert data_key_of(blobs[3]) != data_key_of(blobs[2])


def test_max_bytes_is_exact(kms: CountingKms) -> None:
    env = Envelope(kms, cache=DataKeyCache(max_bytes=100))
    a, b, c = env.encrypt(b"x" * 60), env.encrypt(b"x" * 40), env.encrypt(b"x")
    assert data_key_of(a) == data_key_of(b) != data_key_of(c)  # 60 + 40 = 100 fits; 101 does not
    env.encrypt(b"y" * 200)  # larger than the limit on its own: a key of its own
    assert kms.generated == 3


def test_max_age_with_an_injected_clock(kms: CountingKms) -> None:
    clock = Clock()
    cache = DataKeyCache(max_age=60, clock=clock)
    env = Envelope(kms, cache=cache)
    first = env.encrypt(b"a")
    clock.now += 59.9
    assert data_key_of(env.encrypt(b"b")) == data_key_of(first)
    clock.now += 0.2  # 60.1 s after creation
    assert data_key_of(env.encrypt(b"c")) != data_key_of(first)
    assert kms.generated == 2


def test_decrypt_side_caches_unwraps_with_ttl_and_entry_limit(kms: CountingKms) -> None:
    clock = Clock()
    writer = Envelope(kms)
    blobs = [writer.encrypt(f"m{i}".encode()) for i in range(3)]
    reader = Envelope(kms, cache=DataKeyCache(max_age=10, max_entries=2, clock=clock))
    for _ in range(5):
        assert reader.decrypt(blobs[0], any_context=True) == b"m0"
    assert kms.unwrapped == 1
    reader.decrypt(blobs[1], any_context=True)
    reader.decrypt(blobs[2], any_context=True)  # evicts blobs[0]'s key (least recently used)
    assert kms.unwrapped == 3
    reader.decrypt(blobs[0], any_context=True)
    assert kms.unwrapped == 4
    clock.now += 11
    reader.decrypt(blobs[0], any_context=True)
    assert kms.unwrapped == 5
    stats = reader.cache.stats if reader.cache else None
    assert stats is not None and stats.hits == 4 and stats.kms_calls == 5


def test_cache_keys_include_the_context(kms: CountingKms) -> None:
    env = Envelope(kms, cache=DataKeyCache())
    a, b = env.encrypt(b"1", {"t": "a"}), env.encrypt(b"2", {"t": "b"})
    assert data_key_of(a) != data_key_of(b) and kms.generated == 2


def test_evicted_keys_are_zeroed(kms: CountingKms) -> None:
    cache = DataKeyCache(max_messages=1)
    env = Envelope(kms, cache=cache)
    env.encrypt(b"a")
    held = next(iter(cache._entries.values())).secret
    assert any(held)
    env.encrypt(b"b")  # the first key is used up and evicted
    assert held == bytearray(32)
    cache.clear()
    assert len(cache) == 0


def hold_until_others_wait(cache: DataKeyCache, kms: CountingKms, threads: int) -> None:
    """Holds the first KMS call open until the other threads wait on it (single flight),
    or until a second call shows they do not (no single flight): an event, not a guess
    at how long the others take to arrive."""
    import time

    def waiting() -> int:  # threads parked on an in-flight KMS call
        return sum(len(f.done._cond._waiters) for f in list(cache._flights.values()))

    deadline = time.monotonic() + 30
    while waiting() < threads - 1 and kms.generated == 1 and time.monotonic() < deadline:
        time.sleep(0.001)


def test_single_flight_16_threads_10000_encrypts_one_kms_call(kms: CountingKms) -> None:
    """16 threads x 10,000 encrypts with one cached key: exactly one KMS call, and no
    (key, nonce) pair repeats: every message has its own random salt."""
    cache = DataKeyCache(max_messages=200_000)
    kms.delay = lambda: hold_until_others_wait(cache, kms, 16)  # so all threads miss
    env = Envelope(kms, ClusterSecret.generate(), cache=cache)
    salts: list[list[bytes]] = [[] for _ in range(16)]
    barrier = threading.Barrier(16)

    def worker(i: int) -> None:
        barrier.wait()
        for _ in range(10_000):
            blob = env.encrypt(b"64 bytes of payload........................................")
            _, offset = parse_header(blob)
            salts[i].append(blob[offset : offset + 24])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert kms.generated == 1
    assert cache.stats.kms_calls == 1 and cache.stats.misses == 1
    assert cache.stats.hits == 16 * 10_000 - 1
    every = [s for part in salts for s in part]
    assert len(every) == 160_000 and len(set(every)) == 160_000


def test_single_flight_shares_failures(kms: CountingKms) -> None:
    from envelope.errors import KmsError

    cache = DataKeyCache()

    def fail() -> None:
        hold_until_others_wait(cache, kms, 8)
        raise KmsError("KMS down")

    kms.delay = fail
    env = Envelope(kms, cache=cache)
    errors: list[Exception] = []

    def worker() -> None:
        try:
            env.encrypt(b"x")
        except KmsError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 8 and kms.generated == 1


def test_streams_bypass_the_encryption_cache(kms: CountingKms) -> None:
    import io

    env = Envelope(kms, cache=DataKeyCache())
    for _ in range(3):
        env.encrypt_stream(io.BytesIO(b"unknown length"), io.BytesIO())
    assert kms.generated == 3


def test_batches_count_their_bytes(kms: CountingKms) -> None:
    env = Envelope(kms, cache=DataKeyCache(max_bytes=1000))
    env.encrypt_batch([os.urandom(100)] * 5)
    env.encrypt_batch([os.urandom(100)] * 5)
    env.encrypt_batch([os.urandom(100)] * 5)  # 1,500 bytes > 1,000
    assert kms.generated == 2


@pytest.mark.parametrize(
    "bad",
    [
        {"max_age": 0},
        {"max_messages": 0},
        {"max_bytes": -1},
        {"max_entries": 0},
        {"max_messages": 2**32 + 1},
    ],
)
def test_limits_are_validated(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        DataKeyCache(**bad)  # type: ignore[arg-type]


def test_repr_hides_keys(kms: CountingKms) -> None:
    cache = DataKeyCache()
    Envelope(kms, cache=cache).encrypt(b"x")
    secret = bytes(next(iter(cache._entries.values())).secret)
    assert secret.hex() not in repr(cache)


def test_cached_decrypt_still_checks_context_and_tampering(kms: CountingKms) -> None:
    from envelope import DecryptionError

    cache = DataKeyCache()
    env = Envelope(kms, ClusterSecret.generate(), cache=cache)
    blob = env.encrypt(b"payload", {"t": "a"})
    assert env.decrypt(blob, {"t": "a"}) == b"payload"  # now cached
    with pytest.raises(DecryptionError):
        env.decrypt(blob, {"t": "b"})
    bad = bytearray(blob)
    bad[-1] ^= 1
    with pytest.raises(DecryptionError):
        env.decrypt(bytes(bad), any_context=True)
    bad_header = bytearray(blob)
    bad_header[20] ^= 1
    with pytest.raises(DecryptionError):
        env.decrypt(bytes(bad_header), any_context=True)


def test_a_shared_cache_never_lends_keys_across_envelopes(kms: CountingKms) -> None:
    from envelope import KeyUnavailableError

    shared = DataKeyCache()
    cluster = ClusterSecret.generate()
    holder = Envelope(kms, cluster, cache=shared)
    blob = holder.encrypt(b"split")
    assert (
        holder.decrypt(blob, any_context=True) == b"split"
    )  # the input key is now in the shared cache
    outsider = Envelope(kms, cache=shared)  # same KMS, no cluster part
    with pytest.raises(KeyUnavailableError):
        outsider.decrypt(blob, any_context=True)
    stranger = Envelope(LocalKms.ephemeral(), cluster, cache=shared)  # part, but another KEK
    with pytest.raises(KeyUnavailableError):
        stranger.decrypt(blob, any_context=True)
