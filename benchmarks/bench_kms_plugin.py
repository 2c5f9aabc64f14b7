"""KMS plugin overhead: Encrypt/Decrypt over the Unix socket vs the same work in-process.

    python benchmarks/bench_kms_plugin.py [--n 2000] [--backends local,openbao]

For each backend (a local keyring file; a real OpenBao dev server on loopback, started
here), in one run:

- *direct*: what the plugin does per call, made in this process on the same backend:
  ``Envelope.encrypt`` of a 32-byte DEK seed with the plugin's context (no cache), then
  ``Envelope.decrypt`` (with the plugin's DataKeyCache) of ciphertexts never seen before
  ("uncached": one KMS unwrap each) and of one ciphertext again and again ("cached");
- *plugin*: the same calls as gRPC requests from a client built on the vendored stubs to
  ``envelope kms-plugin`` running as a subprocess (default settings: INFO logs to a file).

One caller, calls one after another; latency p50/p99 and calls/s per row, and the
plugin's overhead (plugin minus direct) at p50 and p99. The ``Status`` row (a cached
probe: no KMS call, no cryptography) is the floor set by gRPC itself, client and server.
"""

from __future__ import annotations

import argparse
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
from envelope import DataKeyCache, Envelope
from envelope.kms import KmsBackend, LocalKms
from envelope.kms._vault import VaultTransit
from envelope.kms._vault_auth import TokenAuth
from envelope.plugin._service import _context
from tests.openbao import OpenBao
from tests.support.kms_plugin import PluginProcess


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


def measure(
    name: str, backend: KmsBackend, plugin: PluginProcess, key_id: str, n: int
) -> list[tuple[str, str, tuple[float, float, float], tuple[float, float, float]]]:
    ctx = _context(key_id)
    enc = Envelope(backend)
    dec = Envelope(backend, cache=DataKeyCache(max_age=3600.0, max_entries=4096))
    seeds = [secrets.token_bytes(32) for _ in range(n)]
    for i in range(50):  # warm up both sides
        dec.decrypt(enc.encrypt(seeds[i], ctx), ctx)
        out = plugin.encrypt(seeds[i])
        plugin.decrypt(out.ciphertext, out.key_id, out.annotations)

    direct_ct: list[bytes] = []
    d_enc = timed(n, lambda i: direct_ct.append(enc.encrypt(seeds[i], ctx)))
    plugin_ct: list[Any] = []
    p_enc = timed(n, lambda i: plugin_ct.append(plugin.encrypt(seeds[i], uid=f"bench-{i}")))
    d_dec = timed(n, lambda i: dec.decrypt(direct_ct[i], ctx))
    p_dec = timed(
        n,
        lambda i: plugin.decrypt(
            plugin_ct[i].ciphertext, plugin_ct[i].key_id, plugin_ct[i].annotations
        ),
    )
    floor = timed(n, lambda i: plugin.status())  # cached probe: no KMS call, no crypto
    one, first = direct_ct[0], plugin_ct[0]
    d_hot = timed(n, lambda i: dec.decrypt(one, ctx))
    p_hot = timed(n, lambda i: plugin.decrypt(first.ciphertext, first.key_id, first.annotations))
    return [
        (name, "Encrypt", summary(d_enc), summary(p_enc)),
        (name, "Decrypt, uncached", summary(d_dec), summary(p_dec)),
        (name, "Decrypt, cached", summary(d_hot), summary(p_hot)),
        (name, "Status (gRPC floor)", (0.0, 0.0, 0.0), summary(floor)),
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
        if "local" in args.backends:
            ring = work / "keyring.json"
            LocalKms.create(ring)
            plugin = PluginProcess(work / "p-local", ["--kms", "local", "--keyring", str(ring)])
            plugin.start()
            try:
                rows += measure(
                    "local keyring", LocalKms.open(ring), plugin, plugin.status().key_id, args.n
                )
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
                    rows += measure("OpenBao", backend, plugin, plugin.status().key_id, args.n)
                finally:
                    plugin.terminate()
            finally:
                bao.stop()
    print(describe("grpcio", "protobuf", "hvac"))
    print(f"{args.n} calls per row, one caller; latencies in ms; load average {os.getloadavg()}")
    print()
    print(
        "| backend | call | direct p50 | direct p99 | direct calls/s | plugin p50 | plugin p99 "
        "| plugin calls/s | overhead p50 | overhead p99 |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for backend, call, d, p in rows:
        direct = f"{d[0]:.3f} | {d[1]:.3f} | {d[2]:,.0f}" if d[2] else "- | - | -"
        print(
            f"| {backend} | {call} | {direct} | {p[0]:.3f} | "
            f"{p[1]:.3f} | {p[2]:,.0f} | {p[0] - d[0]:+.3f} | {p[1] - d[1]:+.3f} |"
        )


if __name__ == "__main__":
    main()
