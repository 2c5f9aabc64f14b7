"""A virtual clock to stand in for the ``time`` module inside one library module."""

from __future__ import annotations

import time
from typing import Any


class VirtualTime:
    """``sleep`` advances ``monotonic`` instead of waiting; all else is the real ``time``.

    Install it with ``monkeypatch.setattr("envelope.some_module.time", VirtualTime())``.
    ``monotonic`` is the real clock plus everything slept, so values computed with the
    real clock elsewhere (a login's expiry, say) stay comparable.
    """

    def __init__(self) -> None:
        self.offset = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.offset += max(seconds, 0.0)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)
