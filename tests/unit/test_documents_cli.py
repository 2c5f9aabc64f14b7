"""The document commands of the CLI (in-process, local keyring)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envelope import cli

APP = "db:\n  password: hunter2  # yearly\n  port: 5432\nname: billing\n"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("ENVELOPE_KEYRING", "ENVELOPE_CLUSTER_SECRET_FILE", "ENVELOPE_KMS_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli.run(["keyring", "init", "--keyring", "keyring.json"]) == 0
    assert cli.run(["cluster-secret", "new", "--out", "cluster.key"]) == 0
    Path(".envelope.yaml").write_text(
        "creation_rules:\n"
        "  - path_regex: ^conf/\n"
        "    kms: [{kind: local, keyring: keyring.json}]\n"
        "    cluster_secret: cluster.key\n"
        "    context: {service: billing}\n"
        "    unencrypted_regex: ^name$\n"
    )
    Path("conf").mkdir()
    Path("conf/app.yaml").write_text(APP)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.run(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_encrypt_decrypt_extract_set_unset(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "encrypt", "-i", "conf/app.yaml")[0] == 0
    text = Path("conf/app.yaml").read_text()
    assert "hunter2" not in text and "name: billing" in text and "service: billing" in text
    assert run(capsys, "decrypt", "conf/app.yaml") == (0, APP, "")
    assert run(capsys, "decrypt", "conf/app.yaml", "--extract", ".db.password")[1] == "hunter2\n"
    assert run(capsys, "decrypt", "conf/app.yaml", "--extract", ".db")[1] == (
        '{"password": "hunter2", "port": 5432}\n'
    )
    assert run(capsys, "set", "conf/app.yaml", ".db.user", '"admin"')[0] == 0
    assert run(capsys, "set", "conf/app.yaml", ".cache.ttl", "30")[0] == 0
    assert run(capsys, "unset", "conf/app.yaml", ".db.port")[0] == 0
    code, out, _ = run(capsys, "decrypt", "conf/app.yaml", "--output-type", "json")
    assert json.loads(out) == {
        "db": {"password": "hunter2", "user": "admin"},
        "name": "billing",
        "cache": {"ttl": 30},
    }
    code, _, err = run(capsys, "unset", "conf/app.yaml", ".nope")
    assert code == 3 and "no value at .nope" in err
    assert run(capsys, "decrypt", "conf/app.yaml", "-o", "plain.yaml")[0] == 0
    assert Path("plain.yaml").stat().st_mode & 0o777 == 0o600


def test_errors_name_the_file_never_the_value(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("other.yaml").write_text(APP)
    code, _, err = run(capsys, "encrypt", "other.yaml")
    assert code == 3 and ".envelope.yaml" in err and "no creation rule" in err
    Path("conf/bad.yaml").write_text("a: [1,\n")
    code, _, err = run(capsys, "encrypt", "conf/bad.yaml")
    assert code == 1 and "conf/bad.yaml:2:1" in err
    run(capsys, "encrypt", "-i", "conf/app.yaml")
    path = Path("conf/app.yaml")
    path.write_text(path.read_text().replace("name: billing", "name: evil"))
    code, _, err = run(capsys, "decrypt", "conf/app.yaml")
    assert code == 1 and "conf/app.yaml: decryption failed" in err and "hunter2" not in err


def test_other_files_stay_whole_file_messages(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("notes.txt").write_text("KEY=value\n")
    args = ["--keyring", "keyring.json", "--cluster-secret", "cluster.key"]
    assert run(capsys, "encrypt", "notes.txt", "-o", "notes.env", *args)[0] == 0
    assert Path("notes.env").read_bytes().startswith(b"\x89ENV")
    assert run(capsys, "decrypt", "notes.env", *args)[1] == "KEY=value\n"
    code, _, err = run(capsys, "decrypt", "notes.env", "--extract", ".a", *args)
    assert code == 2 and "structured documents only" in err


def test_flags_and_stdin(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("x.json").write_text('{\n  "token": "abc"\n}\n')
    args = ["--keyring", "keyring.json", "--no-split"]
    assert run(capsys, "encrypt", "x.json", "-o", "x.enc.json", *args)[0] == 0
    assert json.loads(Path("x.enc.json").read_text())["token"].startswith("ENV[v1,")
    code, out, _ = run(
        capsys, "decrypt", "x.enc.json", "--output-type", "dotenv", "--keyring", "keyring.json"
    )
    assert (code, out) == (0, "token=abc\n")


def test_updatekeys_adds_a_custodian(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "encrypt", "-i", "conf/app.yaml")
    before = Path("conf/app.yaml").read_text()
    assert cli.run(["keyring", "init", "--keyring", "second.json"]) == 0
    rules = Path(".envelope.yaml")
    rules.write_text(
        rules.read_text().replace(
            "kms: [{kind: local, keyring: keyring.json}]",
            "kms: [{kind: local, keyring: keyring.json}, {kind: local, keyring: second.json}]",
        )
    )
    assert run(capsys, "updatekeys", "conf/app.yaml")[0] == 0
    after = Path("conf/app.yaml").read_text()
    assert after.count("provider: local") == 2
    tokens = [ln for ln in before.splitlines() if "ENV[" in ln]
    assert tokens == [ln for ln in after.splitlines() if "ENV[" in ln]
    rules.write_text(rules.read_text().replace("{kind: local, keyring: keyring.json}, ", ""))
    assert run(capsys, "decrypt", "conf/app.yaml")[1] == APP  # the new custodian alone


def test_exec_file_mount_refuses_disk(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "encrypt", "-i", "conf/app.yaml")
    Path("mnt").mkdir()
    code, _, err = run(capsys, "exec", "--file", "conf/app.yaml", "--mount", "mnt", "--", "true")
    assert code == 3 and "--allow-disk" in err and list(Path("mnt").iterdir()) == []
    code, _, err = run(capsys, "exec", "--", "true")
    assert code == 2 and "--file" in err


def test_exec_file_mount_writes_files_for_the_command_lifetime(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "encrypt", "-i", "conf/app.yaml")
    Path("mnt").mkdir()
    script = "cat mnt/db_password > seen; stat -c %a mnt/db_port >> seen"
    args = ["--file", "conf/app.yaml", "--mount", "mnt", "--allow-disk", "--", "sh", "-c", script]
    assert run(capsys, "exec", *args)[0] == 0
    assert Path("seen").read_text() == "hunter2600\n"
    assert list(Path("mnt").iterdir()) == []


def test_rules_win_over_ambient_environment_and_flags_win_over_rules(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from envelope import LocalKms

    ruled = LocalKms.open(home / "keyring.json").key_id
    assert cli.run(["keyring", "init", "--keyring", "ambient.json"]) == 0
    ambient = LocalKms.open(home / "ambient.json").key_id
    monkeypatch.setenv("ENVELOPE_KEYRING", str(home / "ambient.json"))
    assert run(capsys, "encrypt", "conf/app.yaml", "-o", "conf/a.yaml")[0] == 0
    assert f"key: {ruled}" in Path("conf/a.yaml").read_text()
    args = ["--keyring", "ambient.json", "--no-split"]
    assert run(capsys, "encrypt", "conf/app.yaml", "-o", "conf/b.yaml", *args)[0] == 0
    assert f"key: {ambient}" in Path("conf/b.yaml").read_text()
    Path("elsewhere.yaml").write_text(APP)  # no rule: the environment configures it
    assert run(capsys, "encrypt", "elsewhere.yaml", "-o", "c.yaml", "--no-split")[0] == 0
    assert f"key: {ambient}" in Path("c.yaml").read_text()


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["encrypt"],
        ["decrypt"],
        ["edit"],
        ["set"],
        ["unset"],
        ["updatekeys"],
        ["exec"],
        ["merge-driver"],
    ],
)
def test_help_renders(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.run([*command, "--help"])
    assert info.value.code == 0 and "usage: envelope" in capsys.readouterr().out
