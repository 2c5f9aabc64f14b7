"""The one place this package reaches ``envelope.settings``: KMS backends from rules."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from envelope._envelope import Envelope
from envelope._keys.cluster import ClusterSecret
from envelope.documents._rules import Rule, load_rules
from envelope.errors import ConfigError
from envelope.kms import KmsBackend

__all__ = ["build_backend", "envelope_for_any_rule", "envelope_for_rule"]


def build_backend(spec: Mapping[str, Any], base: Path, where: str) -> KmsBackend:
    """A KMS backend from one ``kms:`` entry of a rules file: the fields of
    :class:`envelope.settings.KmsSettings`; relative paths are relative to ``base``.

    Raises:
        ConfigError: an invalid entry or a backend that cannot be set up (names ``where``).
    """
    from envelope.settings import kms_from_mapping  # noqa: PLC0415 - one seam, lazy pydantic

    return kms_from_mapping(spec, f"kms entry in {where}", base=base)


def envelope_for_rule(
    rule: Rule, *, cluster: ClusterSecret | None = None, accept_unsplit: bool = False
) -> Envelope:
    """The Envelope a creation rule describes (``cluster`` overrides its part file;
    ``accept_unsplit`` also reads files made under a weaker split, for migration).

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
        return Envelope(backends, cluster, threshold=rule.threshold, accept_unsplit=accept_unsplit)
    except ValueError as exc:
        raise ConfigError(f"{rule.source}: {exc}") from None


def envelope_for_any_rule(
    rules: Path, *, cluster: ClusterSecret | None = None, accept_unsplit: bool = False
) -> Envelope:
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
    return envelope_for_rule(union, cluster=cluster, accept_unsplit=accept_unsplit)
