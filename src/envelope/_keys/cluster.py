"""The cluster-secret part of the split key.

Each service has a 32-byte random part, delivered as a Kubernetes Secret mounted
into its pods. The message key is derived from the KMS data key *and* this part, so
neither the KMS alone nor the cluster alone can decrypt.

A part's id (``cs-`` and 16 hex digits of a domain-separated SHA-256) is stored in
message headers and is safe to print: it reveals nothing usable about the part.
For rotation a :class:`ClusterSecret` holds the current part plus previous ones;
new messages use the current part, old messages find theirs by id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from envelope.errors import ConfigError, KeyUnavailableError

__all__ = ["PART_BYTES", "ClusterSecret", "ClusterSecretPart"]

PART_BYTES = 32
_ID_LABEL = b"envelope.dev/v1 cluster-secret id\x00"


def _decode_part(raw: bytes, source: str) -> bytearray:
    """A part is 32 raw bytes, or (after stripping whitespace) 64 hex digits or base64."""
    if len(raw) == PART_BYTES:
        return bytearray(raw)
    text = raw.strip()
    decoded: bytes | None = None
    if len(text) == 2 * PART_BYTES:
        try:
            decoded = bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            decoded = None
    if decoded is None:
        try:
            decoded = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            decoded = None
    if decoded is None or len(decoded) != PART_BYTES:
        raise ConfigError(
            f"cluster secret from {source} is not 32 bytes (raw, 64 hex digits or base64); "
            "create one with `envelope cluster-secret new`"
        )
    return bytearray(decoded)


class ClusterSecretPart:
    """One 32-byte part. Its bytes never appear in ``repr`` or ``str``.

    Args:
        material: the part's 32 bytes (copied).

    Raises:
        ValueError: ``material`` is not 32 bytes.
    """

    __slots__ = ("_material", "_wiped", "id")

    def __init__(self, material: bytes | bytearray) -> None:
        if len(material) != PART_BYTES:
            raise ValueError("a cluster-secret part is 32 bytes")
        self._material = bytearray(material)
        self._wiped = False
        self.id = "cs-" + hashlib.sha256(_ID_LABEL + bytes(material)).hexdigest()[:16]

    @property
    def material(self) -> bytearray:
        """The part's bytes.

        Raises:
            ConfigError: the part was wiped (a wiped part is never used as zeros).
        """
        if self._wiped:
            raise ConfigError(f"cluster-secret part {self.id} was wiped; load it again to use it")
        return self._material

    def wipe(self) -> None:
        """Overwrites the part with zeros; every later use raises ConfigError."""
        self._material[:] = bytes(PART_BYTES)
        self._wiped = True

    def __repr__(self) -> str:
        return f"ClusterSecretPart(id={self.id!r})"


class ClusterSecret:
    """The current cluster-secret part, plus previous parts kept during rotation.

    Args:
        current: the part new messages use.
        previous: older parts that still decrypt (kept while messages are re-encrypted).

    Raises:
        ValueError: the same part is listed twice.
    """

    __slots__ = ("_origin", "_parts")

    def __init__(
        self, current: ClusterSecretPart, previous: Iterable[ClusterSecretPart] = ()
    ) -> None:
        parts = [current, *previous]
        ids = [p.id for p in parts]
        if len(set(ids)) != len(ids):
            raise ValueError("the same cluster-secret part is listed twice")
        self._parts = tuple(parts)
        # Where the parts come from (file paths or a variable name), what a pickled
        # Envelope carries instead of the bytes; None (bytes given): not picklable.
        self._origin: dict[str, Any] | None = None

    @classmethod
    def generate(cls) -> ClusterSecret:
        """A new random part."""
        return cls(ClusterSecretPart(secrets.token_bytes(PART_BYTES)))

    @classmethod
    def from_bytes(cls, current: bytes | bytearray, *previous: bytes | bytearray) -> ClusterSecret:
        """Parts given as bytes (32 raw bytes, hex or base64).

        Raises:
            ConfigError: a part is not 32 bytes in any accepted encoding.
        """
        parts = [ClusterSecretPart(_decode_part(bytes(b), "bytes")) for b in (current, *previous)]
        return cls(parts[0], parts[1:])

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, previous: Iterable[str | os.PathLike[str]] = ()
    ) -> ClusterSecret:
        """Loads the current part from ``path`` (how a mounted Kubernetes Secret appears)
        and previous parts from ``previous``.

        Raises:
            ConfigError: a file is missing, unreadable or not a 32-byte part.
        """
        files = [os.path.abspath(p) for p in (path, *previous)]
        parts = [_load_file(Path(p)) for p in (path, *previous)]
        secret = cls(parts[0], parts[1:])
        secret._origin = {"file": files[0], "previous": files[1:]}
        return secret

    @classmethod
    def from_env(cls, name: str = "ENVELOPE_CLUSTER_SECRET") -> ClusterSecret:
        """Loads the current part from an environment variable (hex or base64).

        Raises:
            ConfigError: the variable is unset or not a 32-byte part.
        """
        value = os.environ.get(name)
        if not value:
            raise ConfigError(
                f"environment variable {name} is not set; it must hold the cluster-secret "
                "part (hex or base64), or use a file with --cluster-secret"
            )
        secret = cls(ClusterSecretPart(_decode_part(value.encode(), f"${name}")))
        secret._origin = {"env": name}
        return secret

    @property
    def current(self) -> ClusterSecretPart:
        """The part new messages use."""
        return self._parts[0]

    def parts(self) -> tuple[ClusterSecretPart, ...]:
        """Every part held, current first."""
        return self._parts

    @property
    def ids(self) -> tuple[str, ...]:
        """Ids of every part held, current first."""
        return tuple(p.id for p in self._parts)

    def part(self, part_id: str) -> ClusterSecretPart:
        """Returns the part with id ``part_id``.

        Raises:
            KeyUnavailableError: no such part is held (the message names the id needed).
        """
        for p in self._parts:
            if p.id == part_id:
                return p
        raise KeyUnavailableError(
            f"this message needs cluster-secret part {part_id}, but only "
            f"{', '.join(self.ids)} is loaded; mount the Secret that holds {part_id} "
            "(or pass it as a previous part during rotation)"
        )

    def wipe(self) -> None:
        """Zeroes every part; every later use of one raises ConfigError."""
        for p in self._parts:
            p.wipe()

    def __repr__(self) -> str:
        return f"ClusterSecret(ids={list(self.ids)!r})"


def _load_file(path: Path) -> ClusterSecretPart:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"cluster-secret file {path} does not exist: create one with "
            f"`envelope cluster-secret new --out {path}` or mount the service's Secret there"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read cluster-secret file {path}: {exc.strerror}") from None
    return ClusterSecretPart(_decode_part(raw, str(path)))
