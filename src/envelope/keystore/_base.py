"""Detached key stores: named, versioned wrapped data keys kept apart from ciphertexts.

A service's data key can live in a bucket (or a directory) instead of inside each
message. Each version of a key is one immutable-by-default *key object*: an envelope v1
header with no body (context, split descriptor, key slots), stored as
``<name>/v<version>``. Messages encrypted under a stored key record a key slot with
provider ``keystore`` and key id ``<store uri>/<name>@<version>``; decryption reads that
object from the *configured* store only (a message cannot point us at another bucket),
unwraps it with the configured KMS, and the body's key commitment proves it is the
right key.

Writes are atomic and conditional, so two writers never lose each other's update:

- a new version is created exclusively (S3 ``If-None-Match: *``; ``O_EXCL`` on disk), so
  two writers racing for version N get N and N+1;
- rewrapping a version replaces it only if it is unchanged since it was read (S3
  ``If-Match: <etag>``; a lock file and a re-read on disk).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from envelope.errors import KeyUnavailableError, KmsError

__all__ = [
    "MAX_CREATE_ATTEMPTS",
    "MAX_OBJECT_BYTES",
    "VERSION_FILE",
    "KeyStore",
    "StoredKey",
    "VersionConflict",
    "check_name",
    "object_key",
    "resolve_version",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
VERSION_FILE = re.compile(r"^v(\d{8})$")
MAX_OBJECT_BYTES = 70 * 1024
MAX_CREATE_ATTEMPTS = 64


def check_name(name: str) -> str:
    """Validates a key name: path segments of ``[A-Za-z0-9._-]``, no ``..``.

    Raises:
        ValueError: otherwise.
    """
    if not _NAME.match(name) or ".." in name.split("/") or len(name) > 512:
        raise ValueError(
            f"key name {name!r} must be '/'-separated segments of letters, digits, '.', '_', '-'"
        )
    return name


class VersionConflict(KmsError):
    """A conditional write lost a race: the stored object changed since it was read."""


@dataclass(frozen=True, slots=True)
class StoredKey:
    """One version of a stored key object, and the token that identifies that content."""

    name: str
    version: int
    blob: bytes
    etag: str


class KeyStore(Protocol):
    """Where key objects live."""

    @property
    def uri(self) -> str:
        """Identifies the store in key references (``s3://bucket/prefix``, ``file:///dir``)."""
        ...

    def create(self, name: str, blob: bytes) -> int:
        """Stores ``blob`` as the next version of ``name``; returns that version.

        Raises:
            VersionConflict: too many racing writers took the next versions first.
            ConfigError: the store cannot be written.
            KmsError: a remote store failed.
            ValueError: ``name`` is not a valid key name.
        """
        ...

    def get(self, name: str, version: int | None = None) -> StoredKey:
        """The given (default: newest) version of ``name``.

        Raises:
            KeyUnavailableError: no such key or version.
            KmsError: a remote store failed.
            ValueError: ``name`` is not a valid key name.
        """
        ...

    def replace(self, old: StoredKey, blob: bytes) -> StoredKey:
        """Replaces ``old`` with ``blob`` if it is unchanged since it was read.

        Raises:
            VersionConflict: it changed.
            KmsError: a remote store failed.
        """
        ...

    def versions(self, name: str) -> list[int]:
        """Every version of ``name``, oldest first.

        Raises:
            KmsError: a remote store failed.
            ValueError: ``name`` is not a valid key name.
        """
        ...

    def names(self, prefix: str = "") -> list[str]:
        """Every key name under ``prefix``.

        Raises:
            KmsError: a remote store failed.
        """
        ...


def resolve_version(store: KeyStore, name: str, version: int | None) -> int:
    """``version``, or the newest version of ``name``.

    Raises:
        KeyUnavailableError: there is no version of ``name``.
    """
    if version is not None:
        return version
    versions = store.versions(name)
    if not versions:
        raise KeyUnavailableError(f"no key named {name!r} in {store.uri}")
    return versions[-1]


def object_key(name: str, version: int) -> str:
    return f"{name}/v{version:08d}"
