"""KMS plugin overhead: Encrypt/Decrypt over the Unix socket vs the same work in-process.

    python benchmarks/bench_kms_plugin.py [--n 2000] [--backends local,openbao]

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

One caller, calls one after another; latency p50/p99 and calls/s per row, and the
plugin's overhead (plugin minus direct) at p50 and p99. The ``Status`` row (a cached
probe: no KMS call, no cryptography) is the floor set by gRPC itself, client and server.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import describe
from envelope import DataKeyCache, Envelope, inspect
from envelope.kms import KmsBackend, LocalKms
from envelope.kms._vault import VaultTransit
from envelope.kms._vault_auth import TokenAuth
from envelope.plugin._proto import api_pb2
from envelope.plugin._server import JsonLogFormatter
from envelope.plugin._service import KmsService, _context, annotations_for
from tests.support.kms_plugin import PluginProcess
from tests.support.openbao import OpenBao


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
    name: str, backend: KmsBackend, plugin: PluginProcess, n: int
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

    for i in range(50):  # warm up every path
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


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=2000, help="calls per row")
    ap.add_argument("--backends", default="local,openbao")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # The in-process handlers log like the plugin does: JSON lines to a file.
        log_file = logging.FileHandler(work / "handler.log")
        log_file.setFormatter(JsonLogFormatter())
        logger = logging.getLogger("envelope.plugin")
        logger.handlers[:] = [log_file]
        logger.propagate = False
        logger.setLevel(logging.INFO)
        if "local" in args.backends:
            ring = work / "keyring.json"
            LocalKms.create(ring)
            plugin = PluginProcess(work / "p-local", ["--kms", "local", "--keyring", str(ring)])
            plugin.start()
            try:
                rows += measure("local keyring", LocalKms.open(ring), plugin, args.n)
            finally:
                plugin.terminate()
        if "openbao" in args.backends:
            bao = OpenBao(work / "bao").start()
            try:
                bao.setup_engines()
                bao.write("transit/keys/bench")
                plugin = PluginProcess(
                    work / "p-bao",
                    ["--kms", "vault", "--kms-endpoint", bao.url, "--kms-key", "bench"],
                    env={"VAULT_TOKEN": bao.root_token},
                )
                plugin.start()
                try:
                    backend = VaultTransit("bench", url=bao.url, auth=TokenAuth(bao.root_token))
                    rows += measure("OpenBao", backend, plugin, args.n)
                finally:
                    plugin.terminate()
            finally:
                bao.stop()
    print(describe("grpcio", "protobuf", "hvac"))
    print(f"{args.n} calls per row, one caller; latencies in ms; load average {os.getloadavg()}")
    print()
    print(
        "| backend | call | direct p50 / p99 | handler p50 / p99 | plugin p50 / p99 "
        "| plugin calls/s | overhead p50 / p99 |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for backend, call, d, h, p in rows:
        base = d or (0.0, 0.0, 0.0)
        direct = f"{d[0]:.3f} / {d[1]:.3f}" if d else "-"
        print(
            f"| {backend} | {call} | {direct} | {h[0]:.3f} / {h[1]:.3f} | "
            f"{p[0]:.3f} / {p[1]:.3f} | {p[2]:,.0f} | "
            f"{p[0] - base[0]:+.3f} / {p[1] - base[1]:+.3f} |"
        )


if __name__ == "__main__":
    main()
