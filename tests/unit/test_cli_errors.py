"""Issue 12 item 4: clear one-line errors and distinct exit codes, never a traceback."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from envelope import cli
from envelope._exitcodes import ExitCode
from envelope.cli import _message

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "envelope"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "VAULT_", "BAO_", "ENVELOPE_"))
    }
    env.update(
        HOME=str(tmp_path),
        AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        PYTHONPATH=str(ROOT / "src"),
    )
    env.update(extra)
    return env


def _cli(tmp_path: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "p.txt").write_text("hello")
    (tmp_path / "cs.key").write_bytes(bytes(range(32)))
    return subprocess.run(
        [sys.executable, "-m", "envelope", *argv],
        cwd=tmp_path,
        env=_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _one_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_aws_without_a_region_names_the_flag_and_variables(tmp_path: Path) -> None:
    run = _cli(
        tmp_path,
        *("encrypt", "p.txt", "-o", "p.env", "--cluster-secret", "cs.key"),
        *("--kms", "aws", "--kms-key", "alias/app"),
    )
    line = _one_line(run.stderr)
    assert run.returncode == ExitCode.CONFIG, run.stderr
    assert "region" in line
    for hint in ("--kms-region", "$AWS_REGION", "$ENVELOPE_KMS_REGION"):
        assert hint in line


def test_vault_without_an_address_names_the_flag_and_variables(tmp_path: Path) -> None:
    run = _cli(
        tmp_path,
        *("encrypt", "p.txt", "-o", "p.env", "--cluster-secret", "cs.key"),
        *("--kms", "vault", "--kms-key", "app"),
    )
    line = _one_line(run.stderr)
    assert run.returncode == ExitCode.CONFIG, run.stderr
    for hint in ("--kms-endpoint", "$VAULT_ADDR", "$BAO_ADDR"):
        assert hint in line


def test_vault_without_a_token_names_the_flags_and_variables(tmp_path: Path) -> None:
    run = _cli(
        tmp_path,
        *("encrypt", "p.txt", "-o", "p.env", "--cluster-secret", "cs.key"),
        *("--kms", "vault", "--kms-key", "app", "--kms-endpoint", "http://127.0.0.1:9"),
    )
    line = _one_line(run.stderr)
    assert run.returncode == ExitCode.CONFIG, run.stderr
    for hint in ("$VAULT_TOKEN", "--vault-token-file", "$ENVELOPE_VAULT_TOKEN_FILE"):
        assert hint in line


def test_missing_aws_extra_names_the_pip_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for module in [m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "boto3", None)
    monkeypatch.setitem(sys.modules, "botocore", None)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.txt").write_text("hello")
    (tmp_path / "cs.key").write_bytes(bytes(range(32)))
    argv = ["encrypt", "p.txt", "-o", "p.env", "--cluster-secret", "cs.key"]
    assert cli.run([*argv, "--kms", "aws", "--kms-key", "k"]) == ExitCode.CONFIG
    assert "pip install 'envelope-kms[aws]'" in _one_line(capsys.readouterr().err)


def _sdk_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        found += [n for n in names if n.split(".")[0] in ("boto3", "botocore", "hvac")]
    return found


def test_every_sdk_import_goes_through_sdk_module() -> None:
    offenders = {
        str(p.relative_to(SRC)): _sdk_imports(p)
        for p in SRC.rglob("*.py")
        if p.name != "_sdk.py" and _sdk_imports(p)
    }
    assert offenders == {}


def _boom(_args: object) -> int:
    secret = bytes(range(32)).hex()
    raise RuntimeError(f"unexpected state holding {secret}")


def test_an_unexpected_exception_is_one_line_without_its_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(_message, "cmd_encrypt", _boom)
    monkeypatch.chdir(tmp_path)
    code = cli.run(["encrypt", "p.txt", "-o", "p.env", "--cluster-secret", "cs.key"])
    assert code == ExitCode.INTERNAL == 70
    captured = capsys.readouterr()
    line = _one_line(captured.err)
    assert "RuntimeError" in line
    assert "internal error" in line
    assert bytes(range(32)).hex() not in captured.err + captured.out


def _interrupt(_args: object) -> int:
    raise KeyboardInterrupt


def test_ctrl_c_exits_130_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(_message, "cmd_encrypt", _interrupt)
    monkeypatch.chdir(tmp_path)
    code = cli.run(["encrypt", "p.txt", "-o", "p.env", "--cluster-secret", "cs.key"])
    assert code == ExitCode.INTERRUPTED == 130
    assert capsys.readouterr().err.strip() in ("", "envelope: interrupted")
