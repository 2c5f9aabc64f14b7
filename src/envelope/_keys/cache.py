"""``DataKeyCache``: fewer KMS calls, within limits that keep every message's key unique.

Encrypt side: a data key (with its key slot) is reused for new messages until it is
``max_age`` seconds old, has encrypted ``max_messages`` messages, or ``max_bytes`` of
plaintext; then the next message gets a fresh one. Reuse is safe because every message
still derives its own AES key and nonce from the data key and a fresh random 192-bit
salt (Cobblestone); docs/design.md gives the bound.

Decrypt side: unwrapped data keys are kept for ``max_age`` seconds, keyed by backend, key
id, wrapped bytes and context, so re-reading the same stored key costs one KMS call.

Both sides hold at most ``max_entries`` entries (least recently used go first), keep key
bytes in ``bytearray``s that are zeroed on eviction, and are single-flight: when many
threads miss the same entry, one calls the KMS and the others wait for its result.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from envelope import _telemetry

__all__ = ["CacheStats", "DataKeyCache"]

T = TypeVar("T")


@dataclass
class CacheStats:
    """Counters, readable at any time (``cache.stats``)."""

    hits: int = 0
    misses: int = 0
    kms_calls: int = 0
    evictions: int = 0


@dataclass(slots=True)
class _Entry(Generic[T]):
    value: T
    secret: bytearray = field(repr=False)
    created: float
    messages: int = 0
    bytes: int = 0


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


def _side(key: Hashable) -> str:
    """``encrypt`` or ``decrypt``: the side an entry's key (``(side, ...)``) is on."""
    side = key[0] if isinstance(key, tuple) else None
    return side if side in ("encrypt", "decrypt") else "decrypt"


class DataKeyCache:
    """A bounded, thread-safe cache of data keys (see the module docstring).

    Args:
        max_age: seconds an entry may be used after it was created.
        max_messages: messages one cached data key may encrypt.
        max_bytes: plaintext bytes one cached data key may encrypt.
        max_entries: entries held, per side.
        clock: a monotonic clock in seconds (tests inject one).

    Raises:
        ValueError: a limit is not positive, or ``max_messages`` exceeds 2^32.
    """

    def __init__(
        self,
        *,
        max_age: float = 300.0,
        max_messages: int = 1_000_000,
        max_bytes: int = 1 << 34,
        max_entries: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_age <= 0 or max_messages <= 0 or max_bytes <= 0 or max_entries <= 0:
            raise ValueError("every cache limit must be positive")
        if max_messages > 1 << 32:
            raise ValueError("max_messages is at most 2^32 (see docs/design.md)")
        self.max_age = max_age
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, _Entry[object]] = OrderedDict()
        self._flights: dict[Hashable, _Flight] = {}
        self.stats = CacheStats()

    def __repr__(self) -> str:
        return (
            f"DataKeyCache(entries={len(self._entries)}, max_age={self.max_age}, "
            f"max_messages={self.max_messages}, max_bytes={self.max_bytes}, stats={self.stats})"
        )

    def __len__(self) -> int:
        return len(self._entries)

    # -- internals (call with the lock held) ------------------------------------------

    def _evict(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            entry.secret[:] = bytes(len(entry.secret))
            self.stats.evictions += 1
            _telemetry.cache_evicted(_side(key))

    def _usable(self, key: Hashable, nbytes: int, counts: bool) -> _Entry[object] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        fresh = self._clock() - entry.created < self.max_age
        within = not counts or (
            entry.messages < self.max_messages and entry.bytes + nbytes <= self.max_bytes
        )
        if not (fresh and within):
            self._evict(key)
            return None
        self._entries.move_to_end(key)
        if counts:
            entry.messages += 1
            entry.bytes += nbytes
        return entry

    def _get(
        self,
        key: Hashable,
        produce: Callable[[], tuple[object, bytearray]],
        nbytes: int,
        counts: bool,
    ) -> tuple[object, bytearray]:
        side = "encrypt" if counts else "decrypt"
        while True:
            with self._lock:
                entry = self._usable(key, nbytes, counts)
                if entry is not None:
                    self.stats.hits += 1
                    if _telemetry.active:
                        _telemetry.cache_hit(side)
                    return entry.value, bytearray(entry.secret)
                flight = self._flights.get(key)
                leader = flight is None
                if leader:
                    flight = _Flight()
                    self._flights[key] = flight
                    self.stats.misses += 1
            if leader:
                _telemetry.cache_miss(side)
            assert flight is not None
            if not leader:
                flight.done.wait()
                if flight.error is not None:
                    raise flight.error
                continue  # the leader stored it: take it (and count this use) above
            try:
                with _telemetry.cache_fill(side):
                    value, secret = produce()
            except BaseException as exc:
                flight.error = exc
                with self._lock:
                    del self._flights[key]
                flight.done.set()
                raise
            with self._lock:
                self.stats.kms_calls += 1
                self._evict(key)
                while len(self._entries) >= self.max_entries:
                    self._evict(next(iter(self._entries)))
                self._entries[key] = _Entry(
                    value,
                    bytearray(secret),
                    self._clock(),
                    messages=1 if counts else 0,
                    bytes=nbytes if counts else 0,
                )
                del self._flights[key]
            flight.done.set()
            return value, secret

    # -- the two sides ----------------------------------------------------------------

    def for_encryption(
        self, key: Hashable, nbytes: int, produce: Callable[[], tuple[T, bytearray]]
    ) -> tuple[T, bytearray]:
        """A data key for one more message of ``nbytes`` bytes: cached within the limits,
        else from ``produce()`` (one KMS call). Returns a copy of the key bytes.

        Raises:
            Exception: whatever ``produce()`` raises (for example
                :class:`~envelope.errors.KmsError`), in this thread and in every thread
                that was waiting for the same entry; nothing is cached then.
        """
        value, secret = self._get(("encrypt", key), produce, nbytes, counts=True)
        return value, secret  # type: ignore[return-value]

    def for_decryption(self, key: Hashable, produce: Callable[[], bytearray]) -> bytearray:
        """An unwrapped data key: cached for ``max_age``, else from ``produce()``.

        Raises:
            Exception: whatever ``produce()`` raises (for example
                :class:`~envelope.errors.DecryptionError`); nothing is cached then.
        """
        _, secret = self._get(("decrypt", key), lambda: (None, produce()), 0, counts=False)
        return secret

    def for_decryption_with(
        self, key: Hashable, produce: Callable[[], tuple[T, bytearray]]
    ) -> tuple[T, bytearray]:
        """Like :meth:`for_decryption`, keeping a public value (a parsed header) with it.

        Raises:
            Exception: whatever ``produce()`` raises; nothing is cached then.
        """
        value, secret = self._get(("decrypt", key), produce, 0, counts=False)
        return value, secret  # type: ignore[return-value]

    def cached_for_encryption(self, key: Hashable, nbytes: int) -> tuple[object, bytearray] | None:
        """As :meth:`for_encryption` when the entry is cached within its limits (the
        use is counted); else None, without calling the KMS or waiting for a call in
        flight (for callers that must not block: envelope.aio)."""
        return self._cached(("encrypt", key), nbytes, counts=True)

    def cached_for_decryption(self, key: Hashable) -> tuple[object, bytearray] | None:
        """As :meth:`for_decryption_with` when the entry is cached; else None, without
        calling the KMS or waiting (see :meth:`cached_for_encryption`)."""
        return self._cached(("decrypt", key), 0, counts=False)

    def hit_for_encryption(self, key: Hashable, nbytes: int) -> Any:
        """The public value cached for ``key`` (as :meth:`for_encryption`'s) when it is
        within its limits for one more message of ``nbytes`` bytes (the use is
        counted), else None: no KMS call, no wait, and no copy of the key bytes (for
        values that hold their own key, such as a native message sealer). A None
        is followed by :meth:`for_encryption`, which counts the miss.

        The fast path of a cached message: keep ``key`` cheap to hash. Typed ``Any``
        (the value or None) so that callers need no ``cast``, a call per message. The caller
        reports the hit to telemetry (``_telemetry.cached_message``, one hook with the
        bytes processed).
        """
        full = ("encrypt", key)
        now = self._clock()
        self._lock.acquire()  # not `with`: a third fewer instructions, same guarantee
        try:
            entry = self._entries.get(full)
            if entry is None:
                return None
            if (
                now - entry.created >= self.max_age
                or entry.messages >= self.max_messages
                or entry.bytes + nbytes > self.max_bytes
            ):
                self._evict(full)
                return None
            self._entries.move_to_end(full)
            entry.messages += 1
            entry.bytes += nbytes
            self.stats.hits += 1
        finally:
            self._lock.release()
        return entry.value

    def hit_for_decryption(self, key: Hashable) -> Any:
        """As :meth:`hit_for_encryption` for :meth:`for_decryption_with` (no limit but
        ``max_age``)."""
        full = ("decrypt", key)
        now = self._clock()
        self._lock.acquire()
        try:
            entry = self._entries.get(full)
            if entry is None:
                return None
            if now - entry.created >= self.max_age:
                self._evict(full)
                return None
            self._entries.move_to_end(full)
            self.stats.hits += 1
        finally:
            self._lock.release()
        return entry.value

    def _cached(self, key: Hashable, nbytes: int, counts: bool) -> tuple[object, bytearray] | None:
        with self._lock:
            entry = self._usable(key, nbytes, counts)
            if entry is None:
                return None
            self.stats.hits += 1
            if _telemetry.active:
                _telemetry.cache_hit("encrypt" if counts else "decrypt")
            return entry.value, bytearray(entry.secret)

    def clear(self) -> None:
        """Evicts (and zeroes) every entry."""
        with self._lock:
            for key in list(self._entries):
                self._evict(key)
