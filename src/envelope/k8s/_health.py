"""``envelope init --refresh``'s health and metrics: ``/healthz`` and Prometheus ``/metrics``.

:class:`RefreshState` is what the refresh loop records (each publish attempt, its
outcome, the on-change actions); :class:`HealthServer` serves it over HTTP on its own
thread. ``/healthz`` answers 200 while the last publish succeeded and is fresh (no older
than two refresh intervals plus the KMS timeout), else 503 with the reason in the body.
``/metrics`` is the Prometheus text format (0.0.4): the refresh counters, the last
success's timestamp and the KMS calls of this process (:mod:`envelope._telemetry`).
Neither ever shows a secret: only counts, times and the failure's reason.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from envelope import _telemetry

__all__ = ["HealthServer", "RefreshState", "prometheus_text"]


@dataclass
class RefreshState:
    """What ``/healthz`` and ``/metrics`` report (updated by the refresh loop).

    Args:
        interval: seconds between refreshes.
        timeout: the KMS budget of one publish (seconds).
    """

    interval: float
    timeout: float
    publishes: int = 0
    failures: int = 0
    changes: int = 0
    actions: dict[str, int] = field(default_factory=dict)  # "ok" / "failed" -> count
    last_success: float | None = None  # wall-clock seconds
    last_success_at: float | None = None  # monotonic seconds
    last_error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def published(self, *, changed: bool) -> None:
        """One publish succeeded (``changed``: its files differ from the previous set)."""
        with self.lock:
            self.publishes += 1
            self.changes += changed
            self.last_success = time.time()
            self.last_success_at = time.monotonic()
            self.last_error = None

    def failed(self, reason: str) -> None:
        """One publish failed; the previous set stays."""
        with self.lock:
            self.publishes += 1
            self.failures += 1
            self.last_error = reason

    def action(self, ok: bool) -> None:
        """One on-change action ran (``ok``: it succeeded)."""
        with self.lock:
            key = "ok" if ok else "failed"
            self.actions[key] = self.actions.get(key, 0) + 1

    @property
    def max_age(self) -> float:
        """Seconds after which the last successful publish is stale."""
        return 2 * self.interval + self.timeout

    def health(self) -> tuple[bool, str]:
        """(healthy, reason): healthy while the last publish succeeded and is fresh."""
        with self.lock:
            if self.last_error is not None:
                return False, f"the last refresh failed: {self.last_error}"
            if self.last_success_at is None:
                return False, "no successful publish yet"
            age = time.monotonic() - self.last_success_at
        if age > self.max_age:
            return False, (
                f"the last successful publish was {age:.0f}s ago (stale after {self.max_age:g}s)"
            )
        return True, f"ok: published {age:.0f}s ago"


def _labels(**labels: str) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in labels.items()) + "}"


def prometheus_text(state: RefreshState) -> str:
    """The metrics in Prometheus' text exposition format."""
    healthy, _ = state.health()
    with state.lock:
        rows: list[tuple[str, str, str, list[tuple[str, float]]]] = [
            (
                "envelope_init_publishes_total",
                "counter",
                "Publish attempts: the first and every refresh.",
                [("", state.publishes)],
            ),
            (
                "envelope_init_refresh_failures_total",
                "counter",
                "Publish attempts that failed (the previous set stayed).",
                [("", state.failures)],
            ),
            (
                "envelope_init_changes_total",
                "counter",
                "Successful republishes whose files changed.",
                [("", state.changes)],
            ),
            (
                "envelope_init_on_change_actions_total",
                "counter",
                "On-change actions run (--on-change, --signal) by outcome.",
                [(_labels(outcome=k), float(v)) for k, v in sorted(state.actions.items())],
            ),
            (
                "envelope_init_last_success_timestamp_seconds",
                "gauge",
                "Unix time of the last successful publish (0: none yet).",
                [("", state.last_success or 0.0)],
            ),
            (
                "envelope_init_healthy",
                "gauge",
                "1 while /healthz answers 200.",
                [("", float(healthy))],
            ),
        ]
    calls = sorted(_telemetry.kms_call_counts().items())
    rows.append(
        (
            "envelope_kms_calls_total",
            "counter",
            "KMS calls by backend, operation and outcome.",
            [(_labels(backend=b, operation=o, outcome=r), n) for (b, o, r), (n, _) in calls],
        )
    )
    rows.append(
        (
            "envelope_kms_call_seconds_total",
            "counter",
            "Seconds spent in KMS calls by backend, operation and outcome.",
            [(_labels(backend=b, operation=o, outcome=r), s) for (b, o, r), (_, s) in calls],
        )
    )
    lines = []
    for name, kind, helptext, samples in rows:
        lines += [f"# HELP {name} {helptext}", f"# TYPE {name} {kind}"]
        lines += [f"{name}{labels} {value:g}" for labels, value in samples]
    return "\n".join(lines) + "\n"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            healthy, reason = self.server.state.health()
            self._send(200 if healthy else 503, reason + "\n", "text/plain; charset=utf-8")
        elif path == "/metrics":
            body = prometheus_text(self.server.state)
            self._send(200, body, "text/plain; version=0.0.4; charset=utf-8")
        else:
            self._send(404, "not found: try /healthz or /metrics\n", "text/plain; charset=utf-8")

    def _send(self, code: int, body: str, content_type: str) -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Silent: probes every few seconds would flood the sidecar's log."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: RefreshState) -> None:
        self.state = state
        super().__init__(address, _Handler)


class HealthServer:
    """Serves ``state`` on ``address:port`` on a background thread until :meth:`close`.

    Raises:
        OSError: the address cannot be bound (in use, not local).
    """

    def __init__(self, state: RefreshState, address: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _Server((address, port), state)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="envelope-health", daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        """The port served (the one the OS chose for port 0)."""
        return int(self._server.server_address[1])

    def close(self) -> None:
        """Stops serving and closes the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
