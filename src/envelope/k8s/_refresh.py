"""``envelope init --refresh``: the native-sidecar loop (docs/operations.md).

After the first publish it republishes every interval; a failed refresh keeps the last
good set. It may serve ``/healthz`` and ``/metrics`` (:mod:`envelope.k8s._health`) and,
after a republish whose files changed (a keyed digest of the set tells, without keeping
it), run the on-change actions (:mod:`envelope.k8s._on_change`): the first publish runs
none, since the app starts after it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envelope._exitcodes import ExitCode
from envelope.k8s._health import HealthServer, RefreshState
from envelope.k8s._on_change import OnChange

__all__ = ["Published", "Refresh", "digest", "run_refresh"]

_DIGEST_KEY = secrets.token_bytes(32)  # the published set's digest never equals a plain hash


def digest(files: dict[str, bytes]) -> bytes:
    """A keyed digest of a set of files: tells a changed set without keeping it."""
    mac = hmac.new(_DIGEST_KEY, digestmod=hashlib.sha256)
    for name in sorted(files):
        for part in (name.encode(), files[name]):
            mac.update(len(part).to_bytes(8, "big") + part)
    return mac.digest()


@dataclass
class Published:
    """One publish attempt: its exit code, the set's digest, why it failed."""

    code: int
    digest: bytes | None = None
    reason: str = ""


@dataclass
class Refresh:
    """The sidecar mode's settings (``envelope init --refresh``)."""

    interval: float
    metrics_port: int | None = None
    metrics_address: str = "127.0.0.1"
    on_change: OnChange = field(default_factory=OnChange)


def run_refresh(  # noqa: PLR0917 - the loop's one caller passes them all
    settings: Refresh,
    budget: float,
    out_dir: Path,
    log: Callable[..., Any],
    publish_once: Callable[[], Published],
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Publishes, then republishes every ``settings.interval`` until the process is
    stopped; returns the first publish's exit code if it failed (or CONFIG when the
    metrics address cannot be bound)."""
    state = RefreshState(settings.interval, budget)
    server = None
    if settings.metrics_port is not None:
        try:
            server = HealthServer(state, settings.metrics_address, settings.metrics_port)
        except OSError as exc:
            log(
                "error",
                "metrics.failed",
                address=f"{settings.metrics_address}:{settings.metrics_port}",
                reason=exc.strerror or str(exc),
            )
            return ExitCode.CONFIG
        log("info", "metrics.listening", address=settings.metrics_address, port=server.port)
    try:
        return _loop(settings, out_dir, log, publish_once, state, sleep)
    finally:
        if server is not None:
            server.close()


def _loop(  # noqa: PLR0917 - private, called once
    settings: Refresh,
    out_dir: Path,
    log: Callable[..., Any],
    publish_once: Callable[[], Published],
    state: RefreshState,
    sleep: Callable[[float], None],
) -> int:
    first = publish_once()
    if first.code != ExitCode.OK:
        return first.code
    state.published(changed=False)
    current = first.digest
    while True:  # the native-sidecar mode: ends when the pod stops the container
        sleep(settings.interval)
        attempt = publish_once()
        if attempt.code != ExitCode.OK:
            state.failed(attempt.reason)
            log("warning", "refresh.kept_previous", directory=str(out_dir))
            continue
        changed = attempt.digest != current
        current = attempt.digest
        state.published(changed=changed)
        if changed and settings.on_change.configured:
            for action, ok, detail in settings.on_change.run(out_dir):
                state.action(ok)
                log(
                    "info" if ok else "warning",
                    "on_change.done" if ok else "on_change.failed",
                    action=action,
                    detail=detail,
                )
