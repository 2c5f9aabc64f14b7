"""envelope kms-plugin with the local keyring: a real subprocess, a real Unix socket, a
real gRPC client from the vendored proto."""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from envelope import ClusterSecret
from envelope.kms import LocalKms
from envelope.plugin._proto import api_pb2
from tests.support.kms_plugin import SRC, PluginProcess

FQDN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


@pytest.fixture
def keyring(tmp_path: Path) -> Path:
    path = tmp_path / "keyring.json"
    LocalKms.create(path)
    return path


def start(tmp_path: Path, keyring: Path, *extra: str, name: str = "p") -> PluginProcess:
    args = ["--kms", "local", "--keyring", str(keyring), "--probe-interval", "0.2", *extra]
    return PluginProcess(tmp_path / name, args).start()


@pytest.fixture
def plugin(tmp_path: Path, keyring: Path) -> Iterator[PluginProcess]:
    p = start(tmp_path, keyring)
    yield p
    p.kill()


def envelope_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envelope", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        timeout=120,
        check=False,
    )


def rpc_error(call: object, *args: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(*args)  # type: ignore[operator]
    return info.value


def test_status_encrypt_decrypt(plugin: PluginProcess, keyring: Path) -> None:
    status = plugin.status()
    kms = LocalKms.open(keyring)
    assert (status.version, status.healthz) == ("v2", "ok")
    assert status.key_id == f"envelope+local:{kms.key_id}@v1"

    seed = secrets.token_bytes(32)
    out = plugin.encrypt(seed, uid="3f1a-encrypt")
    assert out.key_id == status.key_id
    assert 0 < len(out.ciphertext) <= 1024  # kube-apiserver's limit
    assert seed not in out.ciphertext
    annotations = dict(out.annotations)
    assert annotations == {
        "version.envelope.dev": b"1",
        "providers.envelope.dev": f"local:{kms.key_id}".encode(),
    }
    assert all(FQDN.match(k) for k in annotations)
    assert sum(len(k) + len(v) for k, v in annotations.items()) < 32 * 1024
    assert plugin.decrypt(out.ciphertext, out.key_id, out.annotations) == seed

    mode = os.stat(plugin.socket).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600


def test_each_encrypt_is_a_fresh_message(plugin: PluginProcess) -> None:
    seed = secrets.token_bytes(32)
    a, b = plugin.encrypt(seed), plugin.encrypt(seed)
    assert a.ciphertext != b.ciphertext
    assert plugin.decrypt(b.ciphertext, b.key_id, b.annotations) == seed


def test_rotation_in_another_process_changes_key_id(plugin: PluginProcess, keyring: Path) -> None:
    seed = secrets.token_bytes(32)
    old = plugin.encrypt(seed)
    assert old.key_id.endswith("@v1")

    done = envelope_cli("keyring", "rotate", "--keyring", str(keyring))
    assert done.returncode == 0, done.stderr
    status = plugin.wait_status(lambda s: s.key_id != old.key_id)
    assert status.healthz == "ok" and status.key_id.endswith("@v2")

    new = plugin.encrypt(seed)
    assert new.key_id == status.key_id
    assert plugin.decrypt(old.ciphertext, old.key_id, old.annotations) == seed
    assert plugin.decrypt(new.ciphertext, new.key_id, new.annotations) == seed
    # The new message really is wrapped under version 2 (a fresh LocalKms sees it).
    from envelope import inspect

    assert inspect(new.ciphertext).wrapped_keys[0].key_id == LocalKms.open(keyring).key_id


def test_tampered_ciphertext_is_a_grpc_error(plugin: PluginProcess) -> None:
    seed = secrets.token_bytes(32)
    out = plugin.encrypt(seed)
    ct = out.ciphertext
    for i in range(len(ct)):
        bad = bytearray(ct)
        bad[i] ^= 0x01
        try:
            got = plugin.decrypt(bytes(bad), out.key_id, out.annotations)
        except grpc.RpcError as exc:
            assert exc.code() in (
                grpc.StatusCode.INVALID_ARGUMENT,
                grpc.StatusCode.FAILED_PRECONDITION,
            ), (i, exc.code(), exc.details())
        else:
            which = "the same" if got == seed else "another"
            pytest.fail(f"byte {i} flipped still decrypted, to {which} plaintext")
    for cut in (0, 1, 40, len(ct) - 1):
        exc = rpc_error(plugin.decrypt, ct[:cut], out.key_id, out.annotations)
        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
    exc = rpc_error(plugin.decrypt, ct + b"\x00", out.key_id, out.annotations)
    assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
    # The plugin is still up and correct afterwards.
    assert plugin.decrypt(ct, out.key_id, out.annotations) == seed


def test_wrong_annotations_or_key_id_are_grpc_errors(
    tmp_path: Path, plugin: PluginProcess, keyring: Path
) -> None:
    out = plugin.encrypt(secrets.token_bytes(32))  # `plugin` now has it cached
    good = dict(out.annotations)
    variants = [
        {},
        {k: v for k, v in good.items() if k != "version.envelope.dev"},
        {**good, "version.envelope.dev": b"2"},
        {**good, "providers.envelope.dev": b"local:kr-0000000000000000"},
        {**good, "extra.example.com": b"x"},
        {k: v for k, v in good.items() if k != "providers.envelope.dev"},
    ]
    fresh = start(tmp_path, keyring, name="fresh")  # same keyring, nothing cached
    try:
        for phase, p in (("not cached", fresh), ("cached", plugin)):
            for wrong in variants:
                exc = rpc_error(p.decrypt, out.ciphertext, out.key_id, wrong)
                assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, (phase, wrong)
            for key_id in ("", out.key_id + "x", out.key_id.replace("@v1", "@v2"), "k" * 1025):
                exc = rpc_error(p.decrypt, out.ciphertext, key_id, good)
                assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, (phase, key_id)
            assert len(p.decrypt(out.ciphertext, out.key_id, good)) == 32
    finally:
        fresh.kill()


def test_oversized_requests_are_refused(plugin: PluginProcess) -> None:
    out = plugin.encrypt(secrets.token_bytes(32))
    exc = rpc_error(plugin.decrypt, b"\x00" * 1025, out.key_id, out.annotations)
    assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
    big = {**dict(out.annotations), "big.example.com": b"x" * (32 * 1024)}
    exc = rpc_error(plugin.decrypt, out.ciphertext, out.key_id, big)
    assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
    exc = rpc_error(plugin.encrypt, b"x" * 257)
    assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
    exc = rpc_error(plugin.encrypt, b"")
    assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
    # Over the gRPC message limit: refused before any handler runs.
    exc = rpc_error(plugin.encrypt, b"x" * (200 * 1024))
    assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert plugin.status().healthz == "ok"


def test_thousand_concurrent_calls_from_32_threads(plugin: PluginProcess) -> None:
    def one(i: int) -> bool:
        seed = i.to_bytes(4, "big") + secrets.token_bytes(28)
        out = plugin.encrypt(seed, uid=f"uid-{i}")
        return plugin.decrypt(out.ciphertext, out.key_id, out.annotations, uid=f"uid-{i}") == seed

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(one, range(500)))  # 500 Encrypt + 500 Decrypt
    assert len(results) == 500 and all(results)


def test_logs_are_json_with_uids_and_no_key_bytes(
    tmp_path: Path, plugin: PluginProcess, keyring: Path
) -> None:
    seed = secrets.token_bytes(32)
    out = plugin.encrypt(seed, uid="uid-log-1234")
    plugin.decrypt(out.ciphertext, out.key_id, out.annotations, uid="uid-log-5678")
    rpc_error(plugin.decrypt, out.ciphertext[:-1], out.key_id, out.annotations, "uid-log-bad")
    assert plugin.terminate() == 0
    lines = [json.loads(line) for line in plugin.logs().splitlines() if line.startswith("{")]
    rpcs = {line.get("uid"): line for line in lines if line["msg"] == "rpc"}
    assert rpcs["uid-log-1234"]["method"] == "Encrypt" and rpcs["uid-log-1234"]["code"] == "OK"
    assert rpcs["uid-log-5678"]["method"] == "Decrypt"
    assert rpcs["uid-log-bad"]["code"] == "INVALID_ARGUMENT"
    text = plugin.logs()
    material = [e["material"] for e in json.loads(keyring.read_text())["keys"]]
    for secret in (seed.hex(), seed.hex().upper(), *material, repr(seed)[2:-1]):
        assert secret not in text


def test_metrics_port(tmp_path: Path, keyring: Path) -> None:
    from tests.support.openbao import free_port

    port = free_port()
    p = start(tmp_path, keyring, "--metrics-port", str(port))
    try:
        out = p.encrypt(secrets.token_bytes(32))
        p.decrypt(out.ciphertext, out.key_id, out.annotations)
        rpc_error(p.decrypt, b"junk", out.key_id, out.annotations)
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
    finally:
        p.kill()
    body = text.decode()
    assert 'envelope_kms_plugin_calls_total{method="Encrypt"} 1' in body
    assert 'envelope_kms_plugin_calls_total{method="Decrypt"} 2' in body
    assert 'envelope_kms_plugin_errors_total{method="Decrypt",code="INVALID_ARGUMENT"} 1' in body
    assert 'envelope_kms_plugin_latency_seconds_count{method="Encrypt"} 1' in body
    assert "envelope_kms_plugin_kms_healthy 1" in body


def test_stale_socket_is_replaced_but_files_and_live_sockets_are_not(
    tmp_path: Path, keyring: Path
) -> None:
    run = tmp_path / "p" / "run"
    run.mkdir(parents=True)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(run / "kms.sock"))
    stale.close()  # a socket file nobody listens on: what a crashed plugin leaves
    p = start(tmp_path, keyring)
    try:
        assert p.status().healthz == "ok"
        second = PluginProcess(tmp_path / "p", p.args)
        second.log_path = tmp_path / "second.log"
        second.start(wait=False)
        assert second.proc is not None and second.proc.wait(timeout=60) == 3
        assert "another server is listening" in second.logs()
        assert p.status().healthz == "ok"  # the live one was left alone
    finally:
        assert p.terminate() == 0
    assert not p.socket.exists()  # removed on shutdown

    p.socket.write_text("not a socket")
    third = PluginProcess(tmp_path / "p", p.args)
    third.start(wait=False)
    assert third.proc is not None and third.proc.wait(timeout=60) == 3
    assert "is not a socket" in third.logs()
    assert p.socket.read_text() == "not a socket"


def test_cluster_secret_split(tmp_path: Path, keyring: Path) -> None:
    part_file = tmp_path / "node.key"
    done = envelope_cli("cluster-secret", "new", "--out", str(part_file))
    assert done.returncode == 0, done.stderr
    part = ClusterSecret.from_file(part_file)
    p = start(tmp_path, keyring, "--cluster-secret", str(part_file))
    plain = start(tmp_path, keyring, name="no-part")
    try:
        seed = secrets.token_bytes(32)
        out = p.encrypt(seed)
        assert dict(out.annotations)["cluster-secret.envelope.dev"] == part.ids[0].encode()
        assert f"cluster:{part.ids[0]}" in out.key_id
        assert p.decrypt(out.ciphertext, out.key_id, out.annotations) == seed
        # The KMS alone (a plugin without the node's part) cannot open it.
        exc = rpc_error(plain.decrypt, out.ciphertext, out.key_id, out.annotations)
        assert exc.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert part.ids[0] in (exc.details() or "")
    finally:
        p.kill()
        plain.kill()


def test_bad_configuration_exits_with_a_message(tmp_path: Path) -> None:
    done = envelope_cli(
        "kms-plugin", "--listen", f"unix://{tmp_path}/s.sock", "--keyring", str(tmp_path / "no")
    )
    assert done.returncode == 3
    assert "no keyring at" in done.stderr and "Traceback" not in done.stderr
    done = envelope_cli("kms-plugin", "--listen", "tcp://127.0.0.1:1")
    assert done.returncode == 3 and "unix:///absolute/path.sock" in done.stderr


def test_status_request_type_is_the_vendored_one() -> None:
    # Wire names come from the proto package, not from the file path.
    assert api_pb2.DESCRIPTOR.package == "v2"
    service = api_pb2.DESCRIPTOR.services_by_name["KeyManagementService"]
    assert service.full_name == "v2.KeyManagementService"
    assert [m.name for m in service.methods] == ["Status", "Decrypt", "Encrypt"]
