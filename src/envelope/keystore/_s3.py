"""A key store in an S3 bucket (the ``aws`` extra), and reading one S3 object (see
:mod:`envelope.keystore._base` for the object format and the write rules)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from envelope import _sdk
from envelope.errors import ConfigError, KeyUnavailableError, KmsError
from envelope.keystore._base import (
    MAX_CREATE_ATTEMPTS,
    MAX_OBJECT_BYTES,
    VERSION_FILE,
    StoredKey,
    VersionConflict,
    check_name,
    object_key,
    resolve_version,
)

__all__ = ["S3KeyStore", "read_s3_object"]


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
            client = _sdk.aws_client("s3", region=region, endpoint_url=endpoint_url)
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
        key = object_key(check_name(name), version)
        return f"{self._prefix}/{key}" if self._prefix else key

    def _fail(self, exc: Exception, what: str) -> Exception:
        errors = _sdk.botocore_exceptions()
        if isinstance(exc, errors.ClientError):
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
        if isinstance(exc, errors.BotoCoreError):
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
        version = resolve_version(self, name, version)
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
            if m := VERSION_FILE.match(rest):
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
            if name and VERSION_FILE.match(last):
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
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not key:
        raise ConfigError(f"{uri!r} is not an s3://bucket/key URI")
    s3 = _sdk.aws_client("s3", region=region, endpoint_url=endpoint_url)
    errors = _sdk.botocore_exceptions()
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read(limit + 1)
    except errors.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchKey", "NoSuchBucket", "404"):
            raise ConfigError(f"{uri} does not exist") from None
        raise KmsError(f"S3 refused {uri}: {code}") from None
    except errors.BotoCoreError as exc:
        raise KmsError(f"cannot reach S3 for {uri}: {exc}") from None
    if len(body) > limit:
        raise ConfigError(f"{uri} is larger than {limit} bytes")
    return bytes(body)
