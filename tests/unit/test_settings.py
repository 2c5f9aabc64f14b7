"""The settings model: environment layers, explicit-wins, every validation message, builders."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import envelope.settings as settings_module
from envelope import ClusterSecret
from envelope.cli import build_parser
from envelope.cli._common import settings as cli_settings
from envelope.errors import ConfigError
from envelope.k8s._config import parse_config
from envelope.keystore import FileKeyStore, S3KeyStore
from envelope.kms import LocalKms
from envelope.settings import (
    ENV_TABLE,
    SERVICE_ACCOUNT_TOKEN,
    ClusterSecretSettings,
    KeyStoreSettings,
    KmsSettings,
    Settings,
    ValidationError,
    VaultSettings,
    build_keystore,
    build_kms,
    keyring_passphrase,
    load_cluster_secret,
)

PART = bytes(range(32))


def problem(explicit: dict[str, Any], environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        Settings.resolve(explicit, environ or {})
    return str(info.value)


# -- defaults and the environment --------------------------------------------------------


def test_defaults_without_environment() -> None:
    s = Settings.from_env({})
    assert s.kms.kind == "local" and s.kms.key is None
    assert s.kms.vault.mount == "transit" and s.kms.vault.auth.method == "token"
    assert s.kms.vault.auth.jwt_file == SERVICE_ACCOUNT_TOKEN and s.kms.vault.deadline == 30.0
    assert s.cluster_secret is None and s.keystore is None


def test_every_envelope_variable_reaches_its_field() -> None:
    environ = {
        "ENVELOPE_KMS": "vault",
        "ENVELOPE_KMS_KEY": "billing",
        "ENVELOPE_KMS_REGION": "eu-west-1",
        "ENVELOPE_KMS_ENDPOINT": "https://vault:8200",
        "ENVELOPE_KEYRING": "/k.json",
        "ENVELOPE_KEYRING_PASSPHRASE_FILE": "/pass",
        "ENVELOPE_VAULT_MOUNT": "transit2",
        "ENVELOPE_VAULT_AUTH": "approle",
        "ENVELOPE_VAULT_ROLE": "r",
        "ENVELOPE_VAULT_JWT_FILE": "/jwt",
        "ENVELOPE_VAULT_AUTH_MOUNT": "ar",
        "ENVELOPE_VAULT_TOKEN_FILE": "/token",
        "ENVELOPE_VAULT_ROLE_ID": "rid",
        "ENVELOPE_VAULT_SECRET_ID_FILE": "/sid",
        "VAULT_CACERT": "/ca.pem",
        "VAULT_CLIENT_CERT": "/c.pem",
        "VAULT_CLIENT_KEY": "/c.key",
        "VAULT_NAMESPACE": "team",
        "ENVELOPE_CLUSTER_SECRET_FILE": "/part",
        "ENVELOPE_KEYSTORE": "s3://bucket/keys",
        "ENVELOPE_KEYSTORE_ENDPOINT": "http://s3",
    }
    s = Settings.from_env(environ)
    k, v, a = s.kms, s.kms.vault, s.kms.vault.auth
    assert (k.kind, k.key, k.region, k.endpoint) == (
        "vault",
        "billing",
        "eu-west-1",
        environ["ENVELOPE_KMS_ENDPOINT"],
    )
    assert (k.keyring, k.passphrase_file) == ("/k.json", "/pass")
    assert (v.mount, v.ca_bundle, v.client_cert, v.client_key, v.namespace) == (
        "transit2",
        "/ca.pem",
        "/c.pem",
        "/c.key",
        "team",
    )
    assert (a.method, a.role, a.jwt_file, a.mount, a.token_file) == (
        "approle",
        "r",
        "/jwt",
        "ar",
        "/token",
    )
    assert (a.role_id, a.secret_id_file) == ("rid", "/sid")
    assert s.cluster_secret == ClusterSecretSettings(file="/part")
    assert s.keystore == KeyStoreSettings(
        uri="s3://bucket/keys", endpoint="http://s3", region="eu-west-1"
    )


def test_the_docstring_table_lists_every_variable() -> None:
    doc = settings_module.__doc__ or ""
    for path, names, flag in ENV_TABLE:
        assert path in doc and flag in doc
        for name in names:
            assert name in doc, name
    for extra in (
        "BAO_ADDR",
        "VAULT_ADDR",
        "ENVELOPE_CLUSTER_SECRET ",
        "ENVELOPE_KEYRING_PASSPHRASE ",
    ):
        assert extra in doc


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"VAULT_ADDR": "https://v", "BAO_ADDR": "https://b"}, "https://b"),
        ({"VAULT_ADDR": "https://v"}, "https://v"),
        ({"BAO_ADDR": "https://b", "ENVELOPE_KMS_ENDPOINT": "https://e"}, "https://e"),
    ],
)
def test_vault_address_bao_wins_and_envelope_wins_over_both(
    environ: dict[str, str], expected: str
) -> None:
    s = Settings.from_env({"ENVELOPE_KMS": "vault", "ENVELOPE_KMS_KEY": "k", **environ})
    assert s.kms.endpoint == expected


def test_vault_address_is_not_an_aws_endpoint() -> None:
    s = Settings.resolve({"kms": {"kind": "aws", "key": "k"}}, {"VAULT_ADDR": "https://v"})
    assert s.kms.endpoint is None
    s = Settings.resolve({"kms": {"kind": "vault", "key": "k"}}, {"VAULT_ADDR": "https://v"})
    assert s.kms.endpoint == "https://v"  # the explicit kind decides, not $ENVELOPE_KMS


def test_bao_variables_win_over_vault_ones() -> None:
    environ = {
        "VAULT_NAMESPACE": "v",
        "BAO_NAMESPACE": "b",
        "VAULT_CACERT": "/v.pem",
        "BAO_CACERT": "/b.pem",
    }
    v = Settings.from_env(environ).kms.vault
    assert (v.namespace, v.ca_bundle) == ("b", "/b.pem")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"AWS_DEFAULT_REGION": "us-east-2"}, "us-east-2"),
        ({"AWS_DEFAULT_REGION": "us-east-2", "AWS_REGION": "eu-north-1"}, "eu-north-1"),
        ({"AWS_REGION": "eu-north-1", "ENVELOPE_KMS_REGION": "eu-west-3"}, "eu-west-3"),
    ],
)
def test_region_precedence(environ: dict[str, str], expected: str) -> None:
    assert Settings.from_env(environ).kms.region == expected


def test_explicit_values_win_over_the_environment() -> None:
    environ = {
        "ENVELOPE_KMS": "vault",
        "ENVELOPE_KMS_KEY": "from-env",
        "ENVELOPE_VAULT_AUTH": "jwt",
        "ENVELOPE_KEYSTORE": "/env/keys",
        "ENVELOPE_CLUSTER_SECRET_FILE": "/env/part",
    }
    explicit = {
        "kms": {
            "kind": "aws",
            "key": "alias/x",
            "region": None,
            "vault": {"auth": {"method": None}},
        },
        "keystore": {"uri": "s3://b/p"},
        "cluster_secret": {"file": "/flag/part"},
    }
    s = Settings.resolve(explicit, environ)
    assert (s.kms.kind, s.kms.key) == ("aws", "alias/x")
    assert s.kms.vault.auth.method == "jwt"  # None means "not given": the environment applies
    assert s.keystore is not None and s.keystore.uri == "s3://b/p"
    assert s.cluster_secret == ClusterSecretSettings(file="/flag/part")


def test_cluster_secret_from_the_environment() -> None:
    by_value = Settings.from_env({"ENVELOPE_CLUSTER_SECRET": PART.hex()})
    assert by_value.cluster_secret == ClusterSecretSettings(env="ENVELOPE_CLUSTER_SECRET")
    both = {"ENVELOPE_CLUSTER_SECRET": PART.hex(), "ENVELOPE_CLUSTER_SECRET_FILE": "/part"}
    assert Settings.from_env(both).cluster_secret == ClusterSecretSettings(file="/part")
    flag = Settings.resolve({"cluster_secret": {"file": "/flag"}}, {"ENVELOPE_CLUSTER_SECRET": "x"})
    assert flag.cluster_secret == ClusterSecretSettings(file="/flag")
    previous_only = {"cluster_secret": {"previous": ["/old"]}}
    assert Settings.resolve(previous_only, {}).cluster_secret is None


def test_keystore_endpoint_without_a_uri_is_no_keystore() -> None:
    assert Settings.from_env({"ENVELOPE_KEYSTORE_ENDPOINT": "http://s3"}).keystore is None


def test_settings_are_frozen() -> None:
    s = Settings.from_env({})
    with pytest.raises(ValidationError):
        s.kms.kind = "aws"  # type: ignore[misc]


# -- every validation error names the field and the fix -----------------------------------


@pytest.mark.parametrize(
    ("explicit", "expected"),
    [
        (
            {"kms": {"kind": "aws"}},
            "kms.key (--kms-key, $ENVELOPE_KMS_KEY): kind 'aws' needs 'key': "
            "the KMS key id, ARN or alias/NAME",
        ),
        (
            {"kms": {"kind": "vault"}},
            "kms.key (--kms-key, $ENVELOPE_KMS_KEY): kind 'vault' "
            "needs 'key': the transit key name",
        ),
        (
            {"kms": {"kind": "vault", "key": "k", "vault": {"auth": {"method": "jwt"}}}},
            "kms.vault.auth.role (--vault-role, $ENVELOPE_VAULT_ROLE): vault.auth.method 'jwt' "
            "needs vault.auth.role",
        ),
        (
            {"kms": {"kind": "vault", "key": "k", "vault": {"auth": {"method": "kubernetes"}}}},
            "vault.auth.method 'kubernetes' needs vault.auth.role: the Vault role bound",
        ),
        (
            {"kms": {"kind": "vault", "key": "k", "vault": {"auth": {"method": "approle"}}}},
            "kms.vault.auth.role_id (--vault-role-id, $ENVELOPE_VAULT_ROLE_ID): "
            "vault.auth.method 'approle' needs vault.auth.role_id and vault.auth.secret_id_file",
        ),
        (
            {
                "kms": {
                    "kind": "vault",
                    "key": "k",
                    "vault": {"auth": {"method": "approle", "role_id": "r"}},
                }
            },
            "kms.vault.auth.secret_id_file (--vault-secret-id-file",
        ),
        (
            {"kms": {"vault": {"client_cert": "/c.pem"}}},
            "kms.vault.client_key (--vault-client-key, $ENVELOPE_VAULT_CLIENT_KEY, "
            "$BAO_CLIENT_KEY, $VAULT_CLIENT_KEY): "
            "mTLS needs both 'client_cert' and 'client_key'",
        ),
        (
            {"kms": {"vault": {"client_key": "/c.key"}}},
            "kms.vault.client_cert (--vault-client-cert",
        ),
        (
            {"kms": {"kind": "gcp"}},
            "kms.kind (--kms, $ENVELOPE_KMS): Input should be 'local', 'aws'",
        ),
        (
            {"kms": {"vault": {"auth": {"method": "ldap"}}}},
            "kms.vault.auth.method (--vault-auth, $ENVELOPE_VAULT_AUTH): Input should be 'token'",
        ),
        ({"kms": {"vault": {"deadline": 0}}}, "kms.vault.deadline: Input should be greater than 0"),
        (
            {"keystore": {"uri": "gs://bucket"}},
            "keystore.uri (--keystore, $ENVELOPE_KEYSTORE): key store 'gs://bucket': "
            "use s3://bucket/prefix, file:///dir or a directory",
        ),
        ({"keystore": {"uri": "s3:///keys"}}, "names no bucket: use s3://bucket/prefix"),
        (
            {"cluster_secret": {"file": "/p", "env": "PART"}},
            "cluster_secret.file (--cluster-secret, $ENVELOPE_CLUSTER_SECRET_FILE): give exactly "
            "one of 'file' (a path) or 'env' (a variable name)",
        ),
    ],
)
def test_each_validation_error(explicit: dict[str, Any], expected: str) -> None:
    message = problem(explicit)
    assert message.startswith("invalid envelope settings (command line and environment):\n")
    assert expected in message


def test_an_invalid_environment_value_names_the_variable() -> None:
    message = problem({}, {"ENVELOPE_KMS": "azure"})
    assert "kms.kind (--kms, $ENVELOPE_KMS)" in message


@pytest.mark.parametrize(
    ("explicit", "expected"),
    [
        ({"kms": {"kidn": "aws"}}, "kms.kidn: unknown field 'kidn'; did you mean 'kind'?"),
        (
            {"kms": {"vault": {"auth": {"rol": "x"}}}},
            "kms.vault.auth.rol: unknown field 'rol'; did you mean 'role'?",
        ),
        ({"keystor": {"uri": "/k"}}, "keystor: unknown field 'keystor'; did you mean 'keystore'?"),
        (
            {"cluster_secret": {"zzz": 1, "file": "/p"}},
            "unknown field 'zzz'; allowed: file, env, previous",
        ),
    ],
)
def test_did_you_mean_for_misspelt_keys(explicit: dict[str, Any], expected: str) -> None:
    assert expected in problem(explicit)


def test_a_yaml_config_reports_through_the_same_formatter() -> None:
    text = (
        "kms: {kind: vault, key: k, vault: {auth: {methd: jwt}}}\n"
        "secrets: [{name: a, source: {inline: eA==}}]\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text, "init.yaml")
    assert "invalid envelope config init.yaml:" in str(info.value)
    assert "kms.vault.auth.methd: unknown field 'methd'; did you mean 'method'?" in str(info.value)


def test_the_yaml_config_embeds_the_settings_model() -> None:
    text = (
        "kms: {kind: vault, key: k, region: eu-west-1, vault: {auth: {role: billing}}}\n"
        "cluster_secret: {file: /part}\nkeystore: s3://b/keys\ns3_endpoint: http://s3\n"
        "secrets: [{name: a, source: {inline: eA==}, context: {}}]\n"
    )
    cfg = parse_config(text)
    assert isinstance(cfg.kms, KmsSettings) and isinstance(cfg.kms.vault, VaultSettings)
    assert cfg.kms.vault.auth.method == "kubernetes"  # the file format's default
    assert cfg.cluster_secret == ClusterSecretSettings(file="/part")
    assert cfg.keystore == KeyStoreSettings(
        uri="s3://b/keys", endpoint="http://s3", region="eu-west-1"
    )


# -- the CLI is a view of the model ---------------------------------------------------------


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["encrypt", *argv])


def test_cli_flags_map_onto_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    for _path, names, _flag in ENV_TABLE:
        for name in names:
            monkeypatch.delenv(name, raising=False)  # the suite's AWS_DEFAULT_REGION, say
    monkeypatch.setenv("ENVELOPE_KMS_KEY", "from-env")
    monkeypatch.setenv("ENVELOPE_VAULT_ROLE", "env-role")
    args = parse(
        "--kms", "vault", "--kms-key", "flag-key", "--kms-endpoint", "https://v",
        "--vault-auth", "jwt", "--vault-jwt-file", "/jwt", "--vault-namespace", "ns",
        "--vault-ca-bundle", "/ca", "--keystore", "/keys", "--cluster-secret", "/part",
        "--previous-cluster-secret", "/old", "--keyring", "/k.json",
    )  # fmt: skip
    s = cli_settings(args)
    assert (s.kms.kind, s.kms.key, s.kms.endpoint) == ("vault", "flag-key", "https://v")
    auth = s.kms.vault.auth
    assert (auth.method, auth.role, auth.jwt_file) == ("jwt", "env-role", "/jwt")
    assert (s.kms.vault.namespace, s.kms.vault.ca_bundle, s.kms.keyring) == ("ns", "/ca", "/k.json")
    assert s.keystore == KeyStoreSettings(uri="/keys")
    assert s.cluster_secret == ClusterSecretSettings(file="/part", previous=("/old",))


def test_cli_reports_invalid_settings_with_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    from envelope import cli
    from envelope._exitcodes import ExitCode

    assert cli.run(["encrypt", "--kms", "aws", "--no-split", "x"]) == ExitCode.CONFIG
    assert "kms.key (--kms-key, $ENVELOPE_KMS_KEY)" in capsys.readouterr().err


# -- builders ---------------------------------------------------------------------------------


def test_build_kms_local_with_a_passphrase_file(tmp_path: Path) -> None:
    created = LocalKms.create(tmp_path / "k.json", passphrase="pw")
    (tmp_path / "pass").write_text("pw\n")
    s = KmsSettings(keyring=str(tmp_path / "k.json"), passphrase_file=str(tmp_path / "pass"))
    kms = build_kms(s)
    assert isinstance(kms, LocalKms) and kms.key_id == created.key_id


def test_passphrase_file_wins_over_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVELOPE_KEYRING_PASSPHRASE", "from-env")
    assert keyring_passphrase(KmsSettings()) == "from-env"
    (tmp_path / "pass").write_text("from-file\n")
    assert keyring_passphrase(KmsSettings(passphrase_file=str(tmp_path / "pass"))) == "from-file"
    with pytest.raises(ConfigError, match=r"cannot read passphrase file .*absent"):
        keyring_passphrase(KmsSettings(passphrase_file=str(tmp_path / "absent")))


def test_build_keystore(tmp_path: Path) -> None:
    assert isinstance(build_keystore(KeyStoreSettings(uri=str(tmp_path))), FileKeyStore)
    assert isinstance(build_keystore(KeyStoreSettings(uri=f"file://{tmp_path}")), FileKeyStore)
    s3 = build_keystore(KeyStoreSettings(uri="s3://bucket/keys", region="eu-west-1"))
    assert isinstance(s3, S3KeyStore)


def test_load_cluster_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = ClusterSecret.generate()
    (tmp_path / "part").write_bytes(PART)
    (tmp_path / "old").write_bytes(bytes(old.current.material))
    from_file = load_cluster_secret(ClusterSecretSettings(file=str(tmp_path / "part")))
    assert from_file.current.id == ClusterSecret.from_bytes(PART).current.id
    monkeypatch.setenv("MY_PART", PART.hex())
    from_env = load_cluster_secret(
        ClusterSecretSettings(env="MY_PART", previous=(str(tmp_path / "old"),))
    )
    assert [p.id for p in from_env.parts()] == [from_file.current.id, old.current.id]
    monkeypatch.delenv("MY_PART")
    with pytest.raises(ConfigError, match="MY_PART"):
        load_cluster_secret(ClusterSecretSettings(env="MY_PART"))


def test_the_cli_parser_does_not_import_pydantic() -> None:
    code = "import sys, envelope.cli; envelope.cli.build_parser(); print('pydantic' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"  # it is imported when a command needs settings
