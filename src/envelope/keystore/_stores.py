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

import contextlib
import hashlib
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from envelope._atomic import write_atomic
from envelope.errors import ConfigError, KeyUnavailableError, KmsError

__all__ = [
    "FileKeyStore",
    "KeyStore",
    "S3KeyStore",
    "StoredKey",
    "VersionConflict",
    "read_s3_object",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
_VERSION_FILE = re.compile(r"^v(\d{8})$")
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


def _resolve_version(store: KeyStore, name: str, version: int | None) -> int:
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


def _object_key(name: str, version: int) -> str:
    return f"{name}/v{version:08d}"


# -- files ------------------------------------------------------------------------------


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
        """Creates the next version with ``O_EXCL``: a racing writer takes the next one.

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
            path = directory / f"v{version:08d}"
            tmp = directory / f".v{version:08d}.{secrets.token_hex(6)}.tmp"
            write_atomic(tmp, blob, mode=0o600)
            try:
                os.link(tmp, path)  # fails if the version exists: exclusive creation
            except FileExistsError:
                continue
            finally:
                tmp.unlink(missing_ok=True)
            return version
        raise VersionConflict(f"could not create a new version of {name!r} in {self._root}")

    def get(self, name: str, version: int | None = None) -> StoredKey:
        """Reads a version (default: newest).

        Raises:
            KeyUnavailableError: no such key or version.
            ValueError: ``name`` is not a valid key name (see :func:`check_name`).
        """
        version = _resolve_version(self, name, version)
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
        lock = path.with_name(path.name + ".lock")
        deadline = time.monotonic() + timeout
        while True:
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
                break
            except FileExistsError:
                if time.monotonic() > deadline:
                    raise VersionConflict(f"{path} is locked by another writer ({lock})") from None
                time.sleep(0.01)
        try:
            yield
        finally:
            os.close(fd)
            lock.unlink(missing_ok=True)

    def replace(self, old: StoredKey, blob: bytes) -> StoredKey:
        """Replaces a version under a lock, if its content is still ``old``'s.

        Raises:
            VersionConflict: another writer changed it first, or holds the lock for 10 s.
            KeyUnavailableError: the version no longer exists.
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
        found = (_VERSION_FILE.match(p.name) for p in directory.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def names(self, prefix: str = "") -> list[str]:
        """Names of stored keys under ``prefix`` (raises nothing: an absent root is empty)."""
        out = set()
        if not self._root.is_dir():
            return []
        for path in self._root.rglob("v*"):
            if _VERSION_FILE.match(path.name):
                name = path.parent.relative_to(self._root).as_posix()
                if name.startswith(prefix):
                    out.add(name)
        return sorted(out)


# -- S3 -----------------------------------------------------------------------------------


class S3KeyStore:
    """Key objects in an S3 bucket under ``prefix``.

    Args:
        bucket: the bucket.
        prefix: a key prefix (for example the service's name).
        client: a boto3 S3 client; by default one is made from ``region``/``endpoint_url``.

    Raises:
        ConfigError: boto3 is not installed.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: Any = None,
        region: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        if client is None:
            from envelope.kms._aws import _boto3  # noqa: PLC0415 - boto3 stays optional

            client = _boto3().client("s3", region_name=region, endpoint_url=endpoint_url)
        self._s3 = client
        self._bucket = bucket
        self._prefix = prefix.strip("/")

    def __repr__(self) -> str:
        return f"S3KeyStore({self.uri!r})"

    @property
    def uri(self) -> str:
        """``s3://bucket/prefix``."""
        return f"s3://{self._bucket}/{self._prefix}".rstrip("/")

    def _key(self, name: str, version: int) -> str:
        key = _object_key(check_name(name), version)
        return f"{self._prefix}/{key}" if self._prefix else key

    def _fail(self, exc: Exception, what: str) -> Exception:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("PreconditionFailed", "ConditionalRequestConflict", "412"):
                return VersionConflict(f"{what}: another writer changed it first; read it again")
            if code in ("NoSuchKey", "404"):
                return KeyUnavailableError(f"{what}: not found in {self.uri}")
            if code in ("NoSuchBucket",):
                return ConfigError(f"bucket {self._bucket} does not exist (key store {self.uri})")
            if code in ("AccessDenied", "403"):
                return KmsError(
                    f"S3 denied access to {what} in {self.uri}: check the bucket policy and role"
                )
            return KmsError(f"S3 request for {what} in {self.uri} failed: {code}")
        if isinstance(exc, BotoCoreError):
            return KmsError(f"cannot reach S3 for {what} in {self.uri}: {exc}")
        return exc

    def create(self, name: str, blob: bytes) -> int:
        """Creates the next version with ``If-None-Match: *``; retries on a lost race.

        Raises:
            VersionConflict: too many racing writers took the next versions first.
            ConfigError: the bucket does not exist.
            KmsError: S3 denied access or could not be reached.
            ValueError: ``name`` is not a valid key name (see :func:`check_name`).
        """
        for _ in range(MAX_CREATE_ATTEMPTS):
            version = max(self.versions(name), default=0) + 1
            try:
                self._s3.put_object(
                    Bucket=self._bucket, Key=self._key(name, version), Body=blob, IfNoneMatch="*"
                )
                return version
            except Exception as exc:
                mapped = self._fail(exc, f"version {version} of {name!r}")
                if isinstance(mapped, VersionConflict):
                    continue
                raise mapped from None
        raise VersionConflict(f"could not create a new version of {name!r} in {self.uri}")

    def get(self, name: str, version: int | None = None) -> StoredKey:
        """Reads a version (default: newest).

        Raises:
            KeyUnavailableError: no such key or version, or an object too large to be one.
            ConfigError: the bucket does not exist.
            KmsError: S3 denied access or could not be reached.
            ValueError: ``name`` is not a valid key name (see :func:`check_name`).
        """
        version = _resolve_version(self, name, version)
        what = f"version {version} of key {name!r}"
        try:
            obj = self._s3.get_object(Bucket=self._bucket, Key=self._key(name, version))
            blob = obj["Body"].read(MAX_OBJECT_BYTES + 1)
        except Exception as exc:
            raise self._fail(exc, what) from None
        if len(blob) > MAX_OBJECT_BYTES:
            raise KeyUnavailableError(f"{what} in {self.uri} is larger than a key object can be")
        return StoredKey(name, version, blob, str(obj["ETag"]))

    def replace(self, old: StoredKey, blob: bytes) -> StoredKey:
        """Replaces a version with ``If-Match: <etag>``.

        Raises:
            VersionConflict: another writer changed it first.
            ConfigError: the bucket does not exist.
            KmsError: S3 denied access or could not be reached.
        """
        what = f"version {old.version} of key {old.name!r}"
        try:
            resp = self._s3.put_object(
                Bucket=self._bucket,
                Key=self._key(old.name, old.version),
                Body=blob,
                IfMatch=old.etag,
            )
        except Exception as exc:
            raise self._fail(exc, what) from None
        return StoredKey(old.name, old.version, blob, str(resp["ETag"]))

    def _list(self, prefix: str) -> Iterator[str]:
        full = f"{self._prefix}/{prefix}" if self._prefix else prefix
        token: dict[str, str] = {}
        while True:
            try:
                page = self._s3.list_objects_v2(Bucket=self._bucket, Prefix=full, **token)
            except Exception as exc:
                raise self._fail(exc, f"listing {prefix!r}") from None
            for obj in page.get("Contents", []):
                key = str(obj["Key"])
                yield key[len(self._prefix) + 1 :] if self._prefix else key
            if not page.get("IsTruncated"):
                return
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def versions(self, name: str) -> list[int]:
        """Versions of ``name`` in the bucket.

        Raises:
            ConfigError: the bucket does not exist.
            KmsError: S3 denied access or could not be reached.
            ValueError: ``name`` is not a valid key name (see :func:`check_name`).
        """
        out = []
        for key in self._list(check_name(name) + "/"):
            rest = key[len(name) + 1 :]
            if m := _VERSION_FILE.match(rest):
                out.append(int(m.group(1)))
        return sorted(out)

    def names(self, prefix: str = "") -> list[str]:
        """Names of stored keys under ``prefix``.

        Raises:
            ConfigError: the bucket does not exist.
            KmsError: S3 denied access or could not be reached.
        """
        out = set()
        for key in self._list(prefix):
            name, _, last = key.rpartition("/")
            if name and _VERSION_FILE.match(last):
                out.add(name)
        return sorted(out)


def read_s3_object(
    uri: str, *, endpoint_url: str | None = None, region: str | None = None, limit: int = 64 << 20
) -> bytes:
    """Reads ``s3://bucket/key`` (at most ``limit`` bytes), e.g. a sealed secret.

    Raises:
        ConfigError: a malformed URI, a missing bucket or object, or an object over the limit.
        KmsError: S3 refused or could not be reached (worth retrying).
    """
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    from envelope.kms._aws import _boto3  # noqa: PLC0415 - boto3 stays optional

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not key:
        raise ConfigError(f"{uri!r} is not an s3://bucket/key URI")
    try:
        s3 = _boto3().client("s3", endpoint_url=endpoint_url, region_name=region)
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read(limit + 1)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchKey", "NoSuchBucket", "404"):
            raise ConfigError(f"{uri} does not exist") from None
        raise KmsError(f"S3 refused {uri}: {code}") from None
    except BotoCoreError as exc:
        raise KmsError(f"cannot reach S3 for {uri}: {exc}") from None
    if len(body) > limit:
        raise ConfigError(f"{uri} is larger than {limit} bytes")
    return bytes(body)
