"""Break-glass recovery for real: the commands `envelope inspect` prints are run as they
are, by bash, with the vendors' own CLIs (`aws` against moto, `bao` against OpenBao,
`envelope keyring unwrap` for the local keyring); `envelope decrypt --data-key` then
opens the message with what they wrote, and the plaintext must be the original."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from envelope import ClusterSecret, Envelope
from envelope.kms import AwsKms, LocalKms, TokenAuth, VaultTransit
from tests.support.openbao import OpenBao, bao_binary

CONTEXT = {"service": "billing", "note": 'it\'s a $HOME `test`, with spaces; and "quotes"'}
PLAINTEXT = b"DB_PASSWORD=correct horse battery staple\n" * 1000


def _tools_path() -> str:
    """This Python's scripts (envelope, aws), bao's directory, then the system's."""
    dirs = [str(Path(sys.executable).parent), str(Path(bao_binary()).parent)]
    aws = shutil.which("aws")
    if aws:
        dirs.append(str(Path(aws).parent))
    return os.pathsep.join([*dirs, os.environ.get("PATH", "")])


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _env(work: Path, **extra: str) -> dict[str, str]:
    env = {
        "PATH": _tools_path(),
        "HOME": str(work),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "ENVELOPE_KEYRING": str(work / "keyring.json"),
        "ENVELOPE_CLUSTER_SECRET_FILE": str(work / "cluster.key"),
        "LC_ALL": "C.UTF-8",
    }
    env.update(extra)
    return env


def _sh(command: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["bash", "-c", command],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, (command, done.stdout, done.stderr)
    return done


def _inspect(work: Path, env: dict[str, str]) -> dict[str, Any]:
    done = _sh("envelope inspect m.env --json", env, work)
    return dict(json.loads(done.stdout))


def _write_message(work: Path, env: Envelope) -> None:
    (work / "m.env").write_bytes(env.encrypt(PLAINTEXT, CONTEXT))


def _recover_and_decrypt(work: Path, env: dict[str, str], commands: list[str]) -> None:
    """Runs each slot's command, then the printed decrypt command, and checks the result."""
    info = _inspect(work, env)
    for command in commands:
        _sh(command, env, work)
    for key in work.glob("slot-*.key"):
        assert key.stat().st_mode & 0o077 == 0, key  # the recovered key is 0600
    _sh(info["break_glass"]["decrypt_command"], env, work)
    assert (work / "m.env.recovered").read_bytes() == PLAINTEXT


@pytest.fixture
def cluster(work: Path) -> ClusterSecret:
    secret = ClusterSecret.generate()
    (work / "cluster.key").write_bytes(bytes(secret.current.material))
    os.chmod(work / "cluster.key", 0o600)
    return secret


def test_local_keyring_slot(work: Path, cluster: ClusterSecret) -> None:
    keyring = LocalKms.create(work / "keyring.json")
    keyring.rotate()  # the slot records version 2
    _write_message(work, Envelope(keyring, cluster))
    env = _env(work)
    info = _inspect(work, env)
    slot = info["wrapped_keys"][0]
    assert slot["kek_version"] == 2
    assert slot["recovery"][0]["command"].startswith("envelope keyring unwrap ")
    _recover_and_decrypt(work, env, [slot["recovery"][0]["command"]])


def test_aws_kms_slot_with_the_aws_cli(work: Path, cluster: ClusterSecret, moto_url: str) -> None:
    assert shutil.which("aws", path=_tools_path()), "pip install -e '.[dev]' installs awscli"
    client = boto3.client("kms", endpoint_url=moto_url, region_name="eu-west-1")
    arn = client.create_key(Description="break-glass")["KeyMetadata"]["Arn"]
    _write_message(work, Envelope(AwsKms(arn, endpoint_url=moto_url, region="eu-west-1"), cluster))
    env = _env(work, AWS_ENDPOINT_URL=moto_url, **_aws_credentials())
    slot = _inspect(work, env)["wrapped_keys"][0]
    assert slot["key_id"] == arn and slot["recovery"][0]["kms_context"] == CONTEXT
    _recover_and_decrypt(work, env, [slot["recovery"][0]["command"]])


def _aws_credentials() -> dict[str, str]:
    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    return {n: os.environ[n] for n in names} | {"AWS_DEFAULT_REGION": "eu-west-1"}


def _transit_key(openbao: OpenBao, *, derived: bool) -> str:
    name = f"bg-{secrets.token_hex(4)}"
    openbao.write(f"transit/keys/{name}", derived=derived)
    return name


def _vault(openbao: OpenBao, key: str) -> VaultTransit:
    return VaultTransit(key, url=openbao.url, auth=TokenAuth(openbao.root_token))


@pytest.mark.parametrize("derived", [True, False], ids=["derived", "not-derived"])
def test_vault_transit_slot_with_bao(
    work: Path, cluster: ClusterSecret, openbao: OpenBao, derived: bool
) -> None:
    key = _transit_key(openbao, derived=derived)
    _write_message(work, Envelope(_vault(openbao, key), cluster))
    env = _env(work, BAO_ADDR=openbao.url, BAO_TOKEN=openbao.root_token)
    slot = _inspect(work, env)["wrapped_keys"][0]
    assert slot["kek_version"] == 1
    ways = {bool("not derived" not in r["when"]): r for r in slot["recovery"]}
    right, wrong = ways[derived], ways[not derived]
    # The other variant is refused by Transit: the printed field is the one that matters.
    failed = subprocess.run(
        ["bash", "-c", wrong["command"]], env=env, cwd=work, capture_output=True, check=False
    )
    assert failed.returncode != 0
    _recover_and_decrypt(work, env, [right["command"]])


def test_threshold_shares_from_three_vendors(
    work: Path, cluster: ClusterSecret, moto_url: str, openbao: OpenBao
) -> None:
    """A 2-of-3 message over the local keyring, AWS KMS and Vault: the shares recovered
    from two of them (the printed decrypt command names the first two slots)."""
    client = boto3.client("kms", endpoint_url=moto_url, region_name="eu-west-1")
    arn = client.create_key()["KeyMetadata"]["Arn"]
    custodians = [
        LocalKms.create(work / "keyring.json"),
        AwsKms(arn, endpoint_url=moto_url, region="eu-west-1"),
        _vault(openbao, _transit_key(openbao, derived=True)),
    ]
    _write_message(work, Envelope(custodians, cluster, threshold=2))
    env = _env(
        work,
        AWS_ENDPOINT_URL=moto_url,
        BAO_ADDR=openbao.url,
        BAO_TOKEN=openbao.root_token,
        **_aws_credentials(),
    )
    info = _inspect(work, env)
    assert info["break_glass"]["threshold"] == [2, 3]
    assert (
        "--data-key 1=slot-1.key --data-key 2=slot-2.key"
        in (info["break_glass"]["decrypt_command"])
    )
    commands = [s["recovery"][0]["command"] for s in info["wrapped_keys"][:2]]
    _recover_and_decrypt(work, env, commands)
    # Any two shares: slots 2 and 3 (AWS and Vault) open it too.
    _sh(info["wrapped_keys"][2]["recovery"][0]["command"], env, work)
    cmd = "envelope decrypt m.env --data-key 3=slot-3.key --data-key 2=slot-2.key --any-context"
    done = _sh(cmd, env, work)
    assert done.stdout.encode() == PLAINTEXT
