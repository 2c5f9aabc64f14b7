"""BAO_*/VAULT_* parity with the bao CLI, against a real OpenBao whose TLS listener requires
and verifies client certificates: the envelope CLI (a subprocess), the library, and the
real ``bao`` binary as the oracle for precedence."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import hvac
import pytest

from envelope.errors import ConfigError, KmsError
from envelope.kms._vault import VaultTransit
from envelope.kms._vault_auth import TokenAuth
from envelope.kms._vault_env import token_from_environment
from envelope.settings import Settings, build_kms
from envelope.settings._env import vault_address
from tests.integration.test_vault_transit import new_key
from tests.support.kms_contract import CTX
from tests.support.openbao import OpenBao, bao_binary, refused_port
from tests.support.pki import SERVER_NAME, TlsFiles

CLEAN = ("BAO_", "VAULT_", "ENVELOPE_", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def _environ(home: Path, extra: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(CLEAN)}
    return {**base, "HOME": str(home), **extra}


def envelope(
    tmp_path: Path, extra: dict[str, str], *argv: str, data: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    """The real CLI in a subprocess with exactly ``extra`` as its Vault environment."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "envelope", *argv],
        input=data,
        env=_environ(home, extra),
        capture_output=True,
        timeout=120,
        check=False,
    )


def round_trip(tmp_path: Path, key: str, extra: dict[str, str]) -> tuple[bool, str]:
    """encrypt then decrypt through the CLI; (worked, stderr of the first failure)."""
    flags = ["--kms", "vault", "--kms-key", key, "-c", "app=env"]
    sealed = envelope(tmp_path, extra, "encrypt", "--no-split", *flags, data=b"s3cret")
    if sealed.returncode != 0:
        return False, sealed.stderr.decode()
    opened = envelope(tmp_path, extra, "decrypt", *flags, data=sealed.stdout)
    if opened.returncode != 0:
        return False, opened.stderr.decode()
    assert opened.stdout == b"s3cret"
    return True, ""


@pytest.fixture
def tls_files(openbao_tls: OpenBao) -> TlsFiles:
    assert openbao_tls.tls is not None
    return openbao_tls.tls


@pytest.fixture
def tls_key(openbao_tls: OpenBao) -> str:
    return new_key(openbao_tls, derived=True)


def _tls_env(bao: OpenBao, prefix: str = "VAULT_") -> dict[str, str]:
    assert bao.tls_url is not None
    return {f"{prefix}ADDR": bao.tls_url, f"{prefix}TOKEN": bao.root_token}


def _client_cert(tls: TlsFiles, prefix: str = "VAULT_") -> dict[str, str]:
    return {
        f"{prefix}CLIENT_CERT": str(tls.client_cert),
        f"{prefix}CLIENT_KEY": str(tls.client_key),
    }


def test_cacert_alone_is_refused_and_the_client_cert_makes_it_work(
    openbao_tls: OpenBao, tls_files: TlsFiles, tls_key: str, tmp_path: Path
) -> None:
    env = {**_tls_env(openbao_tls), "VAULT_CACERT": str(tls_files.ca)}
    worked, err = round_trip(tmp_path, tls_key, env)
    assert not worked
    assert "TLS failed" in err and "certificate required" in err and "$BAO_CLIENT_CERT" in err
    assert "Traceback" not in err
    worked, err = round_trip(tmp_path, tls_key, {**env, **_client_cert(tls_files)})
    assert worked, err


def test_bao_variables_beat_vault_ones(
    openbao_tls: OpenBao, tls_files: TlsFiles, tls_key: str, tmp_path: Path
) -> None:
    with refused_port() as port:
        wrong = {
            "VAULT_ADDR": f"https://127.0.0.1:{port}",
            "VAULT_TOKEN": "not-a-token",
            "VAULT_CACERT": str(tls_files.other_ca),
            "VAULT_CLIENT_CERT": str(tls_files.server_cert),  # not a client certificate
            "VAULT_CLIENT_KEY": str(tls_files.server_key),
        }
        right = {
            **_tls_env(openbao_tls, "BAO_"),
            "BAO_CACERT": str(tls_files.ca),
            **_client_cert(tls_files, "BAO_"),
        }
        worked, err = round_trip(tmp_path, tls_key, {**wrong, **right})
        assert worked, err

        # Swapped (the right values under VAULT_, the wrong ones under BAO_): refused.
        def swap(env: dict[str, str], to: str) -> dict[str, str]:
            return {to + k.split("_", 1)[1]: v for k, v in env.items()}

        swapped = {**swap(wrong, "BAO_"), **swap(right, "VAULT_")}
        assert not round_trip(tmp_path, tls_key, swapped)[0]


def test_capath_reads_every_file_of_the_directory(
    openbao_tls: OpenBao, tls_files: TlsFiles, tls_key: str, tmp_path: Path
) -> None:
    cas = tmp_path / "cas"
    cas.mkdir()
    shutil.copy(tls_files.other_ca, cas / "unrelated.pem")
    base = {**_tls_env(openbao_tls), **_client_cert(tls_files), "VAULT_CAPATH": str(cas)}
    worked, err = round_trip(tmp_path, tls_key, base)
    assert not worked and "certificate verify failed" in err
    shutil.copy(tls_files.ca, cas / "our-ca.crt")  # not an OpenSSL hash name: bao reads it
    worked, err = round_trip(tmp_path, tls_key, base)
    assert worked, err
    # VAULT_CACERT wins over VAULT_CAPATH, as in bao.
    worked, _ = round_trip(tmp_path, tls_key, {**base, "VAULT_CACERT": str(tls_files.other_ca)})
    assert not worked


def test_skip_verify_with_go_booleans(
    openbao_tls: OpenBao, tls_files: TlsFiles, tls_key: str, tmp_path: Path
) -> None:
    base = {**_tls_env(openbao_tls), **_client_cert(tls_files)}
    worked, err = round_trip(tmp_path, tls_key, base)  # no CA: the server is not trusted
    assert not worked and "certificate verify failed" in err
    worked, err = round_trip(tmp_path, tls_key, {**base, "VAULT_SKIP_VERIFY": "T"})
    assert worked, err
    refused = envelope(
        tmp_path,
        {**base, "VAULT_SKIP_VERIFY": "yes"},
        "encrypt",
        "--no-split",
        "--kms",
        "vault",
        "--kms-key",
        tls_key,
        data=b"x",
    )
    err = refused.stderr.decode()
    assert refused.returncode != 0 and "$VAULT_SKIP_VERIFY" in err and "'yes'" in err
    assert "Traceback" not in err


def test_tls_server_name_is_sent_and_checked(
    openbao_tls: OpenBao, tls_files: TlsFiles, tls_key: str, tmp_path: Path
) -> None:
    base = {**_tls_env(openbao_tls), **_client_cert(tls_files), "VAULT_CACERT": str(tls_files.ca)}
    worked, err = round_trip(tmp_path, tls_key, {**base, "BAO_TLS_SERVER_NAME": SERVER_NAME})
    assert worked, err
    worked, err = round_trip(tmp_path, tls_key, {**base, "BAO_TLS_SERVER_NAME": "other.test"})
    assert not worked and "other.test" in err


def test_namespace_reaches_the_server(
    openbao_tls: OpenBao, tls_files: TlsFiles, tmp_path: Path
) -> None:
    namespace = f"team-{secrets.token_hex(3)}"
    openbao_tls.write(f"sys/namespaces/{namespace}")
    inside = hvac.Client(url=openbao_tls.url, token=openbao_tls.root_token, namespace=namespace)
    inside.sys.enable_secrets_engine("transit", path="transit")
    key = f"ns-{secrets.token_hex(3)}"
    inside.adapter.post(f"/v1/transit/keys/{key}", json={"derived": True})
    base = {
        **_tls_env(openbao_tls),
        **_client_cert(tls_files),
        "VAULT_CACERT": str(tls_files.ca),
    }
    worked, err = round_trip(tmp_path, key, base)
    assert not worked and "does not exist" in err  # the root namespace has no such key
    worked, err = round_trip(tmp_path, key, {**base, "VAULT_NAMESPACE": namespace})
    assert worked, err
    worked, _ = round_trip(
        tmp_path, key, {**base, "VAULT_NAMESPACE": namespace, "BAO_NAMESPACE": ""}
    )
    assert not worked  # a set BAO_NAMESPACE, even empty, hides VAULT_NAMESPACE (as bao)


def test_library_settings_from_the_environment(
    openbao_tls: OpenBao,
    tls_files: TlsFiles,
    tls_key: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    environ = {
        **_tls_env(openbao_tls, "BAO_"),
        **_client_cert(tls_files, "BAO_"),
        "VAULT_CACERT": str(tls_files.ca),
        "BAO_CLIENT_TIMEOUT": "20s",
    }
    settings = Settings.resolve({"kms": {"kind": "vault", "key": tls_key}}, environ)
    assert settings.kms.vault.timeout == 20.0
    monkeypatch.setenv("BAO_TOKEN", openbao_tls.root_token)  # read at login, not kept
    kms = build_kms(settings.kms)
    dk = kms.generate_data_key(CTX)
    assert kms.unwrap(dk.wrapped, CTX) == dk.plaintext
    cas = tmp_path / "cas"
    cas.mkdir()
    shutil.copy(tls_files.other_ca, cas / "a.pem")
    shutil.copy(tls_files.ca, cas / "b.pem")
    direct = VaultTransit(
        tls_key,
        url=openbao_tls.tls_url,
        auth=TokenAuth(openbao_tls.root_token),
        ca_path=cas,
        client_cert=(str(tls_files.client_cert), str(tls_files.client_key)),
        tls_server_name=SERVER_NAME,
    )
    assert direct.unwrap(dk.wrapped, CTX) == dk.plaintext


def test_a_bad_ca_path_is_a_config_error(tls_files: TlsFiles, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"notes\.txt.*no PEM certificate"):
        VaultTransit("k", url="https://127.0.0.1:1", ca_path=tmp_path)


# -- the real bao CLI as the oracle ----------------------------------------------------


def _bao_ok(home: Path, extra: dict[str, str], *argv: str) -> bool:
    done = subprocess.run(
        [bao_binary(), *argv],
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(home), **extra},
        capture_output=True,
        timeout=30,
        check=False,
    )
    return done.returncode == 0


def test_address_and_token_precedence_match_the_bao_cli(openbao: OpenBao, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    good_file = tmp_path / "good-token"
    good_file.write_text(openbao.root_token + "\n")
    with refused_port() as port:
        bad = f"http://127.0.0.1:{port}"
        for env in (
            {"BAO_ADDR": openbao.url, "VAULT_ADDR": bad},
            {"BAO_ADDR": bad, "VAULT_ADDR": openbao.url},
            {"BAO_ADDR": "", "VAULT_ADDR": openbao.url},
            {"VAULT_ADDR": openbao.url},
        ):
            chosen = vault_address(env) == openbao.url
            assert _bao_ok(home, {**env, "BAO_TOKEN": openbao.root_token}, "status") == chosen, env
    good, nope = openbao.root_token, "not-a-token"
    for env in (
        {"BAO_TOKEN": good, "VAULT_TOKEN": nope},
        {"BAO_TOKEN": nope, "VAULT_TOKEN": good},
        {"BAO_TOKEN": "", "VAULT_TOKEN": good},
        {"VAULT_TOKEN": good},
        {"BAO_TOKEN_PATH": str(good_file), "VAULT_TOKEN_PATH": str(tmp_path / "missing")},
        {"BAO_TOKEN_PATH": str(tmp_path / "missing"), "VAULT_TOKEN_PATH": str(good_file)},
        {"VAULT_TOKEN_PATH": str(good_file)},
    ):
        chosen = token_from_environment(env, home) == good
        ok = _bao_ok(home, {"BAO_ADDR": openbao.url, **env}, "token", "lookup")
        assert ok == chosen, env


# -- permission errors -----------------------------------------------------------------


def test_denied_names_the_capability_per_path(openbao: OpenBao) -> None:
    key = new_key(openbao, derived=False)
    weak = str(
        openbao.admin.auth.token.create(policies=["default"], ttl="10m")["auth"]["client_token"]
    )
    kms = VaultTransit(key, url=openbao.url, auth=TokenAuth(weak))
    with pytest.raises(KmsError) as info:
        kms.generate_data_key(CTX)
    msg = str(info.value)
    assert f"refused request: read transit/keys/{key}" in msg
    assert "token's policies (default)" in msg
    assert f"'read' on transit/keys/{key}" in msg
    assert f"'update' on transit/datakey/plaintext/{key}" in msg
    bogus = VaultTransit(key, url=openbao.url, auth=TokenAuth("hvs.not-a-token"))
    with pytest.raises(KmsError) as info:
        bogus.wrap(bytes(32), CTX)
    msg = str(info.value)
    assert "refused the token itself" in msg and "$BAO_TOKEN" in msg
    assert f"'update' on transit/encrypt/{key}" in msg
    # A key it may read but not use: the refused request is the update.
    openbao.admin.sys.create_or_update_policy(
        f"read-{key}", f'path "transit/keys/{key}" {{ capabilities = ["read"] }}'
    )
    reader = str(
        openbao.admin.auth.token.create(policies=[f"read-{key}"], ttl="10m")["auth"]["client_token"]
    )
    with pytest.raises(KmsError) as info:
        VaultTransit(key, url=openbao.url, auth=TokenAuth(reader)).wrap(bytes(32), CTX)
    msg = str(info.value)
    assert f"refused request: update transit/encrypt/{key}" in msg and f"read-{key}" in msg
