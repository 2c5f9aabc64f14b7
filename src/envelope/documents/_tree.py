"""Walks a parsed document (mappings, sequences, scalars) into ordered leaf entries."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from envelope.documents._format import MAX_DEPTH, Path, encode_path, format_path
from envelope.errors import FormatError

__all__ = ["Entry", "walk"]

#: Entry kinds: a leaf; an alias (a node seen before, by YAML anchor); the merge keys
#: (``<<: *base``) of a mapping.
LEAF, ALIAS, MERGE = "leaf", "alias", "merge"


@dataclass
class Entry:
    """One step of the walk, in document order."""

    kind: str
    path: Path
    path_bytes: bytes
    container: Any = None
    key: Any = None
    value: Any = None
    #: ALIAS: the path bytes of the first occurrence; MERGE: those of each merged mapping.
    targets: list[bytes] = field(default_factory=list)

    def set(self, value: Any) -> None:
        """Replaces this leaf in its container (keeps comments and position)."""
        if type(value) is str and self.container is not None:
            # A round-trip mapping would otherwise give the new string the old one's style.
            self.container[self.key] = None
        self.container[self.key] = value
        self.value = value


def anchor_of(node: Any) -> str | None:
    """The YAML anchor on a round-trip node, if any."""
    anchor = getattr(node, "anchor", None)
    value = getattr(anchor, "value", None)
    return value if isinstance(value, str) else None


def _own_items(node: Any) -> Any:
    items = getattr(node, "non_merged_items", None)
    return items() if items is not None else node.items()


def _merged(node: Any) -> Sequence[Any]:
    merge = getattr(node, "merge", None)
    if not merge:
        return ()
    return [m[1] if isinstance(m, tuple) else m for m in merge]


def walk(
    docs: Sequence[Any], name: str, *, skip_key: Callable[[Path], bool] = lambda p: False
) -> list[Entry]:
    """Every leaf, alias and merge of ``docs`` in document order.

    Args:
        docs: the parsed documents (a YAML stream may hold several).
        name: the file name for errors.
        skip_key: paths to leave out entirely (the metadata block).

    Raises:
        FormatError: deeper than MAX_DEPTH, a mapping key that is not a scalar, a value
            of an unsupported type (named by path, never by value).
    """
    entries: list[Entry] = []
    seen: dict[int, bytes] = {}

    def visit(node: Any, path: Path, depth: int, container: Any, key: Any) -> None:
        if depth > MAX_DEPTH:
            raise FormatError(f"{name}: nested deeper than {MAX_DEPTH} levels")
        pb = encode_path(path)
        shared = isinstance(node, dict | list) or anchor_of(node) is not None
        if shared:
            first = seen.get(id(node))
            if first is not None:
                entries.append(Entry(ALIAS, path, pb, container, key, node, [first]))
                return
            seen[id(node)] = pb
        if isinstance(node, dict):
            merged = _merged(node)
            if merged:
                targets = []
                for i, m in enumerate(merged):
                    if id(m) not in seen:
                        visit(m, (*path, ("key", "<<"), ("index", i)), depth + 1, None, None)
                    targets.append(seen[id(m)])
                entries.append(Entry(MERGE, path, pb, targets=targets))
            for k, v in _own_items(node):
                if isinstance(k, dict | list | tuple):
                    raise FormatError(
                        f"{name}: a mapping key at {format_path(path)} is not a scalar"
                    )
                child = (*path, ("key", k))
                if skip_key(child):
                    continue
                visit(v, child, depth + 1, node, k)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                visit(v, (*path, ("index", i)), depth + 1, node, i)
        elif node is None or isinstance(node, str | int | float):
            entries.append(Entry(LEAF, path, pb, container, key, node))
        else:
            raise FormatError(
                f"{name}: the value at {format_path(path)} has unsupported type "
                f"{type(node).__name__} (quote it to make it a string)"
            )

    for number, doc in enumerate(docs):
        visit(doc, (("doc", number),), 0, docs, number)
    return entries
