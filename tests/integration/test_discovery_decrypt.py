"""Discovery decrypt through the real CLI (a subprocess): without --kms-key, the key a
message's slot names is used if --allow-key / ENVELOPE_ALLOWED_KEYS allows it, against
moto (AWS), OpenBao (Vault transit) and the local keyring; the endpoint, region, mount
and auth never come from the message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from envelope._exitcodes import ExitCode
from tests.support.moto_process import MotoProcess
from tests.support.openbao import OpenBao

PLAIN = b"DB_PASSWORD=hunter2\n"


def envelope(
    *argv: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    environ = {k: v for k, v in os.environ.items() if k != "ENVELOPE_ALLOWED_KEYS"}
    return subprocess.run(
        [sys.executable, "-m", "envelope", *argv],
        capture_output=True,
        env={**environ, **(env or {})},
        cwd=cwd,
        check=False,
        timeout=120,
    )


def ok(result: subprocess.CompletedProcess[bytes]) -> bytes:
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def kms_client(url: str, region: str = "eu-west-1") -> Any:
    return boto3.client("kms", endpoint_url=url, region_name=region)


def seal(tmp_path: Path, *kms: str, name: str = "secret.env") -> Path:
    (tmp_path / "plain.txt").write_bytes(PLAIN)
    out = tmp_path / name
    ok(envelope("encrypt", str(tmp_path / "plain.txt"), "-o", str(out), "--no-split", *kms))
    return out


# -- AWS KMS (moto) ---------------------------------------------------------------------


@pytest.fixture
def arn(moto_url: str) -> str:
    return str(kms_client(moto_url).create_key()["KeyMetadata"]["Arn"])


@pytest.fixture
def aws_message(tmp_path: Path, moto_url: str, arn: str) -> Path:
    return seal(tmp_path, "--kms", "aws", "--kms-key", arn, "--kms-endpoint", moto_url)


def aws_decrypt(
    message: Path, moto_url: str, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return envelope(
        "decrypt",
        str(message),
        "--kms",
        "aws",
        "--kms-endpoint",
        moto_url,
        "--kms-region",
        "eu-west-1",
        *extra,
        env=env,
    )


def test_aws_arn_pattern_allows_the_message_key(aws_message: Path, moto_url: str) -> None:
    allowed = aws_decrypt(
        aws_message, moto_url, "--allow-key", "arn:aws:kms:eu-west-1:123456789012:key/*"
    )
    assert ok(allowed) == PLAIN


def test_aws_key_id_and_alias_patterns(aws_message: Path, moto_url: str, arn: str) -> None:
    key_id = arn.rsplit("/", 1)[1]
    assert ok(aws_decrypt(aws_message, moto_url, "--allow-key", key_id[:8] + "*")) == PLAIN
    alias = f"alias/billing-{os.urandom(4).hex()}"
    kms_client(moto_url).create_alias(AliasName=alias, TargetKeyId=arn)
    assert ok(aws_decrypt(aws_message, moto_url, "--allow-key", "alias/billing-*")) == PLAIN
    refused = aws_decrypt(aws_message, moto_url, "--allow-key", "alias/payroll-*")
    assert refused.returncode == ExitCode.CONFIG
    assert arn in refused.stderr.decode()


def test_aws_allow_list_from_the_environment(aws_message: Path, moto_url: str, arn: str) -> None:
    env = {"ENVELOPE_ALLOWED_KEYS": f"alias/none-*, {arn}"}
    assert ok(aws_decrypt(aws_message, moto_url, env=env)) == PLAIN
    # A flag replaces the environment's list: it does not add to it.
    flagged = aws_decrypt(aws_message, moto_url, "--allow-key", "alias/none-*", env=env)
    assert flagged.returncode == ExitCode.CONFIG


def test_aws_without_key_or_allow_list_names_the_key(
    aws_message: Path, moto_url: str, arn: str
) -> None:
    refused = aws_decrypt(aws_message, moto_url)
    assert refused.returncode == ExitCode.CONFIG
    err = refused.stderr.decode()
    assert arn in err
    assert "--kms-key" in err and "--allow-key" in err and "ENVELOPE_ALLOWED_KEYS" in err
    assert "Traceback" not in err
    assert refused.stdout == b""


def test_aws_key_not_allowed_fails_naming_the_key(
    aws_message: Path, moto_url: str, arn: str
) -> None:
    refused = aws_decrypt(aws_message, moto_url, "--allow-key", "arn:aws:kms:*:999999999999:*")
    assert refused.returncode == ExitCode.CONFIG
    assert arn in refused.stderr.decode()
    assert "arn:aws:kms:*:999999999999:*" in refused.stderr.decode()


def test_encrypt_is_refused_with_only_an_allow_list(tmp_path: Path, moto_url: str) -> None:
    (tmp_path / "p").write_bytes(PLAIN)
    env = {"ENVELOPE_ALLOWED_KEYS": "*"}
    refused = envelope(
        "encrypt", str(tmp_path / "p"), "--no-split", "--kms", "aws", "--kms-endpoint",
        moto_url, env=env,
    )  # fmt: skip
    assert refused.returncode == ExitCode.CONFIG
    assert "--kms-key" in refused.stderr.decode()


@pytest.fixture
def other_endpoint(tmp_path: Path, moto_url: str) -> Iterator[MotoProcess]:
    """A second, independent moto (its own process and state)."""
    del moto_url  # its environment (test credentials) reaches the process
    with MotoProcess(tmp_path / "other-moto") as other:
        yield other


def test_a_key_in_another_region_and_endpoint_never_reaches_it(
    tmp_path: Path, moto_url: str, other_endpoint: MotoProcess
) -> None:
    far = str(kms_client(other_endpoint.url, "us-east-1").create_key()["KeyMetadata"]["Arn"])
    message = seal(
        tmp_path, "--kms", "aws", "--kms-key", far, "--kms-endpoint", other_endpoint.url,
        "--kms-region", "us-east-1",
    )  # fmt: skip
    before = other_endpoint.requests_seen()
    assert before > 0  # the recorder works: it saw the key made and the data key wrapped

    # A wildcard region does not allow a key outside the configured region.
    refused = aws_decrypt(message, moto_url, "--allow-key", "arn:aws:kms:*")
    assert refused.returncode == ExitCode.CONFIG
    assert far in refused.stderr.decode()
    assert "--allow-key" in refused.stderr.decode()

    # A pattern naming us-east-1 allows it: signed for us-east-1, but still sent to the
    # configured endpoint (which has no such key), never to the one that made it.
    named = aws_decrypt(message, moto_url, "--allow-key", "arn:aws:kms:us-east-1:*")
    assert named.returncode == ExitCode.KMS
    assert "us-east-1" in named.stderr.decode()

    assert other_endpoint.requests_seen() == before


def test_a_pattern_naming_the_region_reaches_the_key_there(tmp_path: Path, moto_url: str) -> None:
    far = str(kms_client(moto_url, "us-east-1").create_key()["KeyMetadata"]["Arn"])
    message = seal(
        tmp_path, "--kms", "aws", "--kms-key", far, "--kms-endpoint", moto_url,
        "--kms-region", "us-east-1",
    )  # fmt: skip
    assert aws_decrypt(message, moto_url, "--allow-key", "*").returncode == ExitCode.CONFIG
    allowed = aws_decrypt(message, moto_url, "--allow-key", "arn:aws:kms:us-east-1:*:key/*")
    assert ok(allowed) == PLAIN


def test_a_slot_that_fails_falls_through_to_the_next_allowed_one(
    tmp_path: Path, moto_url: str, other_endpoint: MotoProcess
) -> None:
    """A message for a key made elsewhere (first) and one here (second): the first is
    tried at the configured endpoint only, fails there, and the second decrypts."""
    from envelope import Envelope
    from envelope.kms import AwsKms

    elsewhere = str(kms_client(other_endpoint.url).create_key()["KeyMetadata"]["Arn"])
    here = str(kms_client(moto_url).create_key()["KeyMetadata"]["Arn"])
    kms = [
        AwsKms(elsewhere, endpoint_url=other_endpoint.url, region="eu-west-1"),
        AwsKms(here, endpoint_url=moto_url, region="eu-west-1"),
    ]
    message = tmp_path / "two.env"
    message.write_bytes(Envelope(kms).encrypt(PLAIN))
    before = other_endpoint.requests_seen()
    assert ok(aws_decrypt(message, moto_url, "--allow-key", "arn:aws:kms:eu-west-1:*")) == PLAIN
    assert ok(aws_decrypt(message, moto_url, "--allow-key", here)) == PLAIN
    only_elsewhere = aws_decrypt(message, moto_url, "--allow-key", elsewhere)
    assert only_elsewhere.returncode == ExitCode.KMS
    assert elsewhere in only_elsewhere.stderr.decode()
    assert other_endpoint.requests_seen() == before


def test_rewrap_with_an_allow_list(aws_message: Path, moto_url: str, arn: str) -> None:
    before = aws_message.read_bytes()
    kms_client(moto_url).rotate_key_on_demand(KeyId=arn)
    ok(
        envelope(
            "rewrap", str(aws_message), "--kms", "aws", "--kms-endpoint", moto_url,
            "--allow-key", arn,
        )
    )  # fmt: skip
    assert aws_message.read_bytes() != before
    assert ok(aws_decrypt(aws_message, moto_url, "--allow-key", arn)) == PLAIN
    refused = envelope("rewrap", str(aws_message), "--kms", "aws", "--kms-endpoint", moto_url)
    assert refused.returncode == ExitCode.DECRYPT  # each file's failure is listed
    assert arn in refused.stderr.decode()


def test_documents_decrypt_with_an_allow_list(tmp_path: Path, moto_url: str, arn: str) -> None:
    doc = tmp_path / "app.yaml"
    doc.write_text("db:\n  password: hunter2\n")
    sealed = ok(
        envelope(
            "encrypt", str(doc), "--kms", "aws", "--kms-key", arn, "--kms-endpoint", moto_url,
            "--no-split", cwd=tmp_path,
        )
    )  # fmt: skip
    (tmp_path / "app.enc.yaml").write_bytes(sealed)
    out = aws_decrypt(tmp_path / "app.enc.yaml", moto_url, "--allow-key", "arn:aws:kms:eu-west-1:*")
    assert b"hunter2" in ok(out)
    refused = aws_decrypt(tmp_path / "app.enc.yaml", moto_url)
    assert refused.returncode == ExitCode.CONFIG
    assert arn in refused.stderr.decode()


# -- Vault transit (OpenBao) ------------------------------------------------------------


@pytest.fixture
def transit_key(openbao: OpenBao) -> str:
    name = f"billing-{os.urandom(4).hex()}"
    openbao.write(f"transit/keys/{name}")
    return name


def vault_flags(openbao: OpenBao) -> dict[str, str]:
    return {"VAULT_TOKEN": openbao.root_token}


def vault_decrypt(
    message: Path, openbao: OpenBao, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return envelope(
        "decrypt", str(message), "--kms", "vault", "--kms-endpoint", openbao.url, *extra,
        env={**vault_flags(openbao), **(env or {})},
    )  # fmt: skip


@pytest.fixture
def vault_message(tmp_path: Path, openbao: OpenBao, transit_key: str) -> Path:
    (tmp_path / "plain.txt").write_bytes(PLAIN)
    out = tmp_path / "vault.env"
    ok(
        envelope(
            "encrypt", str(tmp_path / "plain.txt"), "-o", str(out), "--no-split", "--kms",
            "vault", "--kms-key", transit_key, "--kms-endpoint", openbao.url,
            env=vault_flags(openbao),
        )
    )  # fmt: skip
    return out


def test_vault_name_pattern_allows_the_message_key(vault_message: Path, openbao: OpenBao) -> None:
    assert ok(vault_decrypt(vault_message, openbao, "--allow-key", "billing-*")) == PLAIN
    env = {"ENVELOPE_ALLOWED_KEYS": "payroll-* transit/billing-*"}
    assert ok(vault_decrypt(vault_message, openbao, env=env)) == PLAIN


def test_vault_not_allowed_names_the_key(
    vault_message: Path, openbao: OpenBao, transit_key: str
) -> None:
    for extra in ((), ("--allow-key", "payroll-*")):
        refused = vault_decrypt(vault_message, openbao, *extra)
        assert refused.returncode == ExitCode.CONFIG
        assert f"transit/{transit_key}" in refused.stderr.decode()


def test_vault_mount_never_comes_from_the_message(
    vault_message: Path, openbao: OpenBao, transit_key: str
) -> None:
    """The slot says transit/<key>; configured for another mount, it is not followed."""
    refused = vault_decrypt(vault_message, openbao, "--vault-mount", "other", "--allow-key", "*")
    assert refused.returncode == ExitCode.CONFIG
    assert f"transit/{transit_key}" in refused.stderr.decode()


# -- the local keyring ------------------------------------------------------------------


@pytest.fixture
def keyring(tmp_path: Path) -> dict[str, str]:
    env = {"ENVELOPE_KEYRING": str(tmp_path / "keyring.json")}
    ok(envelope("keyring", "init", env=env))
    return env


def test_local_keyring_allow_list(tmp_path: Path, keyring: dict[str, str]) -> None:
    (tmp_path / "plain.txt").write_bytes(PLAIN)
    message = tmp_path / "local.env"
    ok(
        envelope(
            "encrypt", str(tmp_path / "plain.txt"), "-o", str(message), "--no-split", env=keyring
        )
    )
    info = json.loads(ok(envelope("inspect", str(message), "--json")))
    keyring_id = info["wrapped_keys"][0]["key_id"]
    assert ok(envelope("decrypt", str(message), "--allow-key", keyring_id, env=keyring)) == PLAIN
    allowed = {**keyring, "ENVELOPE_ALLOWED_KEYS": keyring_id[:5] + "*"}
    assert ok(envelope("decrypt", str(message), env=allowed)) == PLAIN
    refused = envelope("decrypt", str(message), "--allow-key", "kr-other*", env=keyring)
    assert refused.returncode == ExitCode.CONFIG
    assert keyring_id in refused.stderr.decode()
    assert "--allow-key" in refused.stderr.decode()


def test_init_config_with_allowed_keys(
    tmp_path: Path, openbao: OpenBao, transit_key: str, vault_message: Path
) -> None:
    token = tmp_path / "token"
    token.write_text(openbao.root_token)
    out = tmp_path / "out"
    out.mkdir()
    kms = {
        "kind": "vault",
        "endpoint": openbao.url,
        "allowed_keys": ["billing-*"],
        "vault": {"auth": {"method": "token", "token_file": str(token)}},
    }
    cfg = {
        "kms": kms,
        "output": {"directory": str(out)},
        "secrets": [{"name": "db", "source": {"file": str(vault_message)}, "context": {}}],
    }
    config = tmp_path / "init.json"
    config.write_text(json.dumps(cfg))
    ok(envelope("init", "--config", str(config), "--allow-disk"))
    assert (out / "db").read_bytes() == PLAIN
    kms["allowed_keys"] = ["payroll-*"]
    config.write_text(json.dumps(cfg))
    refused = envelope("init", "--config", str(config), "--allow-disk")
    assert refused.returncode == ExitCode.CONFIG
    assert f"transit/{transit_key}" in refused.stderr.decode()
