"""The BAO_*/VAULT_* environment read as the bao CLI reads it (pure: no server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from envelope.errors import ConfigError
from envelope.kms._vault_auth import TokenAuth
from envelope.kms._vault_env import (
    bao_variable,
    parse_bool,
    parse_duration,
    token_from_environment,
)
from envelope.settings import Settings
from envelope.settings._env import vault_address

VAULT = {"kms": {"kind": "vault", "key": "k"}}


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"BAO_ADDR": "https://b", "VAULT_ADDR": "https://v"}, ("BAO_ADDR", "https://b")),
        ({"VAULT_ADDR": "https://v"}, ("VAULT_ADDR", "https://v")),
        ({"BAO_ADDR": "https://b"}, ("BAO_ADDR", "https://b")),
        # bao: a BAO_ variable that is set, even empty, hides the VAULT_ one.
        ({"BAO_ADDR": "", "VAULT_ADDR": "https://v"}, None),
        ({"VAULT_ADDR": ""}, None),
        ({}, None),
    ],
)
def test_bao_variable_precedence(environ: dict[str, str], expected: object) -> None:
    assert bao_variable(environ, "ADDR") == expected


@pytest.mark.parametrize("word", ["1", "t", "T", "TRUE", "true", "True"])
def test_go_true_words(word: str) -> None:
    assert parse_bool(word) is True


@pytest.mark.parametrize("word", ["0", "f", "F", "FALSE", "false", "False"])
def test_go_false_words(word: str) -> None:
    assert parse_bool(word) is False


@pytest.mark.parametrize("word", ["yes", "no", "on", "tRuE", "2", " true", ""])
def test_words_go_refuses(word: str) -> None:
    with pytest.raises(ValueError, match="not a boolean"):
        parse_bool(word)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 30.0), ("0", 0.0), ("1m30s", 90.0), ("500ms", 0.5), ("1.5h", 5400.0), ("2d", 172800.0)],
)
def test_durations_as_bao_reads_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "1.5", "10x", "1m30", "s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def _file(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_token_precedence(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".vault-token").write_text("  from-home\n")
    bao_path = _file(tmp_path / "bao-path", "from-bao-path\n")
    vault_path = _file(tmp_path / "vault-path", "from-vault-path")
    full = {
        "BAO_TOKEN": "from-bao",
        "VAULT_TOKEN": "from-vault",
        "BAO_TOKEN_PATH": bao_path,
        "VAULT_TOKEN_PATH": vault_path,
    }
    order = ["from-bao", "from-vault", "from-bao-path", "from-vault-path", "from-home"]
    environ = dict(full)
    for name, expected in zip([*full, None], order, strict=True):
        assert token_from_environment(environ, home) == expected
        if name:
            del environ[name]
    # A token path naming a missing file gives no token (no fallback to ~/.vault-token).
    assert token_from_environment({"BAO_TOKEN_PATH": str(tmp_path / "nope")}, home) is None
    # An empty BAO_TOKEN hides VAULT_TOKEN, then the file decides.
    assert token_from_environment({"BAO_TOKEN": "", "VAULT_TOKEN": "v"}, home) == "from-home"
    assert token_from_environment({}, tmp_path / "empty-home") is None


def test_token_auth_reads_bao_token_first(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("VAULT_TOKEN", "vault-token")
    monkeypatch.setenv("BAO_TOKEN", "bao-token")
    assert TokenAuth().login(None).token == "bao-token"
    monkeypatch.delenv("BAO_TOKEN")
    assert TokenAuth().login(None).token == "vault-token"
    monkeypatch.delenv("VAULT_TOKEN")
    monkeypatch.setenv("BAO_TOKEN_PATH", _file(tmp_path / "t", "from-file\n"))
    assert TokenAuth().login(None).token == "from-file"
    monkeypatch.setenv("BAO_TOKEN_PATH", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=r"\$BAO_TOKEN_PATH"):
        TokenAuth().login(None)


@pytest.mark.parametrize(
    ("field", "setting"),
    [
        ("ca_bundle", "CACERT"),
        ("ca_path", "CAPATH"),
        ("client_cert", "CLIENT_CERT"),
        ("client_key", "CLIENT_KEY"),
        ("namespace", "NAMESPACE"),
        ("tls_server_name", "TLS_SERVER_NAME"),
    ],
)
def test_settings_read_each_pair_as_bao(field: str, setting: str) -> None:
    bao, vault = f"BAO_{setting}", f"VAULT_{setting}"
    other = {"client_cert": "CLIENT_KEY", "client_key": "CLIENT_CERT"}.get(field)
    base = {f"VAULT_{other}": "/x"} if other else {}

    def value(environ: dict[str, str]) -> object:
        return getattr(Settings.resolve(VAULT, {**base, **environ}).kms.vault, field)

    assert value({bao: "/b", vault: "/v"}) == "/b"
    assert value({vault: "/v"}) == "/v"
    if other is None:
        assert value({bao: "", vault: "/v"}) is None  # a set BAO_ hides VAULT_
    explicit = {"kms": {**VAULT["kms"], "vault": {field: "/flag"}}}
    got = Settings.resolve(explicit, {**base, bao: "/b", vault: "/v"}).kms.vault
    assert getattr(got, field) == "/flag"


def test_skip_verify_and_timeout_from_the_environment() -> None:
    s = Settings.resolve(VAULT, {"VAULT_SKIP_VERIFY": "T", "BAO_CLIENT_TIMEOUT": "1m"})
    assert s.kms.vault.skip_verify is True and s.kms.vault.timeout == 60.0
    s = Settings.resolve(VAULT, {"BAO_SKIP_VERIFY": "0", "VAULT_SKIP_VERIFY": "true"})
    assert s.kms.vault.skip_verify is False
    s = Settings.resolve(VAULT, {"VAULT_CLIENT_TIMEOUT": "45"})
    assert s.kms.vault.timeout == 45.0
    s = Settings.resolve(VAULT, {"BAO_CLIENT_TIMEOUT": "0s"})  # bao: zero keeps the default
    assert s.kms.vault.timeout == 10.0
    assert Settings.resolve(VAULT, {}).kms.vault.skip_verify is False


def test_bad_skip_verify_names_the_flag_and_variables() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.resolve(VAULT, {"BAO_SKIP_VERIFY": "yes"})
    message = str(info.value)
    for hint in ("kms.vault.skip_verify", "--vault-skip-verify", "$BAO_SKIP_VERIFY", "'yes'"):
        assert hint in message
    with pytest.raises(ConfigError, match=r"--vault-timeout.*not a duration"):
        Settings.resolve(VAULT, {"BAO_CLIENT_TIMEOUT": "soon"})


def test_vault_address_as_bao() -> None:
    assert vault_address({"BAO_ADDR": "https://b", "VAULT_ADDR": "https://v"}) == "https://b"
    assert vault_address({"BAO_ADDR": "", "VAULT_ADDR": "https://v"}) is None
    assert vault_address({"ENVELOPE_KMS_ENDPOINT": "https://e", "BAO_ADDR": "x"}) == "https://e"
    s = Settings.resolve(VAULT, {"BAO_ADDR": "https://b", "VAULT_ADDR": "https://v"})
    assert s.kms.endpoint == "https://b"


def test_cli_flags_win_over_bao_variables() -> None:
    import argparse

    from envelope.cli._common import _explicit, add_kms_flags

    parser = argparse.ArgumentParser()
    add_kms_flags(parser)
    environ = {
        "BAO_CAPATH": "/env-cas",
        "BAO_TLS_SERVER_NAME": "env.test",
        "BAO_CLIENT_TIMEOUT": "5",
        "BAO_SKIP_VERIFY": "false",
    }
    flags = [
        "--kms=vault",
        "--kms-key=k",
        "--vault-ca-path=/flag-cas",
        "--vault-skip-verify",
        "--vault-tls-server-name=flag.test",
        "--vault-timeout=1m",
    ]
    got = Settings.resolve(_explicit(parser.parse_args(flags)), environ).kms.vault
    assert (got.ca_path, got.skip_verify, got.tls_server_name, got.timeout) == (
        "/flag-cas",
        True,
        "flag.test",
        60.0,
    )
    got = Settings.resolve(_explicit(parser.parse_args(flags[:2])), environ).kms.vault
    assert (got.ca_path, got.skip_verify, got.tls_server_name, got.timeout) == (
        "/env-cas",
        False,
        "env.test",
        5.0,
    )
    help_text = parser.format_help()
    for name in ("$BAO_CACERT", "$BAO_CAPATH", "$BAO_SKIP_VERIFY", "$BAO_NAMESPACE", "$BAO_TOKEN"):
        assert name in help_text
