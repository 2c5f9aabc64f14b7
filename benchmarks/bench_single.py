"""Single messages, one call each, against every peer in the same run.

Peers: the raw ``cryptography`` AESGCM floor (no envelope at all), Tink AEAD (a bare
primitive), Tink ``KmsEnvelopeAead`` with a local KEK (an envelope: a fresh DEK per
message wrapped by the KEK), the AWS Encryption SDK with a raw AES wrapping key (its
best case, no network), and envelope with a ``DataKeyCache`` and without one (local
keyring: one KEK wrap per message). Reported: µs per call at 64 B, bytes of overhead,
throughput against message size, and the latency distribution at 64 B.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from benchmarks.report import Plot, Suite, Table, best, latencies, median

CTX = {"service": "bench", "env": "prod"}
Pair = tuple[Callable[[bytes], Any], Callable[[Any], bytes]]


def peers() -> dict[str, Pair]:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from envelope import DataKeyCache, Envelope, LocalKms

    out: dict[str, Pair] = {}
    gcm = AESGCM(AESGCM.generate_key(256))

    def gcm_enc(m: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + gcm.encrypt(nonce, m, None)

    out["cryptography AESGCM (floor)"] = (gcm_enc, lambda c: gcm.decrypt(c[:12], c[12:], None))
    try:
        import tink
        from tink import aead

        aead.register()
        prim = tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM).primitive(aead.Aead)
        out["Tink AEAD"] = (lambda m: prim.encrypt(m, b""), lambda c: prim.decrypt(c, b""))
        kek = tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM).primitive(aead.Aead)
        env_aead = aead.KmsEnvelopeAead(aead.aead_key_templates.AES256_GCM, kek)
        out["Tink KmsEnvelopeAead (local KEK)"] = (
            lambda m: env_aead.encrypt(m, b""),
            lambda c: env_aead.decrypt(c, b""),
        )
    except ImportError:
        pass
    esdk = _esdk()
    if esdk is not None:
        out["AWS Encryption SDK (raw key)"] = esdk
    cached = Envelope(LocalKms.ephemeral(), cache=DataKeyCache())
    out["envelope, DataKeyCache"] = (
        lambda m: cached.encrypt(m, CTX),
        lambda c: cached.decrypt(c, CTX),
    )
    plain = Envelope(LocalKms.ephemeral())
    out["envelope, no cache (local keyring)"] = (
        lambda m: plain.encrypt(m, CTX),
        lambda c: plain.decrypt(c, CTX),
    )
    return out


def _esdk() -> Pair | None:
    from benchmarks.peers import esdk_raw_key

    try:
        client, provider = esdk_raw_key()
    except ImportError:
        return None
    return (
        lambda m: client.encrypt(source=m, key_provider=provider)[0],
        lambda c: client.decrypt(source=c, key_provider=provider)[0],
    )


def run(quick: bool) -> Suite:
    sizes = [64, 1024] if quick else [64, 1024, 16384, 262144, 1 << 20]
    budget = 1 << 20 if quick else 48 << 20  # bytes per measurement
    samples = 200 if quick else 5000
    repeat = 1 if quick else 3
    suite = Suite(
        "single",
        "Single messages, one call each",
        packages=_versions(),
    )
    table = Table(
        "One 64-byte message per call (median of the best repetition)",
        ["peer", "encrypt µs", "decrypt µs", "overhead B", "enc x floor", "dec x floor"],
    )
    enc_plot = Plot(
        "single-encrypt",
        "Single-message encrypt: throughput vs message size",
        "message bytes",
        "MB/s",
        logy=True,
    )
    dec_plot = Plot(
        "single-decrypt",
        "Single-message decrypt: throughput vs message size",
        "message bytes",
        "MB/s",
        logy=True,
    )
    lat_plot = Plot(
        "single-latency",
        "Latency of one 64-byte encrypt (µs, whiskers 1.5 IQR)",
        "",
        "µs",
        logx=False,
        logy=True,
    )
    floor: tuple[float, float] | None = None
    for name, (enc, dec) in peers().items():
        slow = "Encryption SDK" in name or "no cache" in name
        for size in sizes:
            msg = os.urandom(size)
            n = max(3, min(budget // max(size, 1024), 200 if slow and size >= 1024 else 20000))
            if slow:
                n = max(3, n // 10)
            t_enc, blobs = best(lambda e=enc, m=msg, k=n: [e(m) for _ in range(k)], repeat)
            t_dec, opened = best(lambda d=dec, bs=blobs: [d(b) for b in bs], repeat)
            assert opened[-1] == msg, name
            enc_plot.series.setdefault(name, []).append((size, n * size / t_enc / 1e6))
            dec_plot.series.setdefault(name, []).append((size, n * size / t_dec / 1e6))
            if size == 64:
                e_us, d_us = t_enc / n * 1e6, t_dec / n * 1e6
                if floor is None:
                    floor = (e_us, d_us)
                table.rows.append(
                    [name, e_us, d_us, len(blobs[0]) - size, e_us / floor[0], d_us / floor[1]]
                )
                lat_plot.samples[name] = latencies(
                    lambda e=enc, m=msg: e(m), samples // (10 if slow else 1)
                )
    lat = Table("Latency of one 64-byte encrypt, µs", ["peer", "p50", "p90", "p99"])
    for name, xs in lat_plot.samples.items():
        s = sorted(xs)
        lat.rows.append([name, median(s), s[int(0.9 * (len(s) - 1))], s[int(0.99 * (len(s) - 1))]])
    suite.tables += [table, lat]
    suite.plots += [enc_plot, dec_plot, lat_plot]
    return suite


def _versions() -> list[str]:
    from benchmarks.machine import versions

    return versions("envelope-kms", "cryptography", "tink", "aws-encryption-sdk")
