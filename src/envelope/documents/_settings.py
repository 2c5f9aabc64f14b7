"""The one place this package reaches ``envelope.settings``: KMS backends from rules."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from envelope._envelope import Envelope
from envelope._keys.cluster import ClusterSecret
from envelope.documents._rules import Rule, load_rules
from envelope.errors import ConfigError
from envelope.kms import KmsBackend

__all__ = ["build_backend", "envelope_for_any_rule", "envelope_for_rule"]

_FIELDS = {"kind", "key", "region", "endpoint", "keyring", "passphrase_file", "vault"}


def build_backend(spec: Mapping[str, Any], base: Path, where: str) -> KmsBackend:
    """A KMS backend from one ``kms:`` entry of a rules file (the settings model's
    fields: ``kind``, ``key``, ``region``, ``endpoint``, ``keyring``, ``passphrase_file``,
    ``vault``); relative paths are relative to ``base``.

    Raises:
        ConfigError: an unknown field or a backend that cannot be set up (names ``where``).
    """
    from envelope.settings import VaultSettings, make_kms  # noqa: PLC0415 - one seam

    unknown = set(spec) - _FIELDS
    if unknown:
        raise ConfigError(f"{where}: unknown kms field(s) {', '.join(sorted(map(str, unknown)))}")
    keyring = spec.get("keyring")
    passphrase = None
    if spec.get("passphrase_file"):
        try:
            passphrase = (base / str(spec["passphrase_file"])).read_text().rstrip("\n")
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read passphrase_file: {exc.strerror}") from None
    elif spec.get("kind", "local") == "local":
        passphrase = os.environ.get("ENVELOPE_KEYRING_PASSPHRASE")
    vault = spec.get("vault") or {}
    try:
        return make_kms(
            str(spec.get("kind", "local")),
            key=spec.get("key"),
            region=spec.get("region"),
            endpoint=spec.get("endpoint"),
            keyring=(base / str(keyring)) if keyring else None,
            passphrase=passphrase,
            vault=VaultSettings(**vault),
        )
    except TypeError as exc:
        raise ConfigError(f"{where}: bad vault settings: {exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def envelope_for_rule(rule: Rule, *, cluster: ClusterSecret | None = None) -> Envelope:
    """The Envelope a creation rule describes (``cluster`` overrides its part file).

    Raises:
        ConfigError: as :func:`build_backend`, or an unreadable cluster-secret file.
    """
    base = rule.source.parent
    backends = [
        build_backend(spec, base, f"{rule.source} (kms {i})") for i, spec in enumerate(rule.kms)
    ]
    if cluster is None and rule.cluster_secret is not None:
        cluster = ClusterSecret.from_file(rule.cluster_secret)
    try:
        return Envelope(backends, cluster, threshold=rule.threshold)
    except ValueError as exc:
        raise ConfigError(f"{rule.source}: {exc}") from None


def envelope_for_any_rule(rules: Path, *, cluster: ClusterSecret | None = None) -> Envelope:
    """An Envelope trusting every backend (and cluster-secret part) the rules file names:
    for decrypting a file no rule matches by path (git's temporary copies). It only
    trusts configured keys, so this widens nothing a file could choose.

    Raises:
        ConfigError: no rules, or as :func:`envelope_for_rule`.
    """
    every = load_rules(rules)
    if not every:
        raise ConfigError(f"{rules}: no creation rules")
    union = Rule(rules, None, tuple(k for r in every for k in r.kms))
    if cluster is None:
        parts = [r.cluster_secret for r in every if r.cluster_secret is not None]
        if parts:
            cluster = ClusterSecret.from_file(parts[0], previous=parts[1:])
    return envelope_for_rule(union, cluster=cluster)
