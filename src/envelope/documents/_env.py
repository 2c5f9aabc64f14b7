"""A decrypted document as environment variables or files (``envelope exec``)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from envelope.errors import ConfigError

__all__ = ["flatten"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def flatten(doc: Any, source: str, into: dict[str, str] | None = None) -> dict[str, str]:
    """The leaves of a plain document as ``NAME -> value``: nested mapping keys joined
    with ``_`` (``db: {password: x}`` gives ``db_password``), sequence items by index
    (``hosts_0``), characters other than letters, digits and ``_`` replaced by ``_``;
    values as text (``true``/``false``, numbers, ``""`` for null).

    Raises:
        ConfigError: two leaves give the same name, or a name is not a valid variable
            name (names the file and the variable, never a value).
    """
    out = {} if into is None else into
    owner: dict[str, str] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                walk(
                    v,
                    f"{prefix}_{_UNSAFE.sub('_', str(k))}" if prefix else _UNSAFE.sub("_", str(k)),
                )
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{prefix}_{i}" if prefix else f"_{i}")
        else:
            if not _NAME.fullmatch(prefix):
                raise ConfigError(f"{source}: {prefix!r} is not a valid variable name")
            if prefix in out:
                raise ConfigError(
                    f"{source}: variable {prefix} is given twice"
                    + (f" (also by {owner[prefix]})" if prefix in owner else "")
                )
            out[prefix] = _text(node)
            owner[prefix] = source

    walk(doc, "")
    return out
