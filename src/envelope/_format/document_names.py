"""Which structured-document format a file name says (no parser imported: the CLI
decides whole-file message or document before it loads ``envelope.documents``)."""

from __future__ import annotations

from pathlib import PurePath

__all__ = ["EXTENSIONS", "format_by_name"]

#: File extensions of the structured document formats.
EXTENSIONS = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".env": "dotenv"}


def format_by_name(name: str) -> str | None:
    """The document format ``name``'s extension names (``.env`` files too), else None."""
    p = PurePath(name)
    for suffix in reversed(p.suffixes):
        if suffix in EXTENSIONS:
            return EXTENSIONS[suffix]
    if p.name == ".env" or p.name.startswith(".env.") or p.name.endswith(".env"):
        return "dotenv"
    return None
