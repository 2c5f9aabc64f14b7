"""Discovery decrypt: which key a message's slot may pick, and its backend.

With no ``kms.key``, a decrypting front end uses the key a message's key slot names,
if ``kms.allowed_keys`` allows it. The patterns are globs (:func:`fnmatch.fnmatchcase`:
``*`` is any run of characters, ``/`` and ``:`` included; ``?`` one; ``[abc]`` a set),
case-sensitive, matched per KMS kind:

- ``aws``: against the slot's key ARN (``arn:aws:kms:eu-west-1:111122223333:key/*``);
  a pattern without ``:`` against the key id after ``key/`` (``mrk-*``); an ``alias/``
  pattern against the aliases of the key (one ListAliases call to the configured KMS,
  once per key and backend: it needs ``kms:ListAliases``).
  The key must be in the configured region; a key in another region is used only if
  an ARN pattern names that region literally (no wildcard in its region field): then
  the client signs for the ARN's region but still talks to the configured endpoint
  (``kms.endpoint``, else boto3's own for that region). An alias pattern never allows
  a key in another region.
- ``vault``: the slot's ``<mount>/<name>`` must be under the configured mount; the
  pattern matches the transit key name (or ``<mount>/<name>`` if it has a ``/``).
- ``local``: the slot must name the configured keyring's id, and a pattern match it
  (the keyring file is the key: the allow-list can only refuse it).

The slot wins whose first matching pattern comes first in the allow-list (ties: the
message's order); if it cannot be unwrapped the next allowed slot is tried.

The message never chooses a KMS kind, endpoint, region (except as above), Vault
address, mount, namespace or auth: those come from the settings only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, cast

from envelope._keys.discovery import DiscoveredKeys
from envelope.kms import KmsBackend
from envelope.settings._model import KmsSettings

if TYPE_CHECKING:
    from envelope.kms._aws import AwsKms
    from envelope.kms._local import LocalKms

__all__ = ["HINT", "aws_region_for", "discovered_kms", "explicit_region", "vault_name"]

#: What to configure when no slot is allowed (CLI words).
HINT = (
    "pass --kms-key KEY, or allow the key with --allow-key PATTERN (repeatable) or "
    "$ENVELOPE_ALLOWED_KEYS (comma- or space-separated patterns)"
)
_KEY_ARN = re.compile(r"^arn:[\w-]+:kms:([\w-]+):(\d+):key/([\w-]+)$")
_GLOB = re.compile(r"[*?\[]")

# Builds the backend of one KmsSettings (envelope.settings._build.build_kms).
Build = Callable[[KmsSettings], KmsBackend]


def _first(patterns: Sequence[str], accept: Callable[[str], bool]) -> int | None:
    return next((i for i, p in enumerate(patterns) if accept(p)), None)


def explicit_region(pattern: str) -> str | None:
    """The region an ARN pattern names literally (None: not an ARN pattern, or its region
    field has a wildcard).

    >>> explicit_region("arn:aws:kms:us-east-1:*")
    'us-east-1'
    >>> explicit_region("arn:aws:kms:us-*:111122223333:key/*") is None
    True
    """
    parts = pattern.split(":")
    if len(parts) < 5 or parts[0] != "arn" or parts[2] != "kms":
        return None
    region = parts[3]
    return None if not region or _GLOB.search(region) or _GLOB.search(parts[1]) else region


def aws_region_for(arn: str, pattern: str, configured: str) -> str | None:
    """The region to reach key ``arn`` in, if ``pattern`` (which matched it) allows it:
    the configured one when the key is there, the ARN's only if ``pattern`` names it."""
    m = _KEY_ARN.match(arn)
    if m is None:
        return None
    region = m.group(1)
    if region == configured:
        return region
    return region if explicit_region(pattern) == region else None


def vault_name(key_id: str, mount: str) -> str | None:
    """The transit key name of slot ``key_id`` (``<mount>/<name>``) if it is under the
    configured ``mount`` (None: another mount, never followed)."""
    prefix = mount.strip("/") + "/"
    if not key_id.startswith(prefix):
        return None
    name = key_id[len(prefix) :]
    return name if name and "/" not in name else None


class _Aws:
    """The AWS rules of the module docstring, for one configuration (``settings`` carry
    the allow-list; ``build`` gets concrete settings, one key each)."""

    def __init__(self, settings: KmsSettings, build: Build) -> None:
        self._settings, self._build = settings, build
        self._regions: dict[str, str] = {}
        self._home: str | None = None  # the configured region, as boto3 resolves it
        self._aliases: dict[str, list[str]] = {}  # looked up once per key
        self._built: dict[tuple[str, str | None], KmsBackend] = {}

    def _cached(self, arn: str, region: str | None) -> KmsBackend:
        found = self._built.get((arn, region))
        if found is None:
            update = {"key": arn, "region": region, "allowed_keys": ()}
            found = self._built[arn, region] = self._build(self._settings.model_copy(update=update))
        return found

    def _configured(self, arn: str) -> AwsKms:
        """The key ``arn`` through the configured region (no request yet)."""
        return cast("AwsKms", self._cached(arn, self._settings.region))

    def rank(self, arn: str) -> int | None:
        m = _KEY_ARN.match(arn)
        if m is None:
            return None
        if self._home is None:
            self._home = str(self._configured(arn)._client.meta.region_name)
        configured = self._home
        home = m.group(1) == configured

        def allows(p: str) -> bool:
            if p.startswith("alias/"):
                return home and any(fnmatchcase(a, p) for a in self._aliases_of(arn))
            if ":" not in p:
                return home and fnmatchcase(m.group(3), p)
            if not fnmatchcase(arn, p):
                return False
            region = aws_region_for(arn, p, configured)
            if region is not None and not home:
                self._regions.setdefault(arn, region)
            return region is not None

        return _first(self._settings.allowed_keys, allows)

    def _aliases_of(self, arn: str) -> list[str]:
        found = self._aliases.get(arn)
        if found is None:
            found = self._aliases[arn] = self._configured(arn).aliases()
        return found

    def backend(self, arn: str) -> KmsBackend:
        """The key ``arn``: through its own region if a pattern named it, else the
        configured one."""
        region = self._regions.get(arn)
        return self._configured(arn) if region is None else self._cached(arn, region)


def discovered_kms(settings: KmsSettings, build: Build) -> DiscoveredKeys:
    """The discovering backend ``settings`` describe (no ``key``; ``allowed_keys``, maybe
    empty), building each allowed key's backend with ``build`` over these settings.

    Raises:
        ConfigError: the local keyring cannot be opened (local kind).
    """
    patterns = settings.allowed_keys
    plain = settings.model_copy(update={"allowed_keys": ()})
    found: DiscoveredKeys
    if settings.kind == "local":
        local = cast("LocalKms", build(plain))
        keyring = local.key_id

        def local_rank(key_id: str) -> int | None:
            if key_id != keyring:
                return None
            return _first(patterns, lambda p: fnmatchcase(key_id, p))

        found = DiscoveredKeys(
            "local",
            rank=local_rank,
            build=lambda _key_id: local,
            allowed=patterns,
            hint=_local_hint(),
            encryptor=local,
        )
    elif settings.kind == "vault":
        mount = settings.vault.mount

        def vault_rank(key_id: str) -> int | None:
            name = vault_name(key_id, mount)
            if name is None:
                return None
            return _first(patterns, lambda p: fnmatchcase(key_id if "/" in p else name, p))

        def vault_build(key_id: str) -> KmsBackend:
            return build(plain.model_copy(update={"key": vault_name(key_id, mount)}))

        found = DiscoveredKeys(
            "vault-transit", rank=vault_rank, build=vault_build, allowed=patterns, hint=HINT
        )
    else:
        aws = _Aws(settings, build)
        found = DiscoveredKeys(
            "aws-kms", rank=aws.rank, build=aws.backend, allowed=patterns, hint=HINT
        )
    return found


def _local_hint() -> str:
    return (
        "the local keyring is the key: allow its id with --allow-key ID or "
        "$ENVELOPE_ALLOWED_KEYS, or open the keyring that wrapped it (--keyring, "
        "$ENVELOPE_KEYRING)"
    )
