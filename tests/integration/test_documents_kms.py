"""envelope.documents on real KMS backends: moto's AWS KMS and OpenBao transit, alone,
any-of and 2-of-3 (with one KMS down), through the API and through a rules file."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from envelope import ClusterSecret, DecryptionError, Envelope, KmsError, LocalKms
from envelope import documents as docs
from envelope.kms._aws import AwsKms
from envelope.kms._vault import VaultTransit
from envelope.kms._vault_auth import TokenAuth
from tests.support.openbao import OpenBao

SRC = Path(__file__).resolve().parents[2] / "src"
DOC = "db:\n  password: hunter2  # yearly\n  port: 5432\nlist:\n  - a\n  - b\n"


def dead_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there any more


@pytest.fixture
def arn(moto_url: str) -> str:
    client = boto3.client("kms", endpoint_url=moto_url, region_name="eu-west-1")
    return str(client.create_key(Description="documents")["KeyMetadata"]["Arn"])


@pytest.fixture
def transit_key(openbao: OpenBao) -> str:
    name = f"doc-{secrets.token_hex(4)}"
    openbao.write(f"transit/keys/{name}")
    return name


def aws(moto_url: str, arn: str) -> AwsKms:
    return AwsKms(arn, endpoint_url=moto_url, region="eu-west-1")


def vault(openbao: OpenBao, key: str) -> VaultTransit:
    return VaultTransit(key, url=openbao.url, auth=TokenAuth(openbao.root_token))


def test_each_backend_alone(moto_url: str, arn: str, openbao: OpenBao, transit_key: str) -> None:
    for kms in (LocalKms.ephemeral(), aws(moto_url, arn), vault(openbao, transit_key)):
        env = Envelope(kms, ClusterSecret.generate())
        encrypted = docs.encrypt(DOC, env, name="a.yaml", context={"service": "billing"})
        assert f"provider: {kms.provider_id}" in encrypted and "hunter2" not in encrypted
        assert docs.decrypt(encrypted, env, name="a.yaml") == DOC
        with pytest.raises(DecryptionError, match=r"a\.yaml"):
            docs.decrypt(encrypted.replace("port:", "porte:"), env, name="a.yaml")


def test_two_of_three_decrypts_with_one_kms_down(
    moto_url: str, arn: str, openbao: OpenBao, transit_key: str
) -> None:
    local = LocalKms.ephemeral()
    env = Envelope([local, aws(moto_url, arn), vault(openbao, transit_key)], threshold=2)
    encrypted = docs.encrypt(DOC, env, name="t.yaml")
    assert "threshold: 2-of-3" in encrypted
    aws_down = AwsKms(arn, endpoint_url=dead_endpoint(), region="eu-west-1")
    degraded = Envelope([aws_down, local, vault(openbao, transit_key)], threshold=2)
    assert docs.decrypt(encrypted, degraded, name="t.yaml") == DOC
    vault_down = VaultTransit(transit_key, url=dead_endpoint(), auth=TokenAuth("t"), deadline=0.5)
    alone = Envelope([aws_down, local, vault_down], threshold=2)
    with pytest.raises(KmsError, match="needs 2 of 3"):
        docs.decrypt(encrypted, alone, name="t.yaml")


def test_any_of_and_updatekeys_through_rules(
    tmp_path: Path, moto_url: str, arn: str, openbao: OpenBao, transit_key: str
) -> None:
    token = tmp_path / "bao.token"
    token.write_text(openbao.root_token)
    LocalKms.create(tmp_path / "keyring.json")
    (tmp_path / "cluster.key").write_bytes(os.urandom(32))
    local = "      - {kind: local, keyring: keyring.json}\n"
    aws_kms = f"      - {{kind: aws, key: '{arn}', endpoint: '{moto_url}', region: eu-west-1}}\n"
    bao = (
        f"      - {{kind: vault, key: {transit_key}, endpoint: '{openbao.url}', "
        "vault: {auth: {method: token, token_file: bao.token}}}\n"
    )
    rules = tmp_path / ".envelope.yaml"

    def write_rules(kms: str, threshold: str = "") -> None:
        rules.write_text(
            "creation_rules:\n  - path_regex: \\.yaml$\n    kms:\n"
            + kms
            + threshold
            + "    cluster_secret: cluster.key\n    context: {service: billing}\n"
        )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(SRC)}
        env.pop("ENVELOPE_KEYRING", None)
        return subprocess.run(
            [sys.executable, "-m", "envelope", *args],
            cwd=tmp_path,
            env=env,
            text=True,
            capture_output=True,
            timeout=120,
            check=False,
        )

    write_rules(local + aws_kms)
    (tmp_path / "app.yaml").write_text(DOC)
    assert cli("encrypt", "-i", "app.yaml").returncode == 0
    before = (tmp_path / "app.yaml").read_text()
    assert before.count("provider:") == 2 and "cluster_secret: cs-" in before
    write_rules(local + aws_kms + bao, "    threshold: 2\n")
    result = cli("updatekeys", "app.yaml")
    assert result.returncode == 0, result.stderr
    after = (tmp_path / "app.yaml").read_text()
    assert after.count("provider:") == 3 and "threshold: 2-of-3" in after
    tokens = [ln for ln in before.splitlines() if "ENV[v1," in ln]
    assert tokens == [ln for ln in after.splitlines() if "ENV[v1," in ln]  # values untouched
    write_rules(local + aws_kms.replace(moto_url, dead_endpoint()) + bao, "    threshold: 2\n")
    out = cli("decrypt", "app.yaml", "--extract", ".db.password")
    assert (out.returncode, out.stdout) == (0, "hunter2\n"), out.stderr
