"""Prometheus metrics for the KMS plugin, in the plain-text exposition format (0.0.4).

Written by hand (a few counters, one histogram, two gauges) so the plugin needs no
metrics library. Served on ``--metrics-port`` by a small HTTP server thread; never on
the gRPC socket. Labels are method names and gRPC status codes only: no uid, key id or
request content ever becomes a label.
"""

from __future__ import annotations

import bisect
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["LATENCY_BUCKETS", "Metrics", "serve_metrics"]

#: Histogram bucket upper bounds, in seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
PREFIX = "envelope_kms_plugin"


class _Histogram:
    __slots__ = ("buckets", "count", "sum")

    def __init__(self) -> None:
        self.buckets = [0] * len(LATENCY_BUCKETS)
        self.count = 0
        self.sum = 0.0


class Metrics:
    """Thread-safe counters for RPCs and KMS probes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, int] = {}
        self._errors: dict[tuple[str, str], int] = {}
        self._latency: dict[str, _Histogram] = {}
        self._probes: dict[str, int] = {"ok": 0, "error": 0}
        self._healthy = 0

    def observe(self, method: str, code: str, seconds: float) -> None:
        """Counts one finished RPC of ``method`` with gRPC status ``code`` (``OK`` ...)."""
        index = bisect.bisect_left(LATENCY_BUCKETS, seconds)
        with self._lock:
            self._calls[method] = self._calls.get(method, 0) + 1
            if code != "OK":
                self._errors[method, code] = self._errors.get((method, code), 0) + 1
            hist = self._latency.get(method)
            if hist is None:
                hist = self._latency[method] = _Histogram()
            if index < len(LATENCY_BUCKETS):
                hist.buckets[index] += 1
            hist.count += 1
            hist.sum += seconds

    def probe(self, ok: bool) -> None:
        """Counts one KMS health probe and records the resulting health."""
        with self._lock:
            self._probes["ok" if ok else "error"] += 1
            self._healthy = 1 if ok else 0

    def calls(self, method: str) -> int:
        """RPCs of ``method`` counted so far."""
        with self._lock:
            return self._calls.get(method, 0)

    def render(self) -> str:
        """The exposition text."""
        out: list[str] = []
        with self._lock:
            out += [
                f"# HELP {PREFIX}_calls_total gRPC calls handled, by method.",
                f"# TYPE {PREFIX}_calls_total counter",
            ]
            out += [
                f'{PREFIX}_calls_total{{method="{m}"}} {n}' for m, n in sorted(self._calls.items())
            ]
            out += [
                f"# HELP {PREFIX}_errors_total gRPC calls that failed, by method and status code.",
                f"# TYPE {PREFIX}_errors_total counter",
            ]
            out += [
                f'{PREFIX}_errors_total{{method="{m}",code="{c}"}} {n}'
                for (m, c), n in sorted(self._errors.items())
            ]
            out += [
                f"# HELP {PREFIX}_latency_seconds gRPC call latency inside the plugin, by method.",
                f"# TYPE {PREFIX}_latency_seconds histogram",
            ]
            for method, hist in sorted(self._latency.items()):
                cumulative = 0
                for bound, n in zip(LATENCY_BUCKETS, hist.buckets, strict=True):
                    cumulative += n
                    out.append(
                        f'{PREFIX}_latency_seconds_bucket{{method="{method}",le="{bound}"}} '
                        f"{cumulative}"
                    )
                out.append(
                    f'{PREFIX}_latency_seconds_bucket{{method="{method}",le="+Inf"}} {hist.count}'
                )
                out.append(f'{PREFIX}_latency_seconds_sum{{method="{method}"}} {hist.sum:.9f}')
                out.append(f'{PREFIX}_latency_seconds_count{{method="{method}"}} {hist.count}')
            out += [
                f"# HELP {PREFIX}_kms_probes_total KMS health probes, by result.",
                f"# TYPE {PREFIX}_kms_probes_total counter",
            ]
            out += [
                f'{PREFIX}_kms_probes_total{{result="{r}"}} {n}'
                for r, n in sorted(self._probes.items())
            ]
            out += [
                f"# HELP {PREFIX}_kms_healthy 1 if the last KMS probe succeeded, else 0.",
                f"# TYPE {PREFIX}_kms_healthy gauge",
                f"{PREFIX}_kms_healthy {self._healthy}",
            ]
        return "\n".join(out) + "\n"


def serve_metrics(metrics: Metrics, port: int, address: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Serves ``GET /metrics`` on ``address:port`` from a daemon thread.

    Returns:
        The server (``shutdown()`` stops it; ``server_address`` gives the bound port).

    Raises:
        OSError: the address cannot be bound.
    """

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != "/metrics":
                self.send_error(404)
                return
            body = metrics.render().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # scrapes are not worth a log line each

    server = ThreadingHTTPServer((address, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="kms-plugin-metrics", daemon=True).start()
    return server
