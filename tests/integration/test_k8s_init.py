"""`envelope init` and `envelope exec`, run as a pod would run them."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from envelope import ClusterSecret, Envelope, LocalKms, cli
from envelope.k8s._forms import parse_dotenv, render
from envelope.k8s._publish import DATA_LINK, filesystem_type

IS_ROOT = os.geteuid() == 0
DB_ENV = (
    b'DB_USER=billing\nDB_PASSWORD="s3cr3t-\\"quoted\\""\n# comment\nexport DB_HOST=db.internal\n'
)
API_JSON = b'{"api_token": "tok_live_abc", "region": "eu", "retries": 3}'


class Pod:
    """A service's files: keyring, cluster part, sealed secrets, config, output dir."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.keyring = root / "keyring.json"
        self.kms = LocalKms.create(self.keyring)
        self.part = root / "cluster-part"
        self.part.write_bytes(os.urandom(32))
        self.env = Envelope(self.kms, ClusterSecret.from_file(self.part))
        self.sealed = root / "sealed"
        self.sealed.mkdir()
        self.out = root / "out"
        self.out.mkdir()
        self.seal("database", DB_ENV, {"service": "billing"})
        self.seal("api", API_JSON, {"service": "billing"})
        self.seal("tls-key", b"-----BEGIN PRIVATE KEY-----\nMIIB...\n", {"service": "billing"})

    def seal(self, name: str, data: bytes, context: dict[str, str]) -> Path:
        path = self.sealed / f"{name}.enc"
        path.write_bytes(self.env.encrypt(data, context))
        return path

    def config(self, **overrides: Any) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "version": 1,
            "kms": {"kind": "local", "keyring": str(self.keyring)},
            "cluster_secret": {"file": str(self.part)},
            "output": {"directory": str(self.out), "mode": "0400"},
            "context": {"service": "billing"},  # inherited by api and tls-key
            "secrets": [
                {
                    "name": "database",
                    "source": {"file": str(self.sealed / "database.enc")},
                    "target": "database.env",
                    "form": "dotenv",
                    "context": {"service": "billing"},
                },
                {
                    "name": "api",
                    "source": {"file": str(self.sealed / "api.enc")},
                    "target": "api.json",
                    "form": "json",
                    "keys": ["api_token", "region"],
                },
                {
                    "name": "tls-key",
                    "source": {"file": str(self.sealed / "tls-key.enc")},
                    "target": "tls.key",
                    "env": "TLS_KEY",
                },
            ],
            "timeout": 5,
        }
        cfg.update(overrides)
        return cfg

    def write_config(self, cfg: dict[str, Any]) -> str:
        path = self.root / "init.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return str(path)

    def visible(self) -> dict[str, bytes]:
        """What the app can read: regular names that resolve to files."""
        out = {}
        for entry in self.out.iterdir():
            if entry.name.startswith(".."):
                continue
            with contextlib.suppress(FileNotFoundError):  # a dangling link is not visible
                out[entry.name] = entry.read_bytes()
        return out


@pytest.fixture
def pod(tmp_path: Path) -> Pod:
    return Pod(tmp_path)


def run_init(pod: Pod, cfg: dict[str, Any], *extra: str) -> int:
    return cli.run(["init", "--config", pod.write_config(cfg), *extra])


def test_publishes_every_form(pod: Pod) -> None:
    assert run_init(pod, pod.config(), "--allow-disk") == 0
    files = pod.visible()
    assert set(files) == {"database.env", "api.json", "tls.key"}
    assert parse_dotenv(files["database.env"].decode(), "t") == {
        "DB_USER": "billing",
        "DB_PASSWORD": 's3cr3t-"quoted"',
        "DB_HOST": "db.internal",
    }
    assert json.loads(files["api.json"]) == {"api_token": "tok_live_abc", "region": "eu"}
    assert files["tls.key"].startswith(b"-----BEGIN PRIVATE KEY")
    for name in files:
        real = (pod.out / name).resolve()
        assert real.stat().st_mode & 0o777 == 0o400
        assert (
            real.parent.name.startswith("..")
            and os.readlink(pod.out / name) == f"{DATA_LINK}/{name}"
        )


def test_running_twice_is_safe(pod: Pod) -> None:
    assert run_init(pod, pod.config(), "--allow-disk") == 0
    first = os.readlink(pod.out / DATA_LINK)
    assert run_init(pod, pod.config(), "--allow-disk") == 0
    assert os.readlink(pod.out / DATA_LINK) != first
    versions = [
        p
        for p in pod.out.iterdir()
        if p.name.startswith("..") and p.is_dir() and not p.is_symlink()
    ]
    assert len(versions) == 1
    assert set(pod.visible()) == {"database.env", "api.json", "tls.key"}


def test_disk_backed_output_is_refused(pod: Pod) -> None:
    assert filesystem_type(pod.out) not in ("tmpfs", "ramfs")
    assert run_init(pod, pod.config()) == 6
    assert not list(pod.out.iterdir())


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "memory"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(mount)], check=True
    )
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.skipif(not IS_ROOT, reason="mounting a tmpfs needs root (CI runs as root)")
def test_real_tmpfs_and_ownership(pod: Pod, tmpfs: Path) -> None:
    assert filesystem_type(tmpfs) == "tmpfs"
    cfg = pod.config(output={"directory": str(tmpfs), "uid": 1000, "gid": 2000, "mode": "0440"})
    assert run_init(pod, cfg) == 0
    for name in ("database.env", "api.json", "tls.key"):
        st = (tmpfs / name).stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (1000, 2000, 0o440)


def test_one_corrupt_secret_publishes_nothing(pod: Pod, capsys: pytest.CaptureFixture[str]) -> None:
    blob = bytearray((pod.sealed / "api.enc").read_bytes())
    blob[-3] ^= 1
    (pod.sealed / "api.enc").write_bytes(bytes(blob))
    assert run_init(pod, pod.config(), "--allow-disk") == 1
    assert not list(pod.out.iterdir())
    err = capsys.readouterr().err
    assert "secret.failed" in err and "api" in err
    assert "billing" not in err.replace("service", "")  # no plaintext in logs


def test_wrong_cluster_part_names_the_id(pod: Pod, capsys: pytest.CaptureFixture[str]) -> None:
    needed = ClusterSecret.from_file(pod.part).current.id
    pod.part.write_bytes(os.urandom(32))
    assert run_init(pod, pod.config(), "--allow-disk") == 3
    assert needed in capsys.readouterr().err
    assert not list(pod.out.iterdir())


def test_config_typo_names_the_field(pod: Pod, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = pod.config()
    cfg["secrets"][0]["targt"] = cfg["secrets"][0].pop("target")
    assert run_init(pod, cfg, "--allow-disk") == 3
    err = capsys.readouterr().err
    assert "secrets.0.targt" in err and "did you mean 'target'" in err
    cfg = pod.config(kms={"kind": "vault", "key": "k", "vault": {"auth": {"method": "kubernetes"}}})
    assert run_init(pod, cfg, "--allow-disk") == 3
    assert "vault.auth.role" in capsys.readouterr().err


def test_missing_source_file(pod: Pod, capsys: pytest.CaptureFixture[str]) -> None:
    (pod.sealed / "database.enc").unlink()
    assert run_init(pod, pod.config(), "--allow-disk") == 3
    assert "database.enc" in capsys.readouterr().err


def test_json_logs_carry_no_values(pod: Pod, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_init(pod, pod.config(), "--allow-disk", "--log-format", "json") == 0
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [r["event"] for r in lines][-1] == "init.done"
    assert {r["secret"] for r in lines if r["event"] == "secret.decrypted"} == {
        "database",
        "api",
        "tls-key",
    }
    text = json.dumps(lines)
    for value in ("s3cr3t", "tok_live_abc", "PRIVATE KEY"):
        assert value not in text


def test_killed_mid_publish_leaves_nothing_and_a_rerun_completes(pod: Pod) -> None:
    config = pod.write_config(pod.config())
    crash = (
        "import os, sys\n"
        "import envelope.k8s._publish as p\n"
        "p._swap = lambda *a: os._exit(9)\n"  # dies right before the commit point
        "from envelope.cli import run\n"
        "sys.exit(run(sys.argv[1:]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", crash, "init", "--config", config, "--allow-disk"],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 9
    assert pod.visible() == {}
    assert run_init(pod, pod.config(), "--allow-disk") == 0
    assert set(pod.visible()) == {"database.env", "api.json", "tls.key"}


def test_inline_source(pod: Pod) -> None:
    blob = pod.env.encrypt(b"inline-secret", {"k": "v"})
    cfg = pod.config(
        secrets=[
            {
                "name": "inline",
                "source": {"inline": base64.b64encode(blob).decode()},
                "context": {"k": "v"},
            }
        ]
    )
    assert run_init(pod, cfg, "--allow-disk") == 0
    assert pod.visible() == {"inline": b"inline-secret"}


def test_forms_reject_bad_documents() -> None:
    from envelope.errors import ConfigError

    with pytest.raises(ConfigError, match="line 1"):
        render(b"not a dotenv line", "s", "dotenv", None)
    with pytest.raises(ConfigError, match="JSON object"):
        render(b"A=1", "s", "json", None)
    with pytest.raises(ConfigError, match="missing"):
        render(b'{"a": "1"}', "s", "json", ["missing"])


def test_exec_sets_the_environment(pod: Pod) -> None:
    config = pod.write_config(pod.config())
    script = (
        "import os; print(os.environ['DB_PASSWORD'], os.environ['api_token'], "
        "os.environ['TLS_KEY'][:10])"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "envelope",
            "exec",
            "--config",
            config,
            "--",
            sys.executable,
            "-c",
            script,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ['s3cr3t-"quoted"', "tok_live_abc", "-----BEGIN"]
    assert not list(pod.out.iterdir())  # exec writes no files


def test_exec_needs_env_for_raw(pod: Pod) -> None:
    cfg = pod.config()
    del cfg["secrets"][2]["env"]
    config = pod.write_config(cfg)
    assert cli.run(["exec", "--config", config, "--", "true"]) == 3


# -- real KMS servers -------------------------------------------------------------------


def test_kms_down_at_start_retries_then_fails(
    pod: Pod,
    openbao: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from envelope.k8s import _runner
    from envelope.kms._vault import VaultTransit
    from envelope.kms._vault_auth import TokenAuth
    from tests.integration.test_vault_transit import new_key
    from tests.support.clock import VirtualTime
    from tests.support.openbao import refused_port

    # One virtual clock for both retry loops (the client's and init's): backoff not waited.
    clock = VirtualTime()
    monkeypatch.setattr("envelope.kms._vault.time", clock)
    monkeypatch.setattr("envelope.k8s._runner.time", clock)
    monkeypatch.setitem(_runner.decrypt_all.__kwdefaults__, "sleep", clock.sleep)

    # Sealed under a real transit key; then the pod finds the KMS unreachable.
    key = new_key(openbao, derived=True)
    operator = Envelope(
        VaultTransit(key, url=openbao.url, auth=TokenAuth(openbao.root_token)),
        ClusterSecret.from_file(pod.part),
    )
    for name, data in (("database", DB_ENV), ("api", API_JSON), ("tls-key", b"k")):
        (pod.sealed / f"{name}.enc").write_bytes(operator.encrypt(data, {"service": "billing"}))
    token = pod.root / "token"
    token.write_text(openbao.root_token)
    with refused_port() as port:  # bound, never listening: nobody else can answer
        cfg = pod.config(
            kms={
                "kind": "vault",
                "key": key,
                "endpoint": f"http://127.0.0.1:{port}",
                "vault": {"auth": {"method": "token", "token_file": str(token)}},
            },
            timeout=3,
        )
        assert run_init(pod, cfg, "--allow-disk", "--log-format", "json") == 4
        records = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
        events = [r["event"] for r in records]
        assert "secret.retry" in events and events.count("secret.failed") == 3
        assert all(
            "cannot reach Vault" in r["reason"] for r in records if r["event"] == "secret.failed"
        )
    assert not list(pod.out.iterdir())


def test_with_openbao_and_kubernetes_style_jwt_auth(
    pod: Pod, openbao: Any, jwt_minter: Any, tmp_path: Path
) -> None:
    from envelope.kms._vault import VaultTransit
    from envelope.kms._vault_auth import TokenAuth
    from tests.integration.test_vault_transit import new_key, policy_for
    from tests.support.jwt_minter import AUDIENCE

    key = new_key(openbao, derived=True)
    minter = jwt_minter
    openbao.write(
        f"auth/jwt/role/billing-{key}",
        role_type="jwt",
        bound_audiences=[AUDIENCE],
        user_claim="sub",
        bound_subject="system:serviceaccount:shop:billing",
        token_policies=[policy_for(openbao, key)],
        token_ttl="5m",
    )
    sa_token = tmp_path / "sa-token"
    sa_token.write_text(minter.service_account_token("shop", "billing"))
    operator = Envelope(
        VaultTransit(key, url=openbao.url, auth=TokenAuth(openbao.root_token)),
        ClusterSecret.from_file(pod.part),
    )
    (pod.sealed / "database.enc").write_bytes(operator.encrypt(DB_ENV, {"service": "billing"}))
    cfg = pod.config(
        kms={
            "kind": "vault",
            "key": key,
            "endpoint": openbao.url,
            "vault": {
                "auth": {"method": "jwt", "role": f"billing-{key}", "jwt_file": str(sa_token)}
            },
        },
        secrets=[pod.config()["secrets"][0]],
    )
    assert run_init(pod, cfg, "--allow-disk") == 0
    assert b"DB_PASSWORD" in pod.visible()["database.env"]


def test_with_moto_kms_and_an_s3_source(pod: Pod, moto_url: str) -> None:
    from envelope.kms._aws import AwsKms

    kms = boto3.client("kms", endpoint_url=moto_url, region_name="eu-west-1")
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="eu-west-1")
    arn = kms.create_key()["KeyMetadata"]["Arn"]
    bucket = f"sealed-{os.urandom(4).hex()}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    operator = Envelope(
        AwsKms(arn, endpoint_url=moto_url, region="eu-west-1"), ClusterSecret.from_file(pod.part)
    )
    s3.put_object(Bucket=bucket, Key="billing/api.enc", Body=operator.encrypt(API_JSON))
    cfg = pod.config(
        kms={"kind": "aws", "key": arn, "endpoint": moto_url, "region": "eu-west-1"},
        s3_endpoint=moto_url,
        secrets=[
            {
                "name": "api",
                "source": {"s3": f"s3://{bucket}/billing/api.enc"},
                "target": "api.json",
                "form": "json",
                "context": {},
            }
        ],
    )
    assert run_init(pod, cfg, "--allow-disk") == 0
    assert json.loads(pod.visible()["api.json"])["api_token"] == "tok_live_abc"


def test_refresh_mode_republishes_rotated_secrets(pod: Pod) -> None:
    import threading
    import time

    config = pod.write_config(pod.config())
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "envelope",
            "init",
            "--config",
            config,
            "--allow-disk",
            "--refresh",
            "0.2",
        ],
        stderr=subprocess.PIPE,
    )
    lines: list[bytes] = []
    seen = threading.Condition()

    def read_log() -> None:  # drains stderr so the sidecar never blocks on a full pipe
        assert proc.stderr is not None
        for line in proc.stderr:
            with seen:
                lines.append(line)
                seen.notify_all()

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 20
        while "tls.key" not in pod.visible() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pod.visible()["tls.key"].startswith(b"-----BEGIN")
        pod.seal("tls-key", b"ROTATED KEY", {"service": "billing"})
        while pod.visible().get("tls.key") != b"ROTATED KEY" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pod.visible()["tls.key"] == b"ROTATED KEY"
        # A corrupt update keeps the last good set published. Two refreshes reporting it
        # after the write: the second one certainly started after the write.
        with seen:
            mark = len(lines)
        (pod.sealed / "tls-key.enc").write_bytes(b"garbage")
        with seen:
            assert seen.wait_for(
                lambda: sum(b"refresh.kept_previous" in x for x in lines[mark:]) >= 2,
                timeout=20,
            ), b"".join(lines[mark:]).decode(errors="replace")
        assert pod.visible()["tls.key"] == b"ROTATED KEY"
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        reader.join(timeout=10)
        assert proc.stderr is not None
        proc.stderr.close()


def test_exec_refuses_keys_that_are_not_variable_names(pod: Pod) -> None:
    pod.seal("api", b'{"api-token": "x"}', {"service": "billing"})
    cfg = pod.config(
        secrets=[{"name": "api", "source": {"file": str(pod.sealed / "api.enc")}, "form": "json"}]
    )
    assert cli.run(["exec", "--config", pod.write_config(cfg), "--", "true"]) == 3
