"""The keyring file's document: encodings, the scrypt KDF, the authenticated public
fields and reading the key list (see :mod:`envelope.kms._local`)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from envelope import _native
from envelope.errors import ConfigError, DecryptionError

__all__ = ["load_entries"]

_FILE_LABEL = b"envelope.dev/v1 keyring file\x00"  # files before the generation counter
_DOC_LABEL = b"envelope.dev/v1 keyring document\x00"
# scrypt cost: 128 MiB (docs/benchmarks.md gives the open time); stored in the file, so
# files written with the older N = 2^15 still open, and are re-saved with this one.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**17, 8, 1
#: What a file may ask for (bounded: 1 GiB of scrypt memory at most).
MAX_SCRYPT_N, MAX_SCRYPT_R, MAX_SCRYPT_P = 2**20, 8, 4
#: ... and N*r*p at most 2^23 (N=2^20, r=8, p=1: 1 GiB, a few seconds): a hostile file
#: must neither hang nor exhaust the process.
MAX_SCRYPT_WORK = 2**23


def _b64(b: bytes | bytearray) -> str:
    return base64.b64encode(bytes(b)).decode()


def _unb64(s: object, what: str, path: Path) -> bytes:
    if not isinstance(s, str):
        raise ConfigError(f"keyring {path} is corrupt: {what} is not a string")
    try:
        return base64.b64decode(s, validate=True)
    except ValueError:
        raise ConfigError(f"keyring {path} is corrupt: {what} is not base64") from None


def _scrypt_key(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    # Only a passphrase-protected keyring needs cryptography (a whole-file command with
    # a plain keyring does not import it: start-up time).
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt  # noqa: PLC0415

    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())


def _document_aad(doc: dict[str, Any]) -> bytes:
    """The AAD of a protected keyring: every public field, canonically encoded."""
    public = {k: doc.get(k) for k in ("format", "id", "generation", "versions", "protection")}
    return _DOC_LABEL + json.dumps(public, sort_keys=True, separators=(",", ":")).encode()


def load_entries(
    doc: dict[str, Any], keyring_id: str, path: Path, passphrase: str | None
) -> list[Any]:
    """The key entries of a keyring document (decrypted if it is protected).

    Raises:
        ConfigError: a passphrase for an unprotected file, a protected file without
            one, a wrong passphrase or a tampered document, out-of-bounds KDF
            parameters, or a corrupt file (each says which).
    """
    protection = doc.get("protection")
    if protection is None and passphrase is not None:
        raise ConfigError(
            f"keyring {path} is not passphrase-protected, but a passphrase was given: "
            "refusing it (whoever can write the file could have planted a key); "
            "re-create it with `envelope keyring init --passphrase-file`"
        )
    if protection is None:
        entries = doc.get("keys")
        if not isinstance(entries, list):
            raise ConfigError(f"keyring {path} is corrupt: no keys")
        return entries
    if not isinstance(protection, dict) or protection.get("kdf") != "scrypt":
        raise ConfigError(f"keyring {path} uses an unknown protection scheme")
    if passphrase is None:
        raise ConfigError(
            f"keyring {path} is passphrase-protected: set ENVELOPE_KEYRING_PASSPHRASE "
            "or pass --passphrase-file"
        )
    salt = _unb64(protection.get("salt"), "salt", path)
    nonce = _unb64(protection.get("nonce"), "nonce", path)
    sealed = _unb64(doc.get("keys_encrypted"), "keys_encrypted", path)
    try:
        n, r, p = int(protection["n"]), int(protection["r"]), int(protection["p"])
        in_bounds = n <= MAX_SCRYPT_N and r <= MAX_SCRYPT_R and p <= MAX_SCRYPT_P
        if not in_bounds or min(n - 1, r, p) < 1 or n * r * p > MAX_SCRYPT_WORK:
            raise ValueError("scrypt parameters out of bounds")
        key = _scrypt_key(passphrase, salt, n, r, p)
        aad = _document_aad(doc) if "generation" in doc else _FILE_LABEL + keyring_id.encode()
        plain = _native.aes256gcm_open(key, nonce, aad, sealed)
    except DecryptionError:
        raise ConfigError(
            f"wrong passphrase for keyring {path}, or the file was tampered with"
        ) from None
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"keyring {path} is corrupt: bad protection parameters") from None
    entries = json.loads(plain)
    if not isinstance(entries, list):
        raise ConfigError(f"keyring {path} is corrupt: bad key list")
    return entries
