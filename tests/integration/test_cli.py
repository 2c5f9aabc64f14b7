"""The envelope CLI, in-process through cli.run and once as a real subprocess."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from envelope import cli
from envelope._exitcodes import ExitCode
from envelope.kms._local import LocalKms


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ENVELOPE_KEYRING", str(tmp_path / "keyring.json"))
    monkeypatch.delenv("ENVELOPE_CLUSTER_SECRET_FILE", raising=False)
    monkeypatch.delenv("ENVELOPE_KEYRING_PASSPHRASE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli.run(["keyring", "init"]) == 0
    assert cli.run(["cluster-secret", "new", "--out", "cluster.key"]) == 0
    Path("secret.txt").write_bytes(b"API_TOKEN=tok_live_123456\n")
    return tmp_path


CTX_FLAG = ("-c", "service=billing")


def encrypt(*extra: str) -> int:
    return cli.run(
        [
            "encrypt",
            "secret.txt",
            "-o",
            "secret.env",
            "--cluster-secret",
            "cluster.key",
            "-c",
            "service=billing",
            *extra,
        ]
    )


def test_round_trip(home: Path) -> None:
    assert encrypt() == 0
    assert (
        cli.run(
            [
                "decrypt",
                "secret.env",
                "-o",
                "out.txt",
                "--cluster-secret",
                "cluster.key",
                "-c",
                "service=billing",
            ]
        )
        == 0
    )
    assert Path("out.txt").read_bytes() == Path("secret.txt").read_bytes()
    assert stat.S_IMODE(Path("out.txt").stat().st_mode) == 0o600
    assert (
        cli.run(
            [
                "decrypt",
                "secret.env",
                "-o",
                "ro.txt",
                "--mode",
                "400",
                "--cluster-secret",
                "cluster.key",
                "-c",
                "service=billing",
            ]
        )
        == 0
    )
    assert stat.S_IMODE(Path("ro.txt").stat().st_mode) == 0o400


def test_cluster_secret_file(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    part = Path("cluster.key")
    assert len(part.read_bytes()) == 32
    assert stat.S_IMODE(part.stat().st_mode) == 0o600
    capsys.readouterr()
    assert cli.run(["cluster-secret", "id", "cluster.key"]) == 0
    assert capsys.readouterr().out.startswith("cs-")
    assert cli.run(["cluster-secret", "new", "--out", "cluster.key"]) == ExitCode.CONFIG


def test_tampered_input_writes_nothing(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path("secret.txt").write_bytes(os.urandom(200_000))
    assert encrypt() == 0
    blob = bytearray(Path("secret.env").read_bytes())
    blob[-5] ^= 1
    Path("bad.env").write_bytes(bytes(blob))
    before = sorted(os.listdir())
    code = cli.run(
        ["decrypt", "bad.env", "-o", "out.txt", "--cluster-secret", "cluster.key", *CTX_FLAG]
    )
    assert code == ExitCode.DECRYPT
    assert sorted(os.listdir()) == before
    assert "decryption failed" in capsys.readouterr().err
    # stdout: nothing written either
    assert (
        cli.run(["decrypt", "bad.env", "--cluster-secret", "cluster.key", *CTX_FLAG])
        == ExitCode.DECRYPT
    )
    assert capsys.readouterr().out == ""


def test_decrypt_to_stdout_streams_and_reports_a_late_failure(
    home: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    data = os.urandom(9 * 1024 * 1024 + 7)  # more than two 4 MiB pieces
    Path("secret.txt").write_bytes(data)
    assert encrypt() == 0
    capsysbinary.readouterr()
    assert (
        cli.run(["decrypt", "secret.env", "--cluster-secret", "cluster.key", "--any-context"]) == 0
    )
    assert capsysbinary.readouterr().out == data
    blob = bytearray(Path("secret.env").read_bytes())
    blob[-5] ^= 1  # the final chunk: earlier pieces authenticate and are released
    Path("bad.env").write_bytes(bytes(blob))
    code = cli.run(["decrypt", "bad.env", "--cluster-secret", "cluster.key", "--any-context"])
    assert code == ExitCode.DECRYPT
    captured = capsysbinary.readouterr()
    assert 0 < len(captured.out) < len(data) and data.startswith(captured.out)
    assert b"discard that output" in captured.err and b"Traceback" not in captured.err


def test_wrong_context(home: Path) -> None:
    assert encrypt() == 0
    code = cli.run(
        [
            "decrypt",
            "secret.env",
            "-o",
            "out.txt",
            "--cluster-secret",
            "cluster.key",
            "-c",
            "service=payroll",
        ]
    )
    assert code == ExitCode.DECRYPT and not Path("out.txt").exists()


def test_missing_keyring_says_what_to_run(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.run(
        [
            "encrypt",
            "secret.txt",
            "-o",
            "x",
            "--keyring",
            "absent.json",
            "--cluster-secret",
            "cluster.key",
        ]
    )
    assert code == ExitCode.CONFIG
    assert "envelope keyring init" in capsys.readouterr().err


def test_missing_cluster_secret_says_what_to_run(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.run(["encrypt", "secret.txt", "-o", "x"]) == ExitCode.CONFIG
    assert "envelope cluster-secret new" in capsys.readouterr().err
    assert cli.run(["encrypt", "secret.txt", "-o", "x", "--no-split"]) == 0
    assert cli.run(["decrypt", "x", "-o", "y"]) == 0


def test_message_needing_a_part_names_it(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert encrypt() == 0
    capsys.readouterr()
    assert cli.run(["cluster-secret", "id", "cluster.key"]) == 0
    part_id = capsys.readouterr().out.strip()
    assert cli.run(["decrypt", "secret.env", "-o", "out.txt", *CTX_FLAG]) == ExitCode.CONFIG
    assert part_id in capsys.readouterr().err


def test_unknown_version_is_named(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert encrypt() == 0
    blob = bytearray(Path("secret.env").read_bytes())
    blob[4] = 9
    Path("v9.env").write_bytes(bytes(blob))
    assert cli.run(["decrypt", "v9.env", "--cluster-secret", "cluster.key"]) == ExitCode.DECRYPT
    assert "version 9" in capsys.readouterr().err


def test_inspect(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert encrypt() == 0
    capsys.readouterr()
    assert cli.run(["inspect", "secret.env", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["context"] == {"service": "billing"}
    assert info["plaintext_bytes"] == len(Path("secret.txt").read_bytes())
    assert info["wrapped_keys"][0]["provider"] == "local"
    assert cli.run(["inspect", "secret.env"]) == 0
    assert "cluster secret: cs-" in capsys.readouterr().out
    assert cli.run(["inspect", "secret.txt"]) == ExitCode.DECRYPT


def test_keyring_rotate_list_and_rewrap(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert encrypt() == 0
    assert cli.run(["keyring", "rotate"]) == 0
    capsys.readouterr()
    assert cli.run(["keyring", "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["current"] == 2 and len(listing["versions"]) == 2
    kms = LocalKms.open()
    for key in kms._keys.values():
        assert bytes(key).hex() not in json.dumps(listing)
    body_before = Path("secret.env").read_bytes()[-60:]
    assert cli.run(["rewrap", "secret.env"]) == 0
    assert Path("secret.env").read_bytes()[-60:] == body_before
    assert (
        cli.run(
            ["decrypt", "secret.env", "-o", "out.txt", "--cluster-secret", "cluster.key", *CTX_FLAG]
        )
        == 0
    )
    assert cli.run(["rewrap", "secret.txt"]) == ExitCode.DECRYPT


def test_previous_cluster_secret(home: Path) -> None:
    assert encrypt() == 0
    assert cli.run(["cluster-secret", "new", "--out", "new.key"]) == 0
    assert (
        cli.run(
            [
                "decrypt",
                "secret.env",
                "-o",
                "out.txt",
                "--cluster-secret",
                "new.key",
                "--previous-cluster-secret",
                "cluster.key",
                *CTX_FLAG,
            ]
        )
        == 0
    )


def test_passphrase_protected_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("pass").write_text("s3cret passphrase\n")
    assert cli.run(["keyring", "init", "--keyring", "k.json", "--passphrase-file", "pass"]) == 0
    assert cli.run(["keyring", "list", "--keyring", "k.json"]) == ExitCode.CONFIG
    monkeypatch.setenv("ENVELOPE_KEYRING_PASSPHRASE", "s3cret passphrase")
    assert cli.run(["keyring", "list", "--keyring", "k.json"]) == 0


@pytest.mark.parametrize("pair", ["novalue", "=x"])
def test_bad_context_pair_is_usage_error(home: Path, pair: str) -> None:
    assert encrypt("-c", pair) == ExitCode.USAGE


@pytest.mark.parametrize(
    "verb",
    [
        ["quickstart"],
        ["encrypt"],
        ["decrypt"],
        ["inspect"],
        ["rewrap"],
        ["keyring", "init"],
        ["keyring", "rotate"],
        ["keyring", "list"],
        ["cluster-secret", "new"],
        ["cluster-secret", "id"],
    ],
)
def test_help_has_an_example_and_exit_codes(
    verb: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.run([*verb, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "example:" in out and "exit codes:" in out


def test_real_executable_quickstart_and_pipes(tmp_path: Path) -> None:
    envelope = [sys.executable, "-m", "envelope"]
    done = subprocess.run(
        [*envelope, "quickstart"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "OK: the secret was encrypted and decrypted" in done.stdout
    environ = {**os.environ, "ENVELOPE_KEYRING": str(tmp_path / "k.json")}
    subprocess.run([*envelope, "keyring", "init"], check=True, env=environ, capture_output=True)
    sealed = subprocess.run(
        [*envelope, "encrypt", "--no-split", "-c", "a=b"],
        input=b"piped secret",
        env=environ,
        capture_output=True,
        check=True,
    ).stdout
    opened = subprocess.run(
        [*envelope, "decrypt", "-c", "a=b"],
        input=sealed,
        env=environ,
        capture_output=True,
        check=True,
    ).stdout
    assert opened == b"piped secret"
