"""GatedKms: a LocalKms whose calls wait on a gate, for tests that must choose the moment
a KMS call returns (cancellation, a full pool, a cache fill in flight). A real slow KMS
is SlowProxy in tests/support/kms_plugin.py; this one is for tests without servers."""

from __future__ import annotations

import asyncio
import threading

from envelope import DataKey, LocalKms, WrappedKey
from envelope._format.context import Context

__all__ = ["GatedKms", "wiped"]


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
