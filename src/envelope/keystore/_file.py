"""A key store in a local directory: ``<root>/<name>/v<version>`` files (see
:mod:`envelope.keystore._base` for the object format and the write rules)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from envelope._atomic import create_exclusive, write_atomic
from envelope.errors import ConfigError, KeyUnavailableError
from envelope.keystore._base import (
    MAX_CREATE_ATTEMPTS,
    VERSION_FILE,
    StoredKey,
    VersionConflict,
    check_name,
    resolve_version,
)

__all__ = ["FileKeyStore"]


class FileKeyStore:
    """Key objects as files under ``root`` (mode 0600, directories 0700).

    Nothing is read or created until the first call.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._root = Path(root).resolve()

    def __repr__(self) -> str:
        return f"FileKeyStore({str(self._root)!r})"

    @property
    def uri(self) -> str:
        """``file://`` and the absolute root."""
        return f"file://{self._root}"

    def _dir(self, name: str) -> Path:
        return self._root / check_name(name)

    def create(self, name: str, blob: bytes) -> int:
        """Creates the next version exclusively (``linkat``): a racing writer takes the next one.

        Raises:
            ConfigError: the directory cannot be written.
            VersionConflict: too many racing writers took the next versions first.
            ValueError: ``name`` is not a valid key name (see :func:`check_name`).
        """
        directory = self._dir(name)
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ConfigError(
                f"cannot create key-store directory {directory}: {exc.strerror}"
            ) from None
        for _ in range(MAX_CREATE_ATTEMPTS):
            version = max(self.versions(name), default=0) + 1
            try:
                created = create_exclusive(directory / f"v{version:08d}", blob, mode=0o600)
            except OSError as exc:
                raise ConfigError(f"cannot write key store {directory}: {exc.strerror}") from None
            if created:
                return version
        raise VersionConflict(f"could not create a new version of {name!r} in {self._root}")

    def get(self, name: str, version: int | None = None) -> StoredKey:
        """Reads a version (default: newest).

        Raises:
            KeyUnavailableError: no such key or version.
            ValueError: ``name`` is not a valid key name (see :func:`check_name`).
        """
        version = resolve_version(self, name, version)
        path = self._dir(name) / f"v{version:08d}"
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise KeyUnavailableError(
                f"no version {version} of key {name!r} in {self.uri}"
            ) from None
        return StoredKey(name, version, blob, hashlib.sha256(blob).hexdigest())

    @contextlib.contextmanager
    def _lock(self, path: Path, timeout: float = 10.0) -> Iterator[None]:
        """An exclusive ``flock`` on ``<version>.lock``, which the kernel releases when
        its holder exits, however it exits (a SIGKILLed holder blocks nobody).

        The lock file is left in place: unlinking it would let two writers lock two
        different files of the same name.

        Raises:
            VersionConflict: another live writer held it for ``timeout`` seconds.
            ConfigError: the lock file cannot be opened.
        """
        lock = path.with_name(path.name + ".lock")
        try:
            fd = os.open(lock, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise ConfigError(f"cannot open key-store lock {lock}: {exc.strerror}") from None
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise VersionConflict(
                            f"{path} is locked by another writer ({lock}); retry when it is done"
                        ) from None
                    time.sleep(0.01)
            yield
        finally:
            os.close(fd)  # releases the lock

    def replace(self, old: StoredKey, blob: bytes) -> StoredKey:
        """Replaces a version under a lock, if its content is still ``old``'s.

        Raises:
            VersionConflict: another writer changed it first, or holds the lock for 10 s.
            KeyUnavailableError: the version no longer exists.
            ConfigError: the lock file cannot be opened.
        """
        path = self._dir(old.name) / f"v{old.version:08d}"
        with self._lock(path):
            current = self.get(old.name, old.version)
            if current.etag != old.etag:
                raise VersionConflict(
                    f"version {old.version} of {old.name!r} changed since it was read; "
                    "read it again"
                )
            write_atomic(path, blob, mode=0o600)
        return StoredKey(old.name, old.version, blob, hashlib.sha256(blob).hexdigest())

    def versions(self, name: str) -> list[int]:
        """Versions of ``name`` on disk.

        Raises:
            ValueError: ``name`` is not a valid key name (see :func:`check_name`).
        """
        directory = self._dir(name)
        if not directory.is_dir():
            return []
        found = (VERSION_FILE.match(p.name) for p in directory.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def names(self, prefix: str = "") -> list[str]:
        """Names of stored keys under ``prefix`` (raises nothing: an absent root is empty)."""
        out = set()
        if not self._root.is_dir():
            return []
        for path in self._root.rglob("v*"):
            if VERSION_FILE.match(path.name):
                name = path.parent.relative_to(self._root).as_posix()
                if name.startswith(prefix):
                    out.add(name)
        return sorted(out)
