"""Between round-trip nodes and plain Python values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["from_plain", "to_plain"]


def to_plain(node: Any) -> Any:
    """Plain dicts, lists, str, int, float, bool and None (YAML styles dropped)."""
    if isinstance(node, Mapping):
        own = getattr(node, "non_merged_items", None)
        if own is None:
            return {to_plain(k): to_plain(v) for k, v in node.items()}
        # YAML merge keys (<<: *base): the merged mappings' current values, own keys first.
        out = {to_plain(k): to_plain(v) for k, v in own()}
        for merged in getattr(node, "merge", None) or ():
            source = merged[1] if isinstance(merged, tuple) else merged
            for k, v in to_plain(source).items():
                out.setdefault(k, v)
        return out
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node if node is None else bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def from_plain(obj: Any, fmt: str) -> Any:
    """A plain value ready for ``fmt``'s writer (dotenv: a flat mapping of strings).

    Raises:
        ValueError: dotenv with nested values.
    """
    if fmt != "dotenv":
        return to_plain(obj)
    if not isinstance(obj, Mapping):
        raise ValueError("a dotenv file is a flat mapping of names to values")
    out: dict[str, Any] = {}
    for k, v in obj.items():
        if isinstance(v, Mapping | list):
            raise ValueError(f"dotenv cannot hold the nested value at .{k}")
        out[str(k)] = "" if v is None else (str(v).lower() if isinstance(v, bool) else str(v))
    return out
