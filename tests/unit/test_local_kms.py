from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from envelope.errors import ConfigError, DecryptionError, KeyUnavailableError
from envelope.kms._local import LocalKms, default_keyring_path
from tests.support.kms_contract import CTX, KmsContract


class TestLocalKmsContract(KmsContract):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> LocalKms:
        return LocalKms.create(tmp_path / "keyring.json")

    @pytest.fixture
    def rotate(self, backend: LocalKms) -> Callable[[], None]:
        def rotate() -> None:
            backend.rotate()

        return rotate


class TestEphemeralContract(KmsContract):
    @pytest.fixture
    def backend(self) -> LocalKms:
        return LocalKms.ephemeral()

    @pytest.fixture
    def rotate(self, backend: LocalKms) -> Callable[[], None]:
        def rotate() -> None:
            backend.rotate()

        return rotate


def test_keyring_file_round_trip_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "keyring.json"
    kms = LocalKms.create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    dk = kms.generate_data_key(CTX)
    again = LocalKms.open(path)
    assert again.key_id == kms.key_id
    assert again.unwrap(dk.wrapped, CTX) == dk.plaintext


def test_rotation_is_persisted_and_old_versions_unwrap(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    kms = LocalKms.create(path)
    old = kms.generate_data_key(CTX)
    assert kms.rotate() == 2
    reopened = LocalKms.open(path)
    assert [v.version for v in reopened.versions()] == [1, 2]
    assert reopened.current_version == 2
    assert reopened.unwrap(old.wrapped, CTX) == old.plaintext
    new = reopened.generate_data_key(CTX)
    assert new.wrapped.blob[1:5] == (2).to_bytes(4, "big")


def test_version_not_held_names_it(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    kms = LocalKms.create(path)
    stale = LocalKms.open(path)  # a copy that has not seen the rotation
    kms.rotate()
    dk = kms.generate_data_key(CTX)
    with pytest.raises(KeyUnavailableError, match="version 2"):
        stale.unwrap(dk.wrapped, CTX)


def test_other_keyring_is_refused(tmp_path: Path) -> None:
    a, b = LocalKms.ephemeral(), LocalKms.ephemeral()
    dk = a.generate_data_key(CTX)
    with pytest.raises(KeyUnavailableError, match=a.key_id):
        b.unwrap(dk.wrapped, CTX)


def test_missing_keyring_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="envelope keyring init"):
        LocalKms.open(tmp_path / "nope.json")


def test_create_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    first = LocalKms.create(path)
    with pytest.raises(ConfigError, match="already exists"):
        LocalKms.create(path)
    second = LocalKms.create(path, overwrite=True)
    assert second.key_id != first.key_id


def test_group_readable_keyring_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    LocalKms.create(path)
    os.chmod(path, 0o640)
    with pytest.raises(ConfigError, match="chmod 600"):
        LocalKms.open(path)


def test_passphrase_protection(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    kms = LocalKms.create(path, passphrase="correct horse")
    dk = kms.generate_data_key(CTX)
    doc = json.loads(path.read_text())
    assert "keys" not in doc and doc["protection"]["kdf"] == "scrypt"
    assert "material" not in path.read_text()
    with pytest.raises(ConfigError, match="passphrase-protected"):
        LocalKms.open(path)
    with pytest.raises(ConfigError, match="wrong passphrase"):
        LocalKms.open(path, passphrase="wrong")
    opened = LocalKms.open(path, passphrase="correct horse")
    assert opened.unwrap(dk.wrapped, CTX) == dk.plaintext
    opened.rotate()  # re-saved under the same passphrase
    assert LocalKms.open(path, passphrase="correct horse").current_version == 2


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"{}",
        b'{"format": "envelope-keyring/v1", "id": "x", "protection": null}',
        b'{"format": "envelope-keyring/v1", "id": "x", "protection": null, "keys": '
        b'[{"version": 1, "material": "AAAA"}]}',
    ],
)
def test_corrupt_keyring_is_a_config_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "k.json"
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError, match=str(path)):
        LocalKms.open(path)


def test_malformed_blob_is_a_decryption_error() -> None:
    kms = LocalKms.ephemeral()
    dk = kms.generate_data_key(CTX)
    from envelope.kms._types import WrappedKey

    for blob in (b"", dk.wrapped.blob[:-1], b"\x02" + dk.wrapped.blob[1:]):
        with pytest.raises(DecryptionError):
            kms.unwrap(WrappedKey("local", kms.key_id, blob), CTX)


def test_default_path_honours_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ENVELOPE_KEYRING", str(tmp_path / "x.json"))
    assert default_keyring_path() == tmp_path / "x.json"
    monkeypatch.delenv("ENVELOPE_KEYRING")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_keyring_path() == tmp_path / "envelope" / "keyring.json"
