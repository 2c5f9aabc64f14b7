"""The local keyring: the embedded default KMS, for development and tests.

A keyring file holds versioned 256-bit KEKs. New wraps use the newest version; older
versions keep unwrapping. The file is JSON, written atomically with mode 0600, and may
be protected by a passphrase (scrypt, from ``cryptography``): then the key list is
sealed with AES-256-GCM whose AAD is the whole public document (format, id, KDF
parameters, version list and a ``generation`` counter raised by every save), so none
of it can be changed, and an older file can be detected (``min_generation``); a
passphrase never opens an unprotected file. Wrapping is AES-256-GCM (the native
kernel's) with a random 96-bit nonce and the encryption context in the AAD.

Wrapped key bytes: ``0x01 | u32 version | nonce (12) | ciphertext (32) | tag (16)``.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from envelope import _native
from envelope._atomic import write_atomic
from envelope._format.context import Context, encode_context
from envelope.errors import ConfigError, DecryptionError, KeyUnavailableError, KmsError
from envelope.kms._keyring_doc import (
    _SCRYPT_N,
    _SCRYPT_P,
    _SCRYPT_R,
    _b64,
    _document_aad,
    _scrypt_key,
    _unb64,
    load_entries,
)
from envelope.kms._types import DATA_KEY_BYTES, DataKey, WrappedKey

__all__ = ["KeyVersion", "LocalKms", "default_keyring_path", "wrapped_version"]

FILE_FORMAT = "envelope-keyring/v1"
_BLOB_FORMAT = 1
_BLOB_LEN = 1 + 4 + 12 + DATA_KEY_BYTES + 16
_WRAP_LABEL = b"envelope.dev/v1 local-kms wrap\x00"
MAX_VERSIONS = 10_000


def default_keyring_path() -> Path:
    """``$ENVELOPE_KEYRING``, else ``$XDG_CONFIG_HOME/envelope/keyring.json``
    (``~/.config/envelope/keyring.json``)."""
    if env := os.environ.get("ENVELOPE_KEYRING"):
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "envelope" / "keyring.json"


def wrapped_version(blob: bytes) -> int | None:
    """The KEK version a local keyring's wrapped key names, None if not such a blob."""
    if len(blob) != _BLOB_LEN or blob[0] != _BLOB_FORMAT:
        return None
    (version,) = struct.unpack_from(">I", blob, 1)
    return int(version)


@dataclass(frozen=True, slots=True)
class KeyVersion:
    """Public facts about one KEK version (never its bytes)."""

    version: int
    created: str


def _key_wrap(version: int, kek: bytearray) -> _native.KeyWrap:
    """Version ``version``'s KEK, expanded natively (no copy of it is made here); its
    blobs start with the format and the version."""
    return _native.KeyWrap(kek, struct.pack(">BI", _BLOB_FORMAT, version))


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


class LocalKms:
    """A keyring file of versioned 256-bit KEKs (see the module docstring).

    Build one with :meth:`create`, :meth:`open` or :meth:`ephemeral` (the constructor
    takes already-loaded key material and raises nothing of its own).
    """

    provider_id = "local"

    def __init__(
        self,
        keyring_id: str,
        keys: dict[int, bytearray],
        created: dict[int, str],
        *,
        path: Path | None,
        passphrase: str | None,
        generation: int = 0,
    ) -> None:
        self._id = keyring_id
        self._generation = generation
        self._keys = keys
        self._created = created
        self._path = path
        self._passphrase = passphrase
        #: Each version's KEK, expanded once by the native kernel (which wipes it when
        #: dropped), with the head of its blobs (format, version).
        self._wraps = {v: _key_wrap(v, k) for v, k in keys.items()}
        self._current = max(keys)  # read per message: kept, not computed
        #: The AAD of each version up to the context (label, keyring id, version).
        self._aad_heads = {v: self._aad_head(v) for v in keys}
        # The settings tree this keyring pickles as (never its keys); None: not picklable.
        self._origin: dict[str, Any] | None = None

    # -- construction -----------------------------------------------------------------

    @classmethod
    def ephemeral(cls) -> LocalKms:
        """A keyring that lives only in memory (tests, one-off tools).

        Raises nothing: the key comes from ``secrets`` and nothing is written.
        """
        return cls(
            f"kr-{secrets.token_hex(8)}",
            {1: bytearray(secrets.token_bytes(32))},
            {1: _now()},
            path=None,
            passphrase=None,
        )

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        passphrase: str | None = None,
        overwrite: bool = False,
    ) -> LocalKms:
        """Creates a keyring with one KEK version and writes it (mode 0600).

        Args:
            path: the file; default :func:`default_keyring_path`.
            passphrase: if given, the keys are stored encrypted under scrypt(passphrase).
            overwrite: replace an existing keyring (its keys are lost).

        Raises:
            ConfigError: the file exists and ``overwrite`` is false, or it cannot be written.
        """
        target = Path(path) if path is not None else default_keyring_path()
        if target.exists() and not overwrite:
            exists = f"a keyring already exists at {target}; use it, or pass"
            raise ConfigError(
                f"{exists} overwrite=True to replace it and lose its keys",
                cli=f"{exists} --force to replace it and lose its keys",
            )
        kms = cls.ephemeral()
        kms._path = target
        kms._passphrase = passphrase
        try:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ConfigError(
                f"cannot create keyring directory {target.parent}: {exc.strerror}"
            ) from None
        kms._save()
        return kms

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        passphrase: str | None = None,
        min_generation: int | None = None,
    ) -> LocalKms:
        """Loads a keyring file.

        Args:
            path: the file; default :func:`default_keyring_path`.
            passphrase: the file must be protected by it (an unprotected file is then
                refused: whoever can write the file could have planted a key).
            min_generation: refuse a protected file older than this
                :attr:`generation` (one already seen: a rollback).

        Raises:
            ConfigError: the file is missing (says to run ``envelope keyring init``), is
                readable by other users, is corrupt, needs a passphrase, is not
                protected though a passphrase is given, the passphrase is wrong or the
                document was tampered with, or it is older than ``min_generation``.
        """
        target = Path(path) if path is not None else default_keyring_path()
        try:
            st = target.stat()
            raw = target.read_bytes()
        except FileNotFoundError:
            raise ConfigError(
                f"no keyring at {target}: run `envelope keyring init` to create one "
                "(or point --keyring / ENVELOPE_KEYRING at an existing keyring)"
            ) from None
        except OSError as exc:
            raise ConfigError(f"cannot read keyring {target}: {exc.strerror}") from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"keyring {target} is accessible by other users (mode "
                f"{stat.S_IMODE(st.st_mode):04o}); run `chmod 600 {target}`"
            )
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nested too deeply
            raise ConfigError(f"keyring {target} is corrupt: not JSON") from None
        if not isinstance(doc, dict) or doc.get("format") != FILE_FORMAT:
            raise ConfigError(f"{target} is not an envelope keyring ({FILE_FORMAT})")
        keyring_id = doc.get("id")
        if not isinstance(keyring_id, str) or not keyring_id:
            raise ConfigError(f"keyring {target} is corrupt: no id")
        entries = load_entries(doc, keyring_id, target, passphrase)
        generation = doc.get("generation", 0) if passphrase is not None else 0
        if not isinstance(generation, int):
            raise ConfigError(f"keyring {target} is corrupt: bad generation")
        if min_generation is not None and generation < min_generation:
            raise ConfigError(
                f"keyring {target} is older (generation {generation}) than one already "
                f"seen (generation {min_generation}): it was rolled back; restore the newest"
            )
        keys: dict[int, bytearray] = {}
        created: dict[int, str] = {}
        for e in entries:
            if not isinstance(e, dict) or not isinstance(e.get("version"), int):
                raise ConfigError(f"keyring {target} is corrupt: bad key entry")
            material = bytearray(_unb64(e.get("material"), "key material", target))
            if len(material) != 32:
                raise ConfigError(f"keyring {target} is corrupt: a key is not 32 bytes")
            keys[e["version"]] = material
            created[e["version"]] = str(e.get("created", ""))
        if not keys:
            raise ConfigError(f"keyring {target} is corrupt: it holds no keys")
        listed = doc.get("versions")
        if (
            passphrase is not None
            and "generation" in doc
            and listed != [{"version": v, "created": created[v]} for v in sorted(keys)]
        ):
            raise ConfigError(f"keyring {target} was tampered with: its version list differs")
        kms = cls(
            keyring_id, keys, created, path=target, passphrase=passphrase, generation=generation
        )
        if passphrase is None:
            kms._origin = {"kind": "local", "keyring": os.path.abspath(target)}
        return kms

    def _save(self) -> None:
        if self._path is None:
            return
        entries = [
            {"version": v, "created": self._created[v], "material": _b64(k)}
            for v, k in sorted(self._keys.items())
        ]
        self._generation += 1
        doc: dict[str, Any] = {
            "format": FILE_FORMAT,
            "id": self._id,
            "generation": self._generation,
            "versions": [{"version": e["version"], "created": e["created"]} for e in entries],
        }
        if self._passphrase is None:
            doc["protection"] = None
            doc["keys"] = entries
        else:
            salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
            key = _scrypt_key(self._passphrase, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
            doc["protection"] = {
                "kdf": "scrypt",
                "n": _SCRYPT_N,
                "r": _SCRYPT_R,
                "p": _SCRYPT_P,
                "salt": _b64(salt),
                "nonce": _b64(nonce),
            }
            plain = json.dumps(entries).encode()
            sealed = _native.aes256gcm_seal(key, nonce, _document_aad(doc), plain)
            doc["keys_encrypted"] = _b64(sealed)
        try:
            write_atomic(self._path, json.dumps(doc, indent=2).encode() + b"\n", mode=0o600)
        except OSError as exc:
            raise ConfigError(f"cannot write keyring {self._path}: {exc.strerror}") from None

    # -- keyring management -----------------------------------------------------------

    @property
    def path(self) -> Path | None:
        """The keyring file, or None for an ephemeral keyring."""
        return self._path

    @property
    def generation(self) -> int:
        """How many times this keyring was saved (0: a file from before the counter).

        Authenticated in a protected file: keep the highest seen and pass it as
        ``min_generation`` to :meth:`open` to detect a rollback to an older file.
        """
        return self._generation

    @property
    def current_version(self) -> int:
        """The KEK version new wraps use."""
        return self._current

    def versions(self) -> list[KeyVersion]:
        """Every KEK version, oldest first."""
        return [KeyVersion(v, self._created[v]) for v in sorted(self._keys)]

    def rotate(self) -> int:
        """Adds a new KEK version (used by new wraps) and saves the keyring.

        Returns:
            The new version number.

        Raises:
            ConfigError: the keyring file cannot be written.
            KmsError: the keyring already holds the maximum number of versions.
        """
        if len(self._keys) >= MAX_VERSIONS:
            raise KmsError(f"local keyring {self._id} holds {MAX_VERSIONS} versions already")
        version = self.current_version + 1
        material = bytearray(secrets.token_bytes(32))
        self._keys[version] = material
        self._created[version] = _now()
        self._wraps[version] = _key_wrap(version, material)
        self._current = version
        self._save()
        return version

    def __repr__(self) -> str:
        where = str(self._path) if self._path else "memory"
        return f"LocalKms(key_id={self._id!r}, versions={len(self._keys)}, path={where!r})"

    # -- KmsBackend -------------------------------------------------------------------

    @property
    def key_id(self) -> str:
        """The keyring id (stable across rotations)."""
        return self._id

    def matches(self, key_id: str) -> bool:
        """True for this keyring's id."""
        return key_id == self._id

    def _aad_head(self, version: int) -> bytes:
        return _WRAP_LABEL + self._id.encode() + b"\x00" + struct.pack(">I", version)

    def _aad(self, version: int, context: Context) -> bytes:
        head = self._aad_heads.get(version)
        if head is None:  # a version added since (rotate)
            head = self._aad_heads[version] = self._aad_head(version)
        return head + encode_context(context)

    def wrap(self, plaintext: bytes | bytearray, context: Context) -> WrappedKey:
        """Wraps a 32-byte data key under the newest KEK version.

        Raises:
            ValueError: ``plaintext`` is not 32 bytes.
        """
        if len(plaintext) != DATA_KEY_BYTES:
            raise ValueError("a data key is 32 bytes")
        version = self.current_version
        # format, version, then a fresh nonce (from the OS, as os.urandom) and the AEAD
        blob = self._wraps[version].wrap(plaintext, self._aad(version, context))
        return WrappedKey(self.provider_id, self._id, blob)

    def message_wrap(self, context: Context) -> tuple[int, _native.KeyWrap, bytes]:
        """The newest KEK version, its native wrap and the AAD of data keys wrapped under
        ``context``: what :meth:`generate_data_key` uses, for the one-call message path
        (:mod:`envelope._keys.fresh_messages`), which wraps exactly as it does.

        Raises nothing.
        """
        version = self.current_version
        return version, self._wraps[version], self._aad(version, context)

    def generate_data_key(self, context: Context) -> DataKey:
        """A fresh random data key, wrapped under the newest KEK version.

        Raises nothing: the local keyring is in memory once loaded.
        """
        plaintext = bytearray(os.urandom(DATA_KEY_BYTES))  # as in wrap
        return DataKey(plaintext, self.wrap(plaintext, context))

    def unwrap(self, wrapped: WrappedKey, context: Context) -> bytearray:
        """Unwraps a data key.

        Raises:
            KeyUnavailableError: it was wrapped by another keyring, or by a KEK version
                this keyring does not hold.
            DecryptionError: the wrapped bytes or the context are wrong.
        """
        if wrapped.provider != self.provider_id or wrapped.key_id != self._id:
            raise KeyUnavailableError(
                f"the data key is wrapped by {wrapped.provider} key {wrapped.key_id!r}, "
                f"not by this local keyring ({self._id})"
            )
        blob = wrapped.blob
        version = wrapped_version(blob)
        if version is None:
            raise DecryptionError()
        wrap = self._wraps.get(version)
        if wrap is None:
            raise KeyUnavailableError(
                f"the data key is wrapped with version {version} of local keyring {self._id}, "
                f"which the keyring at {self._path or 'memory'} does not hold "
                f"(it has versions {min(self._keys)}..{self.current_version})"
            )
        # A wrong tag raises the kernel's DecryptionError: the opaque one, with no message.
        key = bytearray(DATA_KEY_BYTES)
        wrap.unwrap_into(blob, self._aad(version, context), key)
        return key

    def rewrap(self, wrapped: WrappedKey, context: Context) -> WrappedKey:
        """Re-wraps under the newest KEK version.

        Raises:
            KeyUnavailableError: as :meth:`unwrap`.
            DecryptionError: as :meth:`unwrap`.
        """
        plaintext = self.unwrap(wrapped, context)
        try:
            return self.wrap(plaintext, context)
        finally:
            plaintext[:] = bytes(len(plaintext))

    def health(self) -> None:
        """Always healthy once loaded: the keys are in memory.

        Raises nothing (the protocol allows :class:`~envelope.errors.KmsError`).
        """
