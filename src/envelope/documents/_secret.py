"""Kubernetes ``Secret`` manifests: only ``data`` / ``stringData`` values are encrypted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from envelope.documents._format import Path

__all__ = ["is_secret_stream", "secret_documents", "secret_value"]

SECRET_FIELDS = ("data", "stringData")


def _is_secret(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and doc.get("kind") == "Secret"
        and isinstance(doc.get("apiVersion"), str)
        and doc.get("apiVersion") == "v1"
    )


def is_secret_stream(docs: Sequence[Any]) -> bool:
    """Whether a YAML stream is Kubernetes manifests with at least one ``Secret``: every
    document a mapping with ``apiVersion`` and ``kind`` (empty documents aside)."""
    real = [d for d in docs if d is not None]
    return (
        bool(real)
        and all(isinstance(d, dict) and "apiVersion" in d and "kind" in d for d in real)
        and any(_is_secret(d) for d in real)
    )


def secret_documents(docs: Sequence[Any]) -> frozenset[int]:
    """The numbers of the documents that are ``v1`` ``Secret`` objects."""
    return frozenset(i for i, d in enumerate(docs) if _is_secret(d))


def secret_value(path: Path, secrets: frozenset[int]) -> bool:
    """Whether ``path`` is a value under a Secret's ``data`` or ``stringData``."""
    return (
        len(path) >= 3
        and path[0][1] in secrets
        and path[1][0] == "key"
        and path[1][1] in SECRET_FIELDS
    )
