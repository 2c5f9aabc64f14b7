"""Three-way merge of decrypted documents (the git merge driver).

Mappings merge key by key (recursively); anything else (scalars, sequences) is one
value. A change on one side only is taken; the same change on both sides is taken once;
different changes to the same value are a conflict, which keeps "ours" and is reported.
The result is built on "ours" (its comments, order and layout), with "theirs"' additions
appended in their order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from envelope.documents._core import Opened
from envelope.documents._format import Path, format_path
from envelope.documents._plain import to_plain

__all__ = ["merge_documents", "merge_opened"]

_MISSING = object()


def _plain(node: Any) -> Any:
    return _MISSING if node is _MISSING else to_plain(node)


def _merge(base: Any, ours: Any, theirs: Any, path: Path, conflicts: list[str]) -> Any:
    """The merged node, built by mutating ``ours`` where it is a mapping."""
    pb, po, pt = _plain(base), _plain(ours), _plain(theirs)
    if pt in (po, pb):
        return ours
    if po == pb:
        return theirs
    if (
        isinstance(ours, Mapping)
        and isinstance(theirs, Mapping)
        and (base is _MISSING or isinstance(base, Mapping))
    ):
        base_map: Mapping[Any, Any] = base if isinstance(base, Mapping) else {}
        for key in list(ours.keys()) + [k for k in theirs if k not in ours]:
            b = base_map.get(key, _MISSING)
            o = ours.get(key, _MISSING)
            t = theirs.get(key, _MISSING)
            merged = _merge(b, o, t, (*path, ("key", key)), conflicts)
            if merged is _MISSING:
                if key in ours:
                    del ours[key]  # type: ignore[attr-defined]
            elif merged is not o:
                ours[key] = merged  # type: ignore[index]
        return ours
    conflicts.append(format_path(path))
    return ours


def merge_documents(base: list[Any], ours: list[Any], theirs: list[Any]) -> list[str]:
    """Merges ``theirs`` into ``ours`` in place (documents matched by position).

    Returns:
        The paths left in conflict (ours kept there); empty when the merge is clean.
    """
    conflicts: list[str] = []
    for i in range(max(len(ours), len(theirs))):
        b = base[i] if i < len(base) else _MISSING
        o = ours[i] if i < len(ours) else _MISSING
        t = theirs[i] if i < len(theirs) else _MISSING
        merged = _merge(b, o, t, (("doc", i),), conflicts)
        if i < len(ours):
            if merged is not o and merged is not _MISSING:
                ours[i] = merged
        elif merged is not _MISSING:
            ours.append(merged)
    return conflicts


def merge_opened(base: Opened, ours: Opened, theirs: Opened) -> tuple[str, list[str]]:
    """Merges three decrypted versions and re-seals the result under ours' data key
    (values unchanged from ours, or from theirs when both share the data key, keep
    their ciphertext). Returns the encrypted text and the conflicting paths."""
    conflicts = merge_documents(base.parsed.docs, ours.parsed.docs, theirs.parsed.docs)
    if theirs.meta.header == ours.meta.header:  # same data key: their tokens stay valid
        for pb, pair in theirs.previous.items():
            ours.previous.setdefault(pb, pair)
    ours.reseal(ours.parsed)
    return ours.parsed.handler.dump(ours.parsed), conflicts
