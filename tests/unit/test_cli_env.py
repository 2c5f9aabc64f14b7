"""``ENVELOPE_*`` variables as flag defaults: flag > variable > default, checked in process."""

from __future__ import annotations

import io
import json
import os
import stat
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from envelope import cli
from envelope._exitcodes import ExitCode
from envelope.cli._envdefaults import resolve


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = cli.run(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("ENVELOPE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ENVELOPE_KEYRING", str(tmp_path / "keyring.json"))
    assert run(["keyring", "init"])[0] == 0
    assert run(["cluster-secret", "new", "--out", "part"])[0] == 0
    (tmp_path / "plain.txt").write_text("hi\n")
    return tmp_path


def _encrypt(*extra: str) -> int:
    return run(["encrypt", "plain.txt", "-o", "m.env", "--cluster-secret", "part", *extra])[0]


def _context() -> dict[str, str]:
    code, out, err = run(["inspect", "m.env", "--json"])
    assert code == 0, err
    return dict(json.loads(out)["context"])


def test_a_variable_gives_a_flags_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVELOPE_MODE", "640")
    assert _encrypt() == 0
    assert stat.S_IMODE(os.stat("m.env").st_mode) == 0o640


def test_the_flag_wins_over_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVELOPE_MODE", "640")
    assert _encrypt("--mode", "600") == 0
    assert stat.S_IMODE(os.stat("m.env").st_mode) == 0o600


def test_the_default_applies_without_either() -> None:
    assert _encrypt() == 0
    assert stat.S_IMODE(os.stat("m.env").st_mode) == 0o600


def test_a_repeatable_flag_takes_a_list_and_the_flag_replaces_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVELOPE_CONTEXT", "service=billing,env=prod")
    assert _encrypt() == 0
    assert _context() == {"service": "billing", "env": "prod"}
    assert _encrypt("-c", "team=ops") == 0
    assert _context() == {"team": "ops"}


@pytest.mark.parametrize(("value", "is_json"), [("1", True), ("yes", True), ("0", False)])
def test_a_switch_takes_a_boolean(
    monkeypatch: pytest.MonkeyPatch, value: str, is_json: bool
) -> None:
    monkeypatch.setenv("ENVELOPE_JSON", value)
    code, out, _ = run(["keyring", "list"])
    assert code == 0
    assert out.lstrip().startswith("{") is is_json


@pytest.mark.parametrize(
    ("name", "value", "argv", "says"),
    [
        ("ENVELOPE_MODE", "999", ["encrypt", "plain.txt", "-o", "x"], "$ENVELOPE_MODE='999'"),
        ("ENVELOPE_JSON", "perhaps", ["keyring", "list"], "$ENVELOPE_JSON='perhaps'"),
        ("ENVELOPE_LOG_FORMAT", "xml", ["init", "--config", "c.yaml"], "invalid choice"),
    ],
)
def test_an_invalid_value_is_a_usage_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, argv: list[str], says: str
) -> None:
    monkeypatch.setenv(name, value)
    code, _, err = run(argv)
    assert code == ExitCode.USAGE
    assert says in err


def test_a_required_flag_can_come_from_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    argv = ["kms-plugin", "--custodians", "missing.json"]
    code, _, err = run(argv)
    assert code == ExitCode.USAGE
    assert "--listen (or set $ENVELOPE_LISTEN)" in err
    monkeypatch.setenv("ENVELOPE_KMS_PLUGIN_LISTEN", "unix:///nonexistent/x.sock")  # older name
    code, _, err = run(argv)
    assert code == ExitCode.CONFIG, err  # past parsing: the custodians file is missing


def test_settings_variables_still_come_from_the_settings_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVELOPE_CLUSTER_SECRET_FILE", "part")
    assert run(["encrypt", "plain.txt", "-o", "m.env"])[0] == 0
    from envelope.settings import Settings

    s = Settings.resolve(
        {},
        environ={
            "ENVELOPE_KMS": "vault",
            "ENVELOPE_KMS_KEY": "k",
            "ENVELOPE_VAULT_NAMESPACE": "team-a",
            "BAO_NAMESPACE": "ignored",
        },
    )
    assert s.kms.vault.namespace == "team-a"


@pytest.mark.parametrize(
    "argv",
    [
        ["-q", "keyring", "list"],
        ["keyring", "-q", "list"],
        ["keyring", "list", "-q"],
        ["keyring", "list", "--quiet"],
    ],
)
def test_quiet_is_accepted_anywhere(argv: list[str]) -> None:
    assert resolve(cli.build_parser().parse_args(argv)).quiet is True


def test_parse_args_alone_gives_complete_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVELOPE_STATE", "journal")
    args = cli.build_parser().parse_args(["rewrap", "m.env"])
    assert args.state == Path("journal") and args.json is False and args.quiet is False


def test_quiet_defaults_off_and_from_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve(cli.build_parser().parse_args(["keyring", "list"])).quiet is False
    monkeypatch.setenv("ENVELOPE_QUIET", "1")
    assert resolve(cli.build_parser().parse_args(["keyring", "list"])).quiet is True
