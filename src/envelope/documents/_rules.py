"""Which values stay clear, and the ``.envelope.yaml`` rules file.

A rules file holds ``creation_rules``: the first whose ``path_regex`` matches the file's
path (relative to the rules file's directory, ``/``-separated) says which KMS backends
wrap the data key (``kms``: a list of backend settings), the ``threshold``, the
``cluster_secret`` file, the ``context`` and the clear-value rules. See docs/documents.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from envelope.documents._format import Path
from envelope.documents._secret import secret_value
from envelope.errors import ConfigError

__all__ = ["RULES_FILE", "ClearRules", "Rule", "find_rules_file", "load_rules", "match_rule"]

RULES_FILE = ".envelope.yaml"
MAX_RULES_BYTES = 1024 * 1024
_CLEAR_NAMES = ("encrypted_regex", "encrypted_suffix", "unencrypted_regex", "unencrypted_suffix")
_RULE_NAMES = {"path_regex", "kms", "threshold", "cluster_secret", "context", *_CLEAR_NAMES}


@dataclass(frozen=True)
class ClearRules:
    """Which leaves are encrypted. A leaf is left clear when a mapping key on its path
    matches ``unencrypted_regex`` or ends with ``unencrypted_suffix``; when
    ``encrypted_regex`` / ``encrypted_suffix`` is set, only leaves with such a key on
    their path are encrypted. Kubernetes Secret files encrypt only ``data`` /
    ``stringData`` values. At most one of the four may be set (as SOPS)."""

    unencrypted_regex: str | None = None
    encrypted_regex: str | None = None
    unencrypted_suffix: str | None = None
    encrypted_suffix: str | None = None
    kubernetes_secret: bool = False

    def __post_init__(self) -> None:
        given = [n for n in _CLEAR_NAMES if getattr(self, n) is not None]
        if len(given) > 1:
            raise ConfigError(f"clear-value rules: set at most one of {', '.join(given)}")
        for n in ("unencrypted_regex", "encrypted_regex"):
            pattern = getattr(self, n)
            if pattern is not None:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ConfigError(
                        f"{n} {pattern!r} is not a regular expression: {exc}"
                    ) from None

    def to_record(self) -> dict[str, str]:
        """The rules as recorded in a file's metadata."""
        out = {n: getattr(self, n) for n in _CLEAR_NAMES if getattr(self, n) is not None}
        if self.kubernetes_secret:
            out["kubernetes_secret"] = "true"  # noqa: S105 - a rule flag
        return out

    @classmethod
    def from_record(cls, record: Mapping[str, str], name: str) -> ClearRules:
        """The rules a file's metadata records.

        Raises:
            ConfigError: rules this version cannot apply.
        """
        flag = record.get("kubernetes_secret")
        if flag not in (None, "true"):
            raise ConfigError(f"{name}: unknown kubernetes_secret rule {flag!r}")
        args = {n: record[n] for n in _CLEAR_NAMES if n in record}
        return cls(kubernetes_secret=flag is not None, **args)

    def encrypts(self, path: Path, secrets: frozenset[int]) -> bool:
        """Whether the leaf at ``path`` is encrypted."""
        if self.kubernetes_secret and not secret_value(path, secrets):
            return False
        keys = [str(item) for kind, item in path if kind == "key"]
        if self.unencrypted_regex is not None:
            return not any(re.search(self.unencrypted_regex, k) for k in keys)
        if self.unencrypted_suffix is not None:
            return not any(k.endswith(self.unencrypted_suffix) for k in keys)
        if self.encrypted_regex is not None:
            return any(re.search(self.encrypted_regex, k) for k in keys)
        if self.encrypted_suffix is not None:
            return any(k.endswith(self.encrypted_suffix) for k in keys)
        return True


@dataclass(frozen=True)
class Rule:
    """One creation rule of a rules file."""

    source: FsPath
    path_regex: str | None
    kms: tuple[Mapping[str, Any], ...]
    threshold: int | None = None
    cluster_secret: FsPath | None = None
    context: Mapping[str, str] = field(default_factory=dict)
    clear: ClearRules = field(default_factory=ClearRules)


def find_rules_file(start: FsPath) -> FsPath | None:
    """The nearest ``.envelope.yaml`` in ``start``'s directory or above it."""
    here = start.resolve()
    for directory in (here if here.is_dir() else here.parent, *here.parents):
        candidate = directory / RULES_FILE
        if candidate.is_file():
            return candidate
    return None


def _str(v: Any, what: str, where: str) -> str:
    if not isinstance(v, str):
        raise ConfigError(f"{where}: {what} must be a string")
    return v


def _rule(raw: Any, source: FsPath, where: str) -> Rule:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: a rule must be a mapping")
    unknown = set(raw) - _RULE_NAMES
    if unknown:
        raise ConfigError(f"{where}: unknown rule field(s) {', '.join(sorted(map(str, unknown)))}")
    kms = raw.get("kms")
    if isinstance(kms, Mapping):
        kms = [kms]
    if not isinstance(kms, Sequence) or not kms or not all(isinstance(k, Mapping) for k in kms):
        raise ConfigError(f"{where}: kms must be a backend mapping or a non-empty list of them")
    threshold = raw.get("threshold")
    if threshold is not None and (not isinstance(threshold, int) or isinstance(threshold, bool)):
        raise ConfigError(f"{where}: threshold must be a number")
    context = raw.get("context") or {}
    if not isinstance(context, Mapping):
        raise ConfigError(f"{where}: context must be a mapping of strings")
    cluster = raw.get("cluster_secret")
    pattern = raw.get("path_regex")
    if pattern is not None:
        try:
            re.compile(_str(pattern, "path_regex", where))
        except re.error as exc:
            raise ConfigError(f"{where}: path_regex is not a regular expression: {exc}") from None
    given = {n: _str(raw[n], n, where) for n in _CLEAR_NAMES if n in raw}
    clear = ClearRules(**given)  # type: ignore[arg-type]
    return Rule(
        source,
        pattern,
        tuple(dict(k) for k in kms),
        threshold,
        (source.parent / _str(cluster, "cluster_secret", where)) if cluster else None,
        {
            _str(k, "a context key", where): _str(v, "a context value", where)
            for k, v in context.items()
        },
        clear,
    )


def load_rules(path: FsPath) -> list[Rule]:
    """Parses a rules file.

    Raises:
        ConfigError: unreadable, too large, not YAML, or a malformed rule (names the file).
    """
    from envelope.documents._yaml import YamlFormat  # noqa: PLC0415 - avoids a cycle

    try:
        if path.stat().st_size > MAX_RULES_BYTES:
            raise ConfigError(f"{path}: rules file over {MAX_RULES_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read rules file {path}: {exc}") from None
    try:
        docs = YamlFormat().parse(text, str(path)).docs
    except Exception as exc:
        raise ConfigError(str(exc)) from None
    top = docs[0] if len(docs) == 1 else None
    rules = top.get("creation_rules") if isinstance(top, Mapping) else None
    if not isinstance(rules, Sequence) or isinstance(rules, str):
        raise ConfigError(f"{path}: expected a top-level 'creation_rules:' list")
    return [_rule(r, path, f"{path}: creation_rules[{i}]") for i, r in enumerate(rules)]


def match_rule(file: FsPath, rules_file: FsPath) -> Rule | None:
    """The first rule of ``rules_file`` whose ``path_regex`` matches ``file`` (a rule
    without ``path_regex`` matches every file).

    Raises:
        ConfigError: as :func:`load_rules`.
    """
    base = rules_file.resolve().parent
    target = file.resolve()
    try:
        relative = target.relative_to(base).as_posix()
    except ValueError:
        relative = target.as_posix()
    for rule in load_rules(rules_file):
        if rule.path_regex is None or re.search(rule.path_regex, relative):
            return rule
    return None
