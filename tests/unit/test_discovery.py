"""Discovery decrypt in the library: pattern semantics, which slot wins, the settings
views (flag, environment, config file; flag wins over the environment) and the
discovering backend (no network: local keyrings and backends built in memory)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from envelope import Envelope
from envelope._format.message import KeySlot
from envelope._keys.discovery import DiscoveredKeys
from envelope._keys.source import KeySource
from envelope.cli import build_parser
from envelope.cli._common import settings as cli_settings
from envelope.errors import ConfigError, KeyUnavailableError
from envelope.k8s._config import parse_config
from envelope.kms import KmsBackend, LocalKms
from envelope.kms._aws import AwsKms
from envelope.settings import KmsSettings, Settings, build_kms
from envelope.settings._discovery import (
    aws_region_for,
    discovered_kms,
    explicit_region,
    vault_name,
)
from envelope.settings._env import split_patterns

ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
FAR = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
CLEAN = {"AWS_DEFAULT_REGION": "eu-west-1"}


# -- pattern semantics -------------------------------------------------------------------


def test_split_patterns_takes_commas_and_whitespace() -> None:
    assert split_patterns(" a,b  c,\n d ,, ") == ("a", "b", "c", "d")
    assert split_patterns("") == ()


@pytest.mark.parametrize(
    ("pattern", "region"),
    [
        ("arn:aws:kms:us-east-1:*", "us-east-1"),
        ("arn:aws:kms:us-east-1:111122223333:key/abc", "us-east-1"),
        ("arn:aws:kms:us-*:111122223333:key/*", None),
        ("arn:aws:kms:*", None),
        ("arn:aws:kms:[a-z]*:*", None),
        ("arn:*:kms:us-east-1:*", None),
        ("alias/billing-*", None),
        ("*", None),
    ],
)
def test_explicit_region(pattern: str, region: str | None) -> None:
    assert explicit_region(pattern) == region


def test_another_region_only_when_the_pattern_names_it() -> None:
    assert aws_region_for(ARN, "*", "eu-west-1") == "eu-west-1"
    assert aws_region_for(FAR, "*", "eu-west-1") is None
    assert aws_region_for(FAR, "arn:aws:kms:*", "eu-west-1") is None
    assert aws_region_for(FAR, "arn:aws:kms:us-east-1:*", "eu-west-1") == "us-east-1"
    assert aws_region_for(FAR, "arn:aws:kms:us-west-2:*", "eu-west-1") is None
    assert aws_region_for("alias/x", "*", "eu-west-1") is None  # not a key ARN


def test_vault_slots_only_under_the_configured_mount() -> None:
    assert vault_name("transit/billing", "transit") == "billing"
    assert vault_name("team/transit/billing", "team/transit") == "billing"
    assert vault_name("other/billing", "transit") is None
    assert vault_name("transit/a/b", "transit") is None
    assert vault_name("transit/", "transit") is None


def aws(*patterns: str, region: str = "eu-west-1") -> DiscoveredKeys:
    s = KmsSettings(kind="aws", region=region, allowed_keys=patterns)
    found = build_kms(s)
    assert isinstance(found, DiscoveredKeys)
    return found


def test_aws_patterns_match_arns_and_key_ids() -> None:
    assert aws("arn:aws:kms:eu-west-1:111122223333:key/*").rank(ARN) == 0
    assert aws("arn:aws:kms:eu-west-1:9*", "1234abcd-*").rank(ARN) == 1
    assert aws("alias/none-*").rank(FAR) is None  # an alias: the configured region only
    assert aws("1234abcd-*").rank(FAR) is None  # a bare key id: the configured region only
    assert aws("*").rank(FAR) is None
    assert aws("arn:aws:kms:us-east-1:*").rank(FAR) == 0
    assert aws("arn:aws:kms:eu-west-1:999999999999:*").rank(ARN) is None
    assert aws("*").rank("not-an-arn") is None
    empty = Settings.resolve({"kms": {"kind": "aws"}}, environ=CLEAN, decrypt_only=True)
    assert build_kms(empty.kms).rank(ARN) is None  # type: ignore[attr-defined]


def test_aws_patterns_are_case_sensitive() -> None:
    assert aws(ARN.upper()).rank(ARN) is None


def test_a_key_in_another_region_keeps_the_configured_endpoint() -> None:
    s = KmsSettings(
        kind="aws",
        region="eu-west-1",
        endpoint="http://127.0.0.1:1",
        allowed_keys=("arn:aws:kms:us-east-1:*",),
    )
    found = build_kms(s)
    assert isinstance(found, DiscoveredKeys)
    assert found.rank(FAR) == 0
    backend = found.backend_for(FAR)
    assert isinstance(backend, AwsKms)
    assert backend._client.meta.region_name == "us-east-1"
    assert backend._client.meta.endpoint_url == "http://127.0.0.1:1"


def test_vault_patterns_match_the_name_or_the_full_id() -> None:
    def rank(key_id: str, *patterns: str, mount: str = "transit") -> int | None:
        s = KmsSettings.model_validate(
            {"kind": "vault", "allowed_keys": patterns, "vault": {"mount": mount}}
        )
        return discovered_kms(s, build_kms).rank(key_id)

    assert rank("transit/billing-a", "billing-*") == 0
    assert rank("transit/billing-a", "payroll", "transit/billing-*") == 1
    assert rank("other/billing-a", "*") is None
    assert rank("other/billing-a", "other/*") is None  # the mount is configured, never picked
    assert rank("other/billing-a", "billing-*", mount="other") == 0


def test_vault_backend_gets_the_configured_address_and_mount() -> None:
    built: list[KmsSettings] = []

    def build(s: KmsSettings) -> KmsBackend:
        built.append(s)
        return LocalKms.ephemeral()

    s = KmsSettings.model_validate(
        {
            "kind": "vault",
            "endpoint": "https://vault.example:8200",
            "allowed_keys": ["billing-*"],
            "vault": {"mount": "team/transit", "namespace": "ns1"},
        }
    )
    found = discovered_kms(s, build)
    found.backend_for("team/transit/billing-a")
    (one,) = built
    assert (one.key, one.endpoint, one.vault.mount, one.vault.namespace) == (
        "billing-a",
        "https://vault.example:8200",
        "team/transit",
        "ns1",
    )
    assert one.allowed_keys == ()
    with pytest.raises(KeyUnavailableError, match="payroll"):
        found.backend_for("team/transit/payroll")
    assert len(built) == 1


# -- which slot wins ----------------------------------------------------------------------


def ranked(order: dict[str, int]) -> DiscoveredKeys:
    return DiscoveredKeys(
        "p",
        rank=order.get,
        build=lambda _k: LocalKms.ephemeral(),
        allowed=["x"],
        hint="pass --allow-key",
    )


def test_slots_are_tried_in_allow_list_order_then_message_order() -> None:
    slots = [KeySlot("p", k, b"w") for k in ("a", "b", "c", "d")]
    slots.append(KeySlot("other", "b", b"w"))
    source = KeySource([ranked({"b": 1, "c": 0, "d": 1})])
    assert [s.key_id for _, s in source.matching(slots)] == ["c", "b", "d"]
    assert all(s.provider == "p" for _, s in source.matching(slots))


def test_no_allowed_slot_names_every_key_and_the_fix() -> None:
    source = KeySource([ranked({})])
    with pytest.raises(KeyUnavailableError) as info:
        source.matching([KeySlot("p", "a", b"w"), KeySlot("q", "b", b"w")])
    text = str(info.value)
    assert "p key 'a'" in text and "q key 'b'" in text
    assert "allowed keys (x)" in text and "--allow-key" in text


def test_a_key_not_allowed_is_never_built_or_unwrapped() -> None:
    from envelope.kms._types import WrappedKey

    calls: list[str] = []
    found = DiscoveredKeys(
        "p",
        rank={"a": 0}.get,
        build=lambda k: calls.append(k) or LocalKms.ephemeral(),  # type: ignore[func-returns-value]
        allowed=["a"],
        hint="h",
    )
    with pytest.raises(KeyUnavailableError):
        found.unwrap(WrappedKey("p", "b", b"w"), ())
    with pytest.raises(KeyUnavailableError):
        found.unwrap(WrappedKey("q", "a", b"w"), ())
    assert calls == []


def test_discovery_alone_refuses_to_encrypt() -> None:
    with pytest.raises(ConfigError, match="--kms-key"):
        Envelope(aws("*")).encrypt(b"x")
    with pytest.raises(ConfigError, match="no key to check"):
        aws("*").health()


# -- the local keyring --------------------------------------------------------------------


@pytest.fixture
def keyring(tmp_path: Path) -> LocalKms:
    return LocalKms.create(tmp_path / "keyring.json")


def local(keyring: LocalKms, *patterns: str) -> KmsBackend:
    return build_kms(KmsSettings(kind="local", keyring=str(keyring.path), allowed_keys=patterns))


def test_local_allow_list_restricts_the_keyring(keyring: LocalKms) -> None:
    message = Envelope(keyring).encrypt(b"secret")
    assert Envelope(local(keyring, keyring.key_id)).decrypt(message) == b"secret"
    assert Envelope(local(keyring, "kr-*")).decrypt(message) == b"secret"
    with pytest.raises(KeyUnavailableError, match=keyring.key_id):
        Envelope(local(keyring, "nope-*")).decrypt(message)
    other = LocalKms.ephemeral()
    with pytest.raises(KeyUnavailableError, match=other.key_id):
        Envelope(local(keyring, "*")).decrypt(Envelope(other).encrypt(b"x"))


def test_local_with_an_allow_list_still_encrypts_with_the_keyring(keyring: LocalKms) -> None:
    backend = local(keyring, "*")
    assert backend.key_id == keyring.key_id
    assert Envelope(keyring).decrypt(Envelope(backend).encrypt(b"x")) == b"x"


def test_local_without_an_allow_list_is_the_plain_keyring(keyring: LocalKms) -> None:
    assert isinstance(local(keyring), LocalKms)


def test_a_configured_key_ignores_the_allow_list() -> None:
    s = KmsSettings(kind="aws", key=ARN, region="eu-west-1", allowed_keys=("nothing",))
    assert isinstance(build_kms(s), AwsKms)


# -- settings: model, flag, environment, config file --------------------------------------


def test_the_model_accepts_no_key_with_an_allow_list() -> None:
    assert KmsSettings(kind="aws", allowed_keys=("*",)).key is None
    with pytest.raises(ValueError, match="needs 'key'"):
        KmsSettings(kind="vault")
    with pytest.raises(ValueError, match="empty pattern"):
        KmsSettings(kind="aws", allowed_keys=("a", " "))
    assert KmsSettings.model_validate({"allowed_keys": "a, b"}).allowed_keys == ("a", "b")


def test_decrypt_only_settings_need_no_key() -> None:
    explicit = {"kms": {"kind": "aws"}}
    with pytest.raises(ConfigError, match=r"kms\.key"):
        Settings.resolve(explicit, environ={})
    s = Settings.resolve(explicit, environ={}, decrypt_only=True)
    assert (s.kms.key, s.kms.allowed_keys) == (None, ())


def test_the_environment_gives_the_allow_list() -> None:
    s = Settings.resolve(
        {"kms": {"kind": "aws"}}, environ={"ENVELOPE_ALLOWED_KEYS": "alias/a-*, alias/b-*"}
    )
    assert s.kms.allowed_keys == ("alias/a-*", "alias/b-*")


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["decrypt", *argv])


def test_allow_key_flags_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVELOPE_ALLOWED_KEYS", "from-env-1,from-env-2")
    args = parse("--kms", "aws", "--allow-key", "a*", "--allow-key", "b*", "x")
    assert cli_settings(args).kms.allowed_keys == ("a*", "b*")
    assert cli_settings(parse("--kms", "aws", "x")).kms.allowed_keys == (
        "from-env-1",
        "from-env-2",
    )
    monkeypatch.delenv("ENVELOPE_ALLOWED_KEYS")
    assert cli_settings(parse("--kms", "aws", "x")).kms.key is None  # decrypt: key optional


def test_commands_that_encrypt_have_no_allow_key_flag() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["encrypt", "--allow-key", "x", "f"])
    for command in (["decrypt", "f"], ["rewrap", "f"], ["inspect", "f"]):
        args = build_parser().parse_args([*command, "--allow-key", "x"])
        assert args.allow_key == ["x"]


def test_the_init_config_accepts_allowed_keys() -> None:
    cfg = parse_config(
        "kms:\n"
        "  kind: aws\n"
        "  region: eu-west-1\n"
        "  allowed_keys: ['arn:aws:kms:eu-west-1:111122223333:key/*', 'alias/billing-*']\n"
        "secrets:\n"
        "  - {name: db, source: {file: /s}, context: {}}\n"
    )
    assert cfg.kms.key is None
    assert cfg.kms.allowed_keys[1] == "alias/billing-*"
    assert isinstance(build_kms(cfg.kms), DiscoveredKeys)
    with pytest.raises(ConfigError, match=r"kms\.key"):
        parse_config("kms: {kind: aws}\nsecrets: [{name: db, source: {file: /s}, context: {}}]\n")


def test_a_rules_file_entry_accepts_allowed_keys(keyring: LocalKms) -> None:
    from envelope.settings import kms_from_mapping

    backend = kms_from_mapping(
        {"keyring": str(keyring.path), "allowed_keys": [keyring.key_id]}, "rules"
    )
    assert isinstance(backend, DiscoveredKeys)
    message = Envelope(keyring).encrypt(b"y")
    assert Envelope(backend).decrypt(message) == b"y"


def test_configure_each_reaches_backends_built_before_and_after() -> None:
    found = DiscoveredKeys(
        "p",
        rank={"a": 0, "b": 0}.get,
        build=lambda _k: LocalKms.ephemeral(),
        allowed=["*"],
        hint="h",
    )
    early = found.backend_for("a")
    seen: list[KmsBackend] = []
    found.configure_each(seen.append)
    late = found.backend_for("b")
    assert seen == [early, late]
    assert found.backend_for("b") is late and len(seen) == 2  # built once


def test_init_bounds_each_discovered_vault_key_by_the_run_deadline(tmp_path: Path) -> None:
    from envelope.k8s._runner import build_envelope
    from envelope.kms._vault import VaultTransit

    token = tmp_path / "token"
    token.write_text("t")
    cfg = parse_config(
        "kms:\n"
        "  kind: vault\n"
        "  endpoint: http://127.0.0.1:1\n"
        "  allowed_keys: billing-*\n"
        f"  vault: {{auth: {{method: token, token_file: {token}}}}}\n"
        "secrets:\n"
        "  - {name: db, source: {file: /s}, context: {}}\n"
    )
    env = build_envelope(cfg, deadline=5.0, give_up_at=1234.5)
    discovered = env.kms
    assert isinstance(discovered, DiscoveredKeys)
    backend = discovered.backend_for("transit/billing-db")
    assert isinstance(backend, VaultTransit)
    assert backend._give_up_at == 1234.5


def test_a_discovering_envelope_pickles_as_its_settings(
    keyring: LocalKms, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pickle

    message = Envelope(keyring).encrypt(b"z")
    monkeypatch.chdir(tmp_path)
    relative = KmsSettings(kind="local", keyring="keyring.json", allowed_keys=("kr-*",))
    env = Envelope(build_kms(relative))
    monkeypatch.chdir("/")
    again = pickle.loads(pickle.dumps(env))
    assert isinstance(again.kms, DiscoveredKeys)
    assert again.kms.allowed == ("kr-*",)
    assert again.decrypt(message) == b"z"
