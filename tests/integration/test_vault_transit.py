"""The Vault/OpenBao Transit backend against a real OpenBao server (no mocks)."""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from envelope import ClusterSecret, DecryptionError, Envelope, KeyUnavailableError, KmsError
from envelope._exitcodes import ExitCode
from envelope._format.context import encode_context
from envelope.kms._types import WrappedKey
from envelope.kms._vault import VaultTransit
from envelope.kms._vault_auth import AppRoleAuth, JwtAuth, TokenAuth
from tests.support.clock import VirtualTime
from tests.support.jwt_minter import AUDIENCE, JwtMinter
from tests.support.kms_contract import CTX, KmsContract
from tests.support.openbao import OpenBao


def new_key(bao: OpenBao, *, derived: bool) -> str:
    name = f"k-{secrets.token_hex(4)}"
    bao.write(f"transit/keys/{name}", derived=derived)
    return name


def policy_for(bao: OpenBao, key: str) -> str:
    name = f"svc-{key}"
    bao.admin.sys.create_or_update_policy(
        name,
        f"""
path "transit/datakey/plaintext/{key}" {{ capabilities = ["update"] }}
path "transit/encrypt/{key}" {{ capabilities = ["update"] }}
path "transit/decrypt/{key}" {{ capabilities = ["update"] }}
path "transit/rewrap/{key}" {{ capabilities = ["update"] }}
path "transit/keys/{key}" {{ capabilities = ["read"] }}
""",
    )
    return name


def wait_until_expired(bao: OpenBao, token: str, limit: float = 30.0) -> None:
    """Returns as soon as the server refuses ``token`` (its TTL ran out)."""
    import hvac

    client = hvac.Client(url=bao.url, token=token)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            client.auth.token.lookup_self()
        except hvac.exceptions.Forbidden:
            return
        time.sleep(0.05)
    raise AssertionError(f"the token did not expire within {limit} s")


def service_token(bao: OpenBao, key: str, ttl: str = "1h") -> str:
    resp = bao.admin.auth.token.create(policies=[policy_for(bao, key)], ttl=ttl)
    return str(resp["auth"]["client_token"])


@pytest.fixture(params=[True, False], ids=["derived", "aad"])
def derived(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


class TestVaultContract(KmsContract):
    @pytest.fixture
    def key(self, openbao: OpenBao, derived: bool) -> str:
        return new_key(openbao, derived=derived)

    @pytest.fixture
    def backend(self, openbao: OpenBao, key: str) -> VaultTransit:
        # A token limited to this key's policy, as a service would have.
        return VaultTransit(key, url=openbao.url, auth=TokenAuth(service_token(openbao, key)))

    @pytest.fixture
    def rotate(self, openbao: OpenBao, key: str) -> Callable[[], None]:
        def rotate() -> None:
            openbao.write(f"transit/keys/{key}/rotate")

        return rotate


def test_what_is_sent_to_transit_binds_the_context(openbao: OpenBao, derived: bool) -> None:
    """Interop: the plain `bao` CLI decrypts our wrapped key only with the context we
    document (as `context` for a derived key, `associated_data` otherwise)."""
    key = new_key(openbao, derived=derived)
    kms = VaultTransit(key, url=openbao.url, auth=TokenAuth(openbao.root_token))
    dk = kms.generate_data_key(CTX)
    field = "context" if derived else "associated_data"
    bound = base64.b64encode(encode_context(CTX)).decode()
    ok = openbao.bao(
        "write",
        "-format=json",
        f"transit/decrypt/{key}",
        f"ciphertext={dk.wrapped.blob.decode()}",
        f"{field}={bound}",
    )
    assert ok.returncode == 0, ok.stderr
    assert base64.b64decode(json.loads(ok.stdout)["data"]["plaintext"]) == bytes(dk.plaintext)
    wrong = base64.b64encode(encode_context((("service", "other"),))).decode()
    bad = openbao.bao(
        "write",
        f"transit/decrypt/{key}",
        f"ciphertext={dk.wrapped.blob.decode()}",
        f"{field}={wrong}",
    )
    assert bad.returncode != 0


def test_batch_unwrap_and_rewrap(openbao: OpenBao, derived: bool) -> None:
    key = new_key(openbao, derived=derived)
    kms = VaultTransit(key, url=openbao.url, auth=TokenAuth(service_token(openbao, key)))
    keys = [kms.generate_data_key(CTX) for _ in range(5)]
    wrapped = [k.wrapped for k in keys]
    tampered = bytearray(wrapped[2].blob)
    tampered[-3] = ord("A") if tampered[-3] != ord("A") else ord("B")
    wrapped[2] = WrappedKey(wrapped[2].provider, wrapped[2].key_id, bytes(tampered))
    results = kms.unwrap_many(wrapped, CTX)
    assert isinstance(results[2], DecryptionError)
    assert [r for i, r in enumerate(results) if i != 2] == [
        k.plaintext for i, k in enumerate(keys) if i != 2
    ]
    openbao.write(f"transit/keys/{key}/rotate")
    rewrapped = kms.rewrap_many([k.wrapped for k in keys], CTX)
    assert all(isinstance(r, WrappedKey) and r.blob.startswith(b"vault:v2:") for r in rewrapped)
    assert [kms.unwrap(r, CTX) for r in rewrapped if isinstance(r, WrappedKey)] == [
        k.plaintext for k in keys
    ]


def test_large_batches_are_split_into_requests(openbao: OpenBao) -> None:
    key = new_key(openbao, derived=True)
    kms = VaultTransit(key, url=openbao.url, auth=TokenAuth(openbao.root_token))
    keys = [kms.generate_data_key(CTX) for _ in range(301)]
    assert kms.unwrap_many([k.wrapped for k in keys], CTX) == [k.plaintext for k in keys]
    assert len(kms.rewrap_many([k.wrapped for k in keys], CTX)) == 301


def test_rotation_and_min_decryption_version(openbao: OpenBao) -> None:
    key = new_key(openbao, derived=True)
    kms = VaultTransit(key, url=openbao.url, auth=TokenAuth(openbao.root_token))
    env = Envelope(kms)
    old = env.encrypt(b"before rotation", {"service": "a"})
    openbao.write(f"transit/keys/{key}/rotate")
    fresh = env.encrypt(b"after rotation")
    from envelope._format.message import parse_header

    assert parse_header(fresh)[0].slots[0].wrapped.startswith(b"vault:v2:")
    moved = env.rewrap(old)
    assert parse_header(moved)[0].slots[0].wrapped.startswith(b"vault:v2:")
    openbao.write(f"transit/keys/{key}/config", min_decryption_version=2)
    with pytest.raises(KeyUnavailableError, match="min_decryption_version"):
        env.decrypt(old, any_context=True)
    assert env.decrypt(moved, any_context=True) == b"before rotation"
    assert env.decrypt(fresh, any_context=True) == b"after rotation"


@pytest.fixture
def minter(jwt_minter: JwtMinter) -> JwtMinter:
    return jwt_minter


def jwt_role(bao: OpenBao, role: str, key: str, subject: str, ttl: str = "10m") -> None:
    bao.write(
        f"auth/jwt/role/{role}",
        role_type="jwt",
        bound_audiences=[AUDIENCE],
        user_claim="sub",
        bound_subject=subject,
        token_policies=[policy_for(bao, key)],
        token_ttl=ttl,
        token_max_ttl=ttl,
    )


def token_file(tmp_path: Path, jwt: str) -> Path:
    path = tmp_path / f"token-{secrets.token_hex(3)}"
    path.write_text(jwt)
    return path


def test_jwt_login_and_per_service_isolation(
    openbao: OpenBao, minter: JwtMinter, tmp_path: Path
) -> None:
    key_a, key_b = new_key(openbao, derived=True), new_key(openbao, derived=True)
    jwt_role(openbao, "service-a", key_a, "system:serviceaccount:shop:service-a")
    jwt_role(openbao, "service-b", key_b, "system:serviceaccount:shop:service-b")
    jwt_a = token_file(tmp_path, minter.service_account_token("shop", "service-a"))
    jwt_b = token_file(tmp_path, minter.service_account_token("shop", "service-b"))

    a_on_a = VaultTransit(key_a, url=openbao.url, auth=JwtAuth("service-a", jwt_file=jwt_a))
    dk = a_on_a.generate_data_key(CTX)
    assert a_on_a.unwrap(dk.wrapped, CTX) == dk.plaintext
    b_on_b = VaultTransit(key_b, url=openbao.url, auth=JwtAuth("service-b", jwt_file=jwt_b))
    b_on_b.generate_data_key(CTX)

    # Service A's identity on service B's key: the real policy engine says no.
    a_on_b = VaultTransit(key_b, url=openbao.url, auth=JwtAuth("service-a", jwt_file=jwt_a))
    with pytest.raises(KmsError) as info:
        a_on_b.generate_data_key(CTX)
    assert f"transit/{key_b}" in str(info.value) and "denied" in str(info.value)
    theirs = b_on_b.generate_data_key(CTX)
    with pytest.raises(KmsError, match="denied"):
        a_on_b.unwrap(theirs.wrapped, CTX)


def test_jwt_login_refused(openbao: OpenBao, minter: JwtMinter, tmp_path: Path) -> None:
    key = new_key(openbao, derived=True)
    jwt_role(openbao, "service-c", key, "system:serviceaccount:shop:service-c")
    impostor = token_file(tmp_path, minter.service_account_token("shop", "service-z"))
    kms = VaultTransit(key, url=openbao.url, auth=JwtAuth("service-c", jwt_file=impostor))
    with pytest.raises(KmsError, match="refused the jwt login"):
        kms.generate_data_key(CTX)
    forged = JwtMinter().service_account_token("shop", "service-c")  # signed by another key
    kms = VaultTransit(
        key, url=openbao.url, auth=JwtAuth("service-c", jwt_file=token_file(tmp_path, forged))
    )
    with pytest.raises(KmsError, match="refused"):
        kms.generate_data_key(CTX)


def test_token_expiry_triggers_a_new_login(
    openbao: OpenBao, minter: JwtMinter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = VirtualTime()
    monkeypatch.setattr("envelope.kms._vault.time", clock)
    key = new_key(openbao, derived=True)
    jwt_role(openbao, "short-lived", key, "system:serviceaccount:shop:short", ttl="3s")
    auth = JwtAuth(
        "short-lived", jwt_file=token_file(tmp_path, minter.service_account_token("shop", "short"))
    )
    kms = VaultTransit(key, url=openbao.url, auth=auth)
    dk = kms.generate_data_key(CTX)
    first = kms._client.token
    clock.sleep(4)  # the token has expired (by the client's clock, which decides)
    assert kms.unwrap(dk.wrapped, CTX) == dk.plaintext
    assert kms._client.token != first


def test_revoked_token_is_relogged_once(
    openbao: OpenBao, minter: JwtMinter, tmp_path: Path
) -> None:
    key = new_key(openbao, derived=True)
    jwt_role(openbao, "revoked", key, "system:serviceaccount:shop:revoked")
    auth = JwtAuth(
        "revoked", jwt_file=token_file(tmp_path, minter.service_account_token("shop", "revoked"))
    )
    kms = VaultTransit(key, url=openbao.url, auth=auth)
    dk = kms.generate_data_key(CTX)
    openbao.admin.auth.token.revoke(kms._client.token)
    assert kms.unwrap(dk.wrapped, CTX) == dk.plaintext


def test_static_token_that_expired_is_a_clear_error(openbao: OpenBao) -> None:
    key = new_key(openbao, derived=True)
    token = service_token(openbao, key, ttl="2s")
    kms = VaultTransit(key, url=openbao.url, auth=TokenAuth(token))
    kms.generate_data_key(CTX)
    wait_until_expired(openbao, token)
    with pytest.raises(KmsError, match="denied"):
        kms.generate_data_key(CTX)


def test_approle_login(openbao: OpenBao) -> None:
    key = new_key(openbao, derived=True)
    openbao.write(
        "auth/approle/role/service-d", token_policies=[policy_for(openbao, key)], token_ttl="10m"
    )
    role_id = openbao.admin.adapter.get("/v1/auth/approle/role/service-d/role-id")["data"][
        "role_id"
    ]
    secret_id = openbao.write("auth/approle/role/service-d/secret-id")["data"]["secret_id"]
    kms = VaultTransit(key, url=openbao.url, auth=AppRoleAuth(role_id, secret_id))
    dk = kms.generate_data_key(CTX)
    assert kms.unwrap(dk.wrapped, CTX) == dk.plaintext
    bad = VaultTransit(key, url=openbao.url, auth=AppRoleAuth(role_id, "not-the-secret"))
    with pytest.raises(KmsError, match="refused the approle login"):
        bad.generate_data_key(CTX)


def test_unreachable_server(tmp_path: Path) -> None:
    from tests.support.openbao import refused_port

    with refused_port() as port:
        kms = VaultTransit("k", url=f"http://127.0.0.1:{port}", auth=TokenAuth("t"), deadline=0.5)
        with pytest.raises(KmsError, match="cannot reach Vault"):
            kms.generate_data_key(CTX)


def test_sealed_and_killed_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server of our own: sealed first, then killed in the middle of a run."""
    bao = OpenBao(tmp_path / "bao").start()
    clock = VirtualTime()  # the client's backoff is counted, not waited
    monkeypatch.setattr("envelope.kms._vault.time", clock)
    try:
        bao.setup_engines()
        key = new_key(bao, derived=True)
        kms = VaultTransit(key, url=bao.url, auth=TokenAuth(bao.root_token), deadline=1.0)
        env = Envelope(kms, ClusterSecret.generate())
        src = tmp_path / "secret.env"
        env.encrypt_file(_write(tmp_path / "secret", b"hunter2"), src)
        bao.admin.sys.seal()
        with pytest.raises(KmsError, match="sealed"):
            env.decrypt(src.read_bytes(), any_context=True)
        assert clock.slept, "a sealed server is retried"
        bao.kill()
        out = tmp_path / "out"
        with pytest.raises(KmsError, match="cannot reach Vault"):
            env.decrypt_file(src, out, any_context=True)
        assert not out.exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    finally:
        bao.stop()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_mutual_tls(openbao_tls: OpenBao) -> None:
    tls = openbao_tls.tls
    assert tls is not None and openbao_tls.tls_url is not None
    key = new_key(openbao_tls, derived=True)
    token = TokenAuth(openbao_tls.root_token)
    kms = VaultTransit(
        key,
        url=openbao_tls.tls_url,
        auth=token,
        ca_bundle=tls.ca,
        client_cert=(str(tls.client_cert), str(tls.client_key)),
    )
    dk = kms.generate_data_key(CTX)
    assert kms.unwrap(dk.wrapped, CTX) == dk.plaintext
    no_client_cert = VaultTransit(
        key, url=openbao_tls.tls_url, auth=token, ca_bundle=tls.ca, deadline=0.5
    )
    with pytest.raises(KmsError, match="cannot reach Vault"):
        no_client_cert.generate_data_key(CTX)
    wrong_ca = VaultTransit(
        key,
        url=openbao_tls.tls_url,
        auth=token,
        ca_bundle=tls.other_ca,
        client_cert=(str(tls.client_cert), str(tls.client_key)),
        deadline=0.5,
    )
    with pytest.raises(KmsError, match="cannot reach Vault"):
        wrong_ca.generate_data_key(CTX)


def test_envelope_end_to_end(openbao: OpenBao, minter: JwtMinter, tmp_path: Path) -> None:
    key = new_key(openbao, derived=True)
    jwt_role(openbao, "service-e", key, "system:serviceaccount:shop:service-e")
    auth = JwtAuth(
        "service-e",
        jwt_file=token_file(tmp_path, minter.service_account_token("shop", "service-e")),
    )
    env = Envelope(VaultTransit(key, url=openbao.url, auth=auth), ClusterSecret.generate())
    blob = env.encrypt(b"API_TOKEN=abc", {"service": "e"})
    assert env.decrypt(blob, {"service": "e"}) == b"API_TOKEN=abc"
    batch = env.encrypt_batch([b"1", b"2", b"3"])
    assert env.decrypt_batch(batch, any_context=True) == [b"1", b"2", b"3"]


def test_missing_hvac_names_the_extra() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['hvac'] = None\n"
        "import envelope\nfrom envelope.kms._vault import VaultTransit\n"
        "try:\n    VaultTransit('k', url='http://127.0.0.1:1')\n"
        "except envelope.ConfigError as e:\n    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ}
    )
    assert "pip install 'envelope-kms[vault]'" in out.stdout


def test_cli_with_vault_and_jwt(
    openbao: OpenBao, minter: JwtMinter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envelope import cli

    key = new_key(openbao, derived=True)
    jwt_role(openbao, "service-cli", key, "system:serviceaccount:shop:service-cli")
    jwt = token_file(tmp_path, minter.service_account_token("shop", "service-cli"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret.txt").write_bytes(b"vault-protected")
    common = [
        "--kms",
        "vault",
        "--kms-key",
        key,
        "--kms-endpoint",
        openbao.url,
        "--vault-auth",
        "jwt",
        "--vault-role",
        "service-cli",
        "--vault-jwt-file",
        str(jwt),
    ]
    assert cli.run(["cluster-secret", "new", "--out", "part"]) == 0
    assert (
        cli.run(
            [
                "encrypt",
                "secret.txt",
                "-o",
                "secret.env",
                "--cluster-secret",
                "part",
                "-c",
                "service=cli",
                *common,
            ]
        )
        == 0
    )
    assert (
        cli.run(
            [
                "decrypt",
                "secret.env",
                "-o",
                "out.txt",
                "--cluster-secret",
                "part",
                "-c",
                "service=cli",
                *common,
            ]
        )
        == 0
    )
    assert (tmp_path / "out.txt").read_bytes() == b"vault-protected"
    assert (
        cli.run(
            [
                "decrypt",
                "secret.env",
                "-o",
                "x",
                "--cluster-secret",
                "part",
                *common[:-4],
                "--vault-auth",
                "jwt",
            ]
        )
        == ExitCode.CONFIG
    )  # no role given
