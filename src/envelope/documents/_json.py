"""JSON documents: one top-level object, key order and indentation kept."""

from __future__ import annotations

import json
import re
from typing import Any

from envelope.documents._format import MAX_DEPTH, depth_of_brackets
from envelope.documents._parsed import DocumentSyntaxError, Parsed
from envelope.errors import FormatError

__all__ = ["JsonFormat"]


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class JsonFormat:
    """A JSON text (RFC 8259; NaN and Infinity refused)."""

    name = "json"

    def parse(self, text: str, name: str) -> Parsed:
        """Raises:
        DocumentSyntaxError: invalid JSON or a duplicate key (file, line, column).
        FormatError: nested too deep."""
        if not depth_of_brackets(text, MAX_DEPTH):
            raise FormatError(f"{name}: nested deeper than {MAX_DEPTH} levels")
        try:
            doc = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_constant)
        except json.JSONDecodeError as exc:
            raise DocumentSyntaxError(name, exc.lineno, exc.colno, exc.msg) from None
        except _DuplicateKey:
            raise DocumentSyntaxError(name, 0, 0, "duplicate object key") from None
        except ValueError as exc:
            raise DocumentSyntaxError(name, 0, 0, str(exc)) from None
        m = re.search(r"\n([ \t]+)\S", text)
        indent = m.group(1) if m else None
        return Parsed(self, [doc], (indent, text.endswith("\n")))

    def dump(self, parsed: Parsed) -> str:
        """The object as JSON with the indentation it was read with (default 2)."""
        indent, newline = parsed.state if parsed.state else ("  ", True)
        if len(parsed.docs) != 1:
            raise ValueError("JSON holds exactly one document")
        text = json.dumps(parsed.docs[0], indent=indent, ensure_ascii=False)
        return parsed.line_ends(text + ("\n" if newline else ""))

    def restore(self, code: bytes, value: Any, anchor: str | None) -> Any:
        """A decrypted value (JSON keeps only its type)."""
        return value

    def token(self, token: str, anchor: str | None) -> Any:
        """The JSON string holding a value token."""
        return token

    def new_mapping(self) -> Any:
        """An empty object."""
        return {}
