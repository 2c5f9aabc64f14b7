"""Encrypted documents as `envelope init` / `envelope exec` sources."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from envelope import ClusterSecret, Envelope, LocalKms, cli
from envelope import documents as docs

SRC = Path(__file__).resolve().parents[2] / "src"
SECRETS = "# billing\ndb:\n  password: hunter2\n  port: 5432\napi_token: tok_live_abc\n"


@pytest.fixture
def pod(tmp_path: Path) -> dict[str, Any]:
    keyring = tmp_path / "keyring.json"
    part = tmp_path / "part"
    part.write_bytes(os.urandom(32))
    env = Envelope(LocalKms.create(keyring), ClusterSecret.from_file(part))
    sealed = tmp_path / "secrets.enc.yaml"
    sealed.write_text(docs.encrypt(SECRETS, env, name=str(sealed), context={"service": "b"}))
    out = tmp_path / "out"
    out.mkdir()

    def secret(name: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "source": {"file": str(sealed)}, "context": {"service": "b"}, **extra}

    cfg = {
        "version": 1,
        "kms": {"kind": "local", "keyring": str(keyring)},
        "cluster_secret": {"file": str(part)},
        "output": {"directory": str(out), "mode": "0400"},
        "secrets": [
            secret("whole", target="secrets.yaml"),
            secret("password", target="db-password", key=".db.password"),
            secret("api", target="api.json", form="json", keys=["api_token"]),
        ],
        "timeout": 5,
    }
    path = tmp_path / "init.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return {"config": str(path), "out": out, "cfg": cfg, "path": path}


def test_init_publishes_a_document_whole_and_one_key_per_file(pod: dict[str, Any]) -> None:
    assert cli.run(["init", "--config", pod["config"], "--allow-disk"]) == 0
    out: Path = pod["out"]
    assert (out / "secrets.yaml").read_text() == SECRETS
    assert (out / "db-password").read_bytes() == b"hunter2"
    assert json.loads((out / "api.json").read_text()) == {"api_token": "tok_live_abc"}


def test_init_refuses_a_tampered_document(pod: dict[str, Any]) -> None:
    sealed = Path(pod["cfg"]["secrets"][0]["source"]["file"])
    sealed.write_text(sealed.read_text().replace("  port:", "  porte:"))
    assert cli.run(["init", "--config", pod["config"], "--allow-disk"]) == 1
    assert not (pod["out"] / "secrets.yaml").exists()


def test_exec_exports_document_keys(pod: dict[str, Any]) -> None:
    cfg = dict(pod["cfg"])
    cfg["secrets"] = [cfg["secrets"][2] | {"keys": None, "form": "dotenv"}]
    pod["path"].write_text(yaml.safe_dump(cfg))
    script = "import os; print(os.environ['api_token'], os.environ['db'])"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "envelope",
            "exec",
            "--config",
            pod["config"],
            "--",
            sys.executable,
            "-c",
            script,
        ],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    token, db = result.stdout.split(" ", 1)
    assert token == "tok_live_abc" and json.loads(db) == {"password": "hunter2", "port": 5432}
