"""dotenv files: ``KEY=value`` lines, comments and blank lines kept as written.

Values are unquoted (to the end of the line, an unquoted `` #`` starting a comment),
``'single-quoted'`` (literal) or ``"double-quoted"`` (``\\n``, ``\\"``, ``\\\\`` escapes);
an ``export`` prefix is kept. Every value is a string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from envelope.documents._format import T_DOUBLE, T_SINGLE
from envelope.documents._parsed import DocumentSyntaxError, Parsed

__all__ = ["DotenvFormat"]

_LINE = re.compile(r"(?P<export>export[ \t]+)?(?P<key>[A-Za-z_][A-Za-z0-9_.]*)[ \t]*=[ \t]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


class Single(str):
    """A value written in single quotes."""

    style = "'"


class Double(str):
    """A value written in double quotes."""

    style = '"'


@dataclass
class _Line:
    text: str | None  # a comment or blank line kept verbatim; None for a variable
    key: str = ""
    export: str = ""
    comment: str = ""


def _double(raw: str, name: str, lineno: int, col: int) -> tuple[str, int]:
    out: list[str] = []
    i = 1
    while i < len(raw):
        ch = raw[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch == "\\" and i + 1 < len(raw):
            out.append(_ESCAPES.get(raw[i + 1], "\\" + raw[i + 1]))
            i += 2
            continue
        out.append(ch)
        i += 1
    raise DocumentSyntaxError(name, lineno, col, "unterminated double-quoted value")


def _value(rest: str, name: str, lineno: int, col: int) -> tuple[str, str]:
    """(value, trailing comment) of the text after ``KEY=``."""
    if rest.startswith('"'):
        value, end = _double(rest, name, lineno, col)
        tail = rest[end:]
        typed: str = Double(value)
    elif rest.startswith("'"):
        end = rest.find("'", 1)
        if end < 0:
            raise DocumentSyntaxError(name, lineno, col, "unterminated single-quoted value")
        typed, tail = Single(rest[1:end]), rest[end + 1 :]
    else:
        m = re.search(r"[ \t]+#", rest)
        typed = (rest[: m.start()] if m else rest).rstrip()
        return typed, rest[m.start() :] if m else ""
    if tail.strip() and not tail.lstrip().startswith("#"):
        raise DocumentSyntaxError(name, lineno, col + len(rest) - len(tail), "text after the value")
    return typed, tail


def _quote(value: str) -> str:
    style = getattr(value, "style", "")
    if style == "'" and "'" not in value and "\n" not in value:
        return f"'{value}'"
    if style == '"' or re.search(r"[\s#'\"\\$]", value) or (not value and style):
        escaped = (
            value.replace("\\", "\\\\")
            .replace('"', '\\"')
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
        return f'"{escaped}"'
    return value


class DotenvFormat:
    """A dotenv file."""

    name = "dotenv"

    def parse(self, text: str, name: str) -> Parsed:
        """Raises:
        DocumentSyntaxError: a line that is not ``KEY=value``, or a key given twice."""
        values: dict[str, Any] = {}
        lines: list[_Line] = []
        for lineno, raw in enumerate(text.splitlines(), 1):
            stripped = raw.strip()
            if not stripped or stripped.startswith("#"):
                lines.append(_Line(raw))
                continue
            m = _LINE.match(raw.lstrip())
            indent = len(raw) - len(raw.lstrip())
            if m is None:
                raise DocumentSyntaxError(name, lineno, indent + 1, "expected KEY=value")
            key = m.group("key")
            if key in values:
                raise DocumentSyntaxError(name, lineno, indent + 1, f"duplicate key {key}")
            value, comment = _value(raw.lstrip()[m.end() :], name, lineno, indent + m.end() + 1)
            values[key] = value
            lines.append(_Line(None, key, m.group("export") or "", comment))
        return Parsed(self, [values], (lines, text.endswith("\n") or not text))

    def dump(self, parsed: Parsed) -> str:
        """The lines as read, each variable with its current value (new ones appended)."""
        values: dict[str, Any] = parsed.docs[0]
        lines, newline = parsed.state if parsed.state else ([], True)
        out, written = [], set()
        for line in lines:
            if line.text is not None:
                out.append(line.text)
            elif line.key in values:
                written.add(line.key)
                out.append(f"{line.export}{line.key}={_quote(values[line.key])}{line.comment}")
        for key, value in values.items():
            if key not in written:
                out.append(f"{key}={_quote(value)}")
        return parsed.line_ends("\n".join(out) + ("\n" if newline and out else ""))

    @staticmethod
    def looks_like(line: str) -> bool:
        """Whether a non-comment line is a ``KEY=value`` line."""
        return _LINE.match(line) is not None

    def restore(self, code: bytes, value: Any, anchor: str | None) -> Any:
        """A decrypted value with its quoting."""
        if code == T_SINGLE:
            return Single(value)
        if code == T_DOUBLE:
            return Double(value)
        return value if isinstance(value, str) else _plain_text(value)

    def token(self, token: str, anchor: str | None) -> Any:
        """A value token (never needs quotes)."""
        return token

    def new_mapping(self) -> Any:
        """dotenv has no nesting."""
        raise ValueError("dotenv files have no nested keys")


def _plain_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
