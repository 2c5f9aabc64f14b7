"""Keyring downgrade and rollback (issue 18, item 4): with a passphrase, the whole
keyring document is authenticated, an unprotected file is refused, and a file older
than one already seen is detected by its generation counter."""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from envelope import ConfigError, Envelope, LocalKms

PASS = "correct horse"


def rewrite(path: Path, doc: dict[str, object]) -> None:
    path.write_text(json.dumps(doc))
    os.chmod(path, 0o600)


def test_an_unprotected_file_is_refused_when_a_passphrase_is_given(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    kms = LocalKms.create(path, passphrase=PASS)
    planted = base64.b64encode(b"\x00" * 32).decode()  # a KEK the attacker knows
    rewrite(
        path,
        {
            "format": "envelope-keyring/v1",
            "id": kms.key_id,
            "protection": None,
            "keys": [{"version": 1, "created": "2026-01-01T00:00:00+00:00", "material": planted}],
        },
    )
    with pytest.raises(ConfigError, match="not passphrase-protected"):
        LocalKms.open(path, passphrase=PASS)


def test_the_public_document_is_authenticated(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    LocalKms.create(path, passphrase=PASS).rotate()
    doc = json.loads(path.read_text())
    assert [v["version"] for v in doc["versions"]] == [1, 2]
    for change in ("versions", "generation", "id"):
        edited = json.loads(json.dumps(doc))
        if change == "versions":
            edited["versions"] = edited["versions"][:1]
        elif change == "generation":
            edited["generation"] += 5
        else:
            edited["id"] = "kr-0000000000000000"
        rewrite(path, edited)
        with pytest.raises(ConfigError, match=r"tampered|wrong passphrase"):
            LocalKms.open(path, passphrase=PASS)


def test_rollback_to_an_older_file_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    kms = LocalKms.create(path, passphrase=PASS)
    old = path.read_bytes()
    kms.rotate()
    seen = LocalKms.open(path, passphrase=PASS).generation
    assert seen == kms.generation > 1
    path.write_bytes(old)  # whoever can write the file puts back the older one
    with pytest.raises(ConfigError, match="older"):
        LocalKms.open(path, passphrase=PASS, min_generation=seen)
    assert LocalKms.open(path, passphrase=PASS).generation < seen  # without a floor it opens


def test_new_files_use_scrypt_n_2_17(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    LocalKms.create(path, passphrase=PASS)
    protection = json.loads(path.read_text())["protection"]
    assert protection["n"] >= 2**17 and protection["r"] == 8


def test_files_written_by_older_versions_still_open(tmp_path: Path) -> None:
    """A keyring as 0.x wrote it: scrypt N = 2^15, only the id in the AAD."""
    path = tmp_path / "old.json"
    keyring_id = "kr-" + secrets.token_hex(8)
    kek = secrets.token_bytes(32)
    entries = [
        {
            "version": 1,
            "created": "2025-01-01T00:00:00+00:00",
            "material": base64.b64encode(kek).decode(),
        }
    ]
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    key = Scrypt(salt=salt, length=32, n=2**15, r=8, p=1).derive(PASS.encode())
    sealed = AESGCM(key).encrypt(
        nonce,
        json.dumps(entries).encode(),
        b"envelope.dev/v1 keyring file\x00" + keyring_id.encode(),
    )
    rewrite(
        path,
        {
            "format": "envelope-keyring/v1",
            "id": keyring_id,
            "protection": {
                "kdf": "scrypt",
                "n": 2**15,
                "r": 8,
                "p": 1,
                "salt": base64.b64encode(salt).decode(),
                "nonce": base64.b64encode(nonce).decode(),
            },
            "keys_encrypted": base64.b64encode(sealed).decode(),
        },
    )
    kms = LocalKms.open(path, passphrase=PASS)
    assert kms.key_id == keyring_id and kms.generation == 0
    assert Envelope(kms).decrypt(Envelope(kms).encrypt(b"x")) == b"x"
    kms.rotate()  # re-saved in the current format
    doc = json.loads(path.read_text())
    assert doc["protection"]["n"] >= 2**17 and doc["generation"] >= 1
    assert LocalKms.open(path, passphrase=PASS).current_version == 2
