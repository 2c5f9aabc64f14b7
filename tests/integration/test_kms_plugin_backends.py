"""envelope kms-plugin on remote KMSs: moto's AWS KMS and a real OpenBao; several
custodians and k-of-n; the KMS going away and coming back; SIGTERM while calls wait."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import grpc
import pytest

from envelope.kms import LocalKms
from tests.support.kms_plugin import PluginProcess, SlowProxy
from tests.support.openbao import OpenBao, free_port


def kms_key(url: str) -> str:
    client = boto3.client("kms", endpoint_url=url, region_name="eu-west-1")
    return str(client.create_key(Description="etcd KEK")["KeyMetadata"]["Arn"])


class RestartableMoto:
    """moto in server mode on a fixed port that can be stopped and started again
    (its state lives in this process, so keys survive the restart)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: Any = None

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        """Stops answering and closes the listening socket: connections are refused, as
        from a KMS that is down (a hung one is SlowProxy's job)."""
        self.server.stop()
        self.server._server.server_close()


@pytest.fixture
def moto_restartable(moto_url: str) -> Iterator[RestartableMoto]:  # moto_url: AWS test env
    server = RestartableMoto()
    server.start()
    yield server
    server.stop()


def aws_plugin(workdir: Path, url: str, key: str, *extra: str) -> PluginProcess:
    args = ["--kms", "aws", "--kms-key", key, "--kms-endpoint", url, "--kms-region", "eu-west-1"]
    return PluginProcess(workdir, [*args, "--probe-interval", "0.3", *extra]).start()


def round_trip(p: PluginProcess) -> Any:
    seed = secrets.token_bytes(32)
    out = p.encrypt(seed)
    assert len(out.ciphertext) <= 1024
    assert p.decrypt(out.ciphertext, out.key_id, out.annotations) == seed
    return out


def test_aws_kms_round_trip(tmp_path: Path, moto_url: str) -> None:
    arn = kms_key(moto_url)
    p = aws_plugin(tmp_path, moto_url, arn)
    try:
        status = p.status()
        assert (status.version, status.healthz) == ("v2", "ok")
        assert status.key_id.startswith(f"envelope+aws-kms:{arn}")
        out = round_trip(p)
        assert dict(out.annotations)["providers.envelope.dev"] == f"aws-kms:{arn}".encode()
    finally:
        p.kill()


def test_openbao_round_trip_and_rotation(tmp_path: Path, openbao: OpenBao) -> None:
    key = f"etcd-{secrets.token_hex(4)}"
    openbao.write(f"transit/keys/{key}")
    args = ["--kms", "vault", "--kms-endpoint", openbao.url, "--kms-key", key]
    p = PluginProcess(
        tmp_path, [*args, "--probe-interval", "0.3"], env={"VAULT_TOKEN": openbao.root_token}
    ).start()
    try:
        status = p.status()
        assert status.healthz == "ok"
        assert status.key_id == f"envelope+vault-transit:transit/{key}@v1"
        seed = secrets.token_bytes(32)
        old = p.encrypt(seed)
        assert old.key_id == status.key_id

        openbao.write(f"transit/keys/{key}/rotate")
        status = p.wait_status(lambda s: s.key_id != old.key_id)
        assert status.key_id == f"envelope+vault-transit:transit/{key}@v2"
        new = p.encrypt(seed)
        assert new.key_id == status.key_id
        assert b"vault:v2:" in new.ciphertext  # the new message uses the new version
        assert p.decrypt(old.ciphertext, old.key_id, old.annotations) == seed
        assert p.decrypt(new.ciphertext, new.key_id, new.annotations) == seed
    finally:
        p.kill()


def test_kms_down_then_back(tmp_path: Path, moto_restartable: RestartableMoto) -> None:
    arn = kms_key(moto_restartable.url)
    p = aws_plugin(tmp_path, moto_restartable.url, arn, "--request-timeout", "4")
    try:
        assert p.status().healthz == "ok"
        seen = round_trip(p)  # Decrypt caches this DEK seed
        seed = p.decrypt(seen.ciphertext, seen.key_id, seen.annotations)
        just_sealed_seed = secrets.token_bytes(32)
        just_sealed = p.encrypt(just_sealed_seed)  # Encrypt caches it too

        moto_restartable.stop()
        down = p.wait_status(lambda s: s.healthz != "ok")
        assert down.version == "v2" and down.key_id == seen.key_id
        assert "aws" in down.healthz.lower() or "kms" in down.healthz.lower()
        # Recently unwrapped: still decrypts without the KMS.
        assert p.decrypt(seen.ciphertext, seen.key_id, seen.annotations, uid="cached") == seed
        got = p.decrypt(just_sealed.ciphertext, just_sealed.key_id, just_sealed.annotations)
        assert got == just_sealed_seed
        with pytest.raises(grpc.RpcError) as info:
            p.encrypt(secrets.token_bytes(32))
        assert info.value.code() in (
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED,
        )
        assert "KMS" in (info.value.details() or "")

        moto_restartable.start()
        p.wait_status(lambda s: s.healthz == "ok")
        round_trip(p)
    finally:
        p.kill()


def test_sigterm_lets_in_flight_calls_finish(tmp_path: Path, moto_url: str) -> None:
    arn = kms_key(moto_url)
    host, port = moto_url.removeprefix("http://").split(":")
    proxy = SlowProxy((host, int(port)), delay=2.0)
    p = aws_plugin(tmp_path, proxy.url, arn, "--grace", "60", "--probe-interval", "300")
    try:
        assert p.status().healthz == "ok"
        proxy.slow.set()
        before = proxy.requests
        seeds = [secrets.token_bytes(32) for _ in range(6)]
        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(p.encrypt, s, f"uid-drain-{i}") for i, s in enumerate(seeds)]
            while proxy.requests - before < len(seeds):  # every call is waiting on the KMS
                time.sleep(0.02)
            assert p.proc is not None
            p.proc.send_signal(15)
            while "draining" not in p.logs():
                time.sleep(0.02)
            with pytest.raises(grpc.RpcError):  # no new calls once draining
                p.encrypt(b"late" * 8)
            results = [f.result(timeout=120) for f in futures]
        assert p.proc.wait(timeout=120) == 0
        assert not p.socket.exists()
    finally:
        p.kill()
        proxy.close()
    proxy.slow.clear()
    q = aws_plugin(tmp_path / "after", moto_url, arn)
    try:
        for seed, out in zip(seeds, results, strict=True):
            assert q.decrypt(out.ciphertext, out.key_id, out.annotations) == seed
    finally:
        q.kill()


def test_custodians_threshold_survives_one_down(
    tmp_path: Path, moto_restartable: RestartableMoto
) -> None:
    arn = kms_key(moto_restartable.url)
    rings = [tmp_path / "ring-a.json", tmp_path / "ring-b.json"]
    for ring in rings:
        LocalKms.create(ring)
    custodians = tmp_path / "custodians.json"
    custodians.write_text(
        json.dumps(
            {
                "custodians": [
                    {"kind": "aws", "key": arn, "endpoint": moto_restartable.url},
                    {"kind": "local", "keyring": str(rings[0])},
                    {"kind": "local", "keyring": str(rings[1])},
                ]
            }
        )
    )
    p = PluginProcess(
        tmp_path / "p",
        [
            *("--custodians", str(custodians), "--threshold", "2"),
            *("--probe-interval", "0.3", "--request-timeout", "2"),
        ],
        env={"AWS_DEFAULT_REGION": "eu-west-1"},
    ).start()
    try:
        status = p.status()
        assert status.healthz == "ok" and "threshold:2-of-3" in status.key_id
        seed = secrets.token_bytes(32)
        out = p.encrypt(seed)
        providers = dict(out.annotations)["providers.envelope.dev"].decode().split(",")
        assert [x.split(":")[0] for x in providers] == ["aws-kms", "local", "local"]
        moto_restartable.stop()
        p.wait_status(lambda s: s.healthz != "ok")
        # A plugin started while AWS is down (nothing cached): the two keyrings hold 2
        # of the 3 shares, so it still decrypts (local shares are unwrapped first).
        q = PluginProcess(
            tmp_path / "q",
            p.args,
            env={"AWS_DEFAULT_REGION": "eu-west-1"},
        )
        q.start()
        try:
            assert q.status().healthz != "ok"
            assert q.decrypt(out.ciphertext, out.key_id, out.annotations) == seed
        finally:
            q.kill()
    finally:
        p.kill()
        moto_restartable.start()


def test_kms_probe_is_rate_limited(tmp_path: Path, moto_url: str) -> None:
    arn = kms_key(moto_url)
    host, port = moto_url.removeprefix("http://").split(":")
    proxy = SlowProxy((host, int(port)), delay=0.0)  # here only to count KMS requests
    p = aws_plugin(tmp_path, proxy.url, arn, "--probe-interval", "600")
    try:
        before = proxy.requests
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                assert p.status().healthz == "ok"

        threads = [threading.Thread(target=poll) for _ in range(8)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join()
        assert proxy.requests == before  # many Status calls, no KMS call
    finally:
        p.kill()
        proxy.close()


def test_hung_kms_blocks_neither_status_nor_cached_decrypt(tmp_path: Path, moto_url: str) -> None:
    arn = kms_key(moto_url)
    host, port = moto_url.removeprefix("http://").split(":")
    proxy = SlowProxy((host, int(port)), delay=60.0)  # a KMS that accepts and never answers
    p = aws_plugin(tmp_path, proxy.url, arn, "--probe-interval", "0.5", "--request-timeout", "1")
    try:
        seen = round_trip(p)
        proxy.slow.set()
        deadline = time.monotonic() + 60
        while True:
            healthz = p.status().healthz  # never an error: the probe's wait is bounded
            if "has not answered" in healthz:
                break
            assert time.monotonic() < deadline, healthz
            time.sleep(0.05)
        cached = p.decrypt(seen.ciphertext, seen.key_id, seen.annotations)
        assert len(cached) == 32
        with pytest.raises(grpc.RpcError) as info:
            p.encrypt(secrets.token_bytes(32))
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "did not answer" in (info.value.details() or "")
    finally:
        p.kill()
        proxy.close()
