"""YAML through ruamel.yaml's round-trip mode: comments, order, anchors, styles kept."""

from __future__ import annotations

import io
import itertools
import re
from dataclasses import dataclass
from typing import Any

from envelope.documents._format import (
    MAX_DEPTH,
    T_BOOL,
    T_DOUBLE,
    T_FLOAT,
    T_FOLDED,
    T_INT,
    T_LITERAL,
    T_SINGLE,
)
from envelope.documents._parsed import DocumentSyntaxError, Parsed
from envelope.errors import ConfigError, FormatError

__all__ = ["YamlFormat"]


def _ruamel() -> Any:
    try:
        import ruamel.yaml  # noqa: PLC0415 - the documents extra
    except ImportError:
        raise ConfigError(
            "YAML documents need ruamel.yaml: pip install 'envelope-kms[documents]'"
        ) from None
    return ruamel.yaml


@dataclass
class _Layout:
    mapping: int
    sequence: int
    offset: int
    explicit_start: bool
    final_newline: bool


def _guess_layout(text: str) -> _Layout:
    """Indentation of nested mappings and of sequences under a key, as first written."""
    mapping = offset = None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    for prev, line in itertools.pairwise(lines):
        if not prev.rstrip().endswith(":"):
            continue
        grow = (len(line) - len(line.lstrip())) - (len(prev) - len(prev.lstrip()))
        if line.lstrip().startswith("- "):
            offset = grow if offset is None and grow >= 0 else offset
        elif mapping is None and grow > 0:
            mapping = grow
        if mapping is not None and offset is not None:
            break
    m = 2 if mapping is None else mapping
    o = 0 if offset is None else offset
    start = re.match(r"(\s*#[^\n]*\n)*\s*---", text) is not None
    return _Layout(m, max(o + 2, m), o, start, text.endswith("\n") or not text)


_TOKEN_TEXT = re.compile(r"ENV\[v1,[A-Za-z0-9_-]+\]")
_QUOTED = re.compile(r"'[^']*'|\"(?:[^\"\\]|\\.)*\"")
_DASHES = re.compile(r"(?:-[ \t]+)+")


def _depth_within(text: str, limit: int) -> bool:
    """A linear pre-parse bound on nesting: open block indentation levels, plus
    compact ``- - x`` dashes, plus flow brackets (outside quotes and comments)."""
    stack: list[int] = []
    flow = 0
    for line in text.splitlines():
        body = line.lstrip(" ")
        if not body or body.startswith("#"):
            continue
        if flow == 0:
            indent = len(line) - len(body)
            while stack and stack[-1] >= indent:
                stack.pop()
            stack.append(indent)
        dashes = _DASHES.match(body)
        block = len(stack) + (dashes.group(0).count("-") if dashes else 0)
        code = _QUOTED.sub("", body).split(" #", 1)[0]
        peak = flow
        for ch in code:
            if ch in "[{":
                flow += 1
                peak = max(peak, flow)
            elif ch in "]}":
                flow = max(flow - 1, 0)
        if block + peak > limit:
            return False
    return True


def _width(value: Any) -> int | None:
    """The width of a one-line scalar as written (None: block or multi-line)."""
    style = getattr(value, "style", None)
    if isinstance(value, str):
        if style in ("|", ">") or "\n" in value:
            return None
        return len(value) + (2 if style in ("'", '"') else 0)
    if value is None:
        return 4
    if isinstance(value, bool):
        return 4 if value else 5
    if isinstance(value, int):
        return len(str(int(value)))
    if isinstance(value, float):
        return len(repr(float(value)))
    return None


_EMITTERS: dict[int, Any] = {}


def _token_emitter(ry: Any) -> Any:
    """ruamel's Emitter, analysing value tokens (plain-safe by construction) without
    its per-character scan: that scan is most of the time to write an encrypted file."""
    cached = _EMITTERS.get(id(ry))
    if cached is not None:
        return cached
    base = ry.emitter.Emitter
    analysis = ry.emitter.ScalarAnalysis

    class TokenEmitter(base):  # type: ignore[misc, valid-type]
        def analyze_scalar(self, scalar: str) -> Any:
            if _TOKEN_TEXT.fullmatch(scalar):
                return analysis(
                    scalar=scalar,
                    empty=False,
                    multiline=False,
                    allow_flow_plain=False,  # [ ] , are flow indicators
                    allow_block_plain=True,
                    allow_single_quoted=True,
                    allow_double_quoted=True,
                    allow_block=False,
                )
            return super().analyze_scalar(scalar)

    _EMITTERS[id(ry)] = TokenEmitter
    return TokenEmitter


class YamlFormat:
    """YAML streams (one or more documents)."""

    name = "yaml"

    def _yaml(self, layout: _Layout | None = None) -> Any:
        ry = _ruamel()
        y = ry.YAML(typ="rt")
        y.preserve_quotes = True
        y.width = 1 << 30
        y.allow_duplicate_keys = False
        if layout is not None:
            y.indent(mapping=layout.mapping, sequence=layout.sequence, offset=layout.offset)
            y.explicit_start = layout.explicit_start
        y.Emitter = _token_emitter(ry)
        y.representer.add_representer(
            type(None), lambda r, _d: r.represent_scalar("tag:yaml.org,2002:null", "null")
        )
        return y

    def parse(self, text: str, name: str) -> Parsed:
        """Raises:
        DocumentSyntaxError: invalid YAML or a duplicate key (file, line, column).
        FormatError: nested too deep."""
        ry = _ruamel()
        layout = _guess_layout(text)
        try:
            if not _depth_within(text, MAX_DEPTH):
                raise FormatError(f"{name}: nested deeper than {MAX_DEPTH} levels")
            docs = list(self._yaml(layout).load_all(text))
        except RecursionError:
            raise FormatError(f"{name}: nested deeper than {MAX_DEPTH} levels") from None
        except ry.error.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problem = (exc.problem or exc.context or "invalid YAML").split("\n")[0]
            if isinstance(exc, ry.constructor.DuplicateKeyError):
                problem = "duplicate mapping key"
            line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
            raise DocumentSyntaxError(name, line, col, problem) from None
        except ry.error.YAMLError as exc:
            raise DocumentSyntaxError(name, 0, 0, str(exc).split("\n")[0]) from None
        if not docs:
            docs = [None]
        return Parsed(self, docs, layout)

    def dump(self, parsed: Parsed) -> str:
        """The documents as YAML text, in the layout they were read with."""
        out = io.StringIO()
        layout = parsed.state if isinstance(parsed.state, _Layout) else None
        y = self._yaml(layout)
        if len(parsed.docs) > 1:
            y.explicit_start = True
        y.dump_all(parsed.docs, out)
        text = out.getvalue()
        if len(parsed.docs) > 1 and not (layout and layout.explicit_start):
            text = text.removeprefix("---\n")
        if parsed.docs == [None]:
            return ""
        return parsed.line_ends(text)

    def restore(self, code: bytes, value: Any, anchor: str | None) -> Any:
        """A decrypted value as a round-trip node, with its scalar style and anchor."""
        ry = _ruamel()
        ss = ry.scalarstring
        kw = {"anchor": anchor} if anchor else {}
        if isinstance(value, str):
            cls = {
                T_SINGLE: ss.SingleQuotedScalarString,
                T_DOUBLE: ss.DoubleQuotedScalarString,
                T_LITERAL: ss.LiteralScalarString,
                T_FOLDED: ss.FoldedScalarString,
            }.get(code, ss.PlainScalarString if anchor else None)
            return cls(value, **kw) if cls is not None else value
        if anchor and code == T_INT:
            return ry.scalarint.ScalarInt(value, **kw)
        if anchor and code == T_FLOAT:
            return ry.scalarfloat.ScalarFloat(value, **kw)
        if anchor and code == T_BOOL:
            return ry.scalarbool.ScalarBoolean(value, **kw)
        return value

    def token(self, token: str, anchor: str | None) -> Any:
        """The node holding a value token (anchored if the value was)."""
        if anchor:
            return _ruamel().scalarstring.PlainScalarString(token, anchor=anchor)
        return token

    def relayout(self, entry: Any, old: Any) -> None:
        """Moves the end-of-line comment after a replaced scalar by the change in its
        width, so that ``value  # comment`` keeps its gap both ways."""
        ca = getattr(entry.container, "ca", None)
        item = ca.items.get(entry.key) if ca is not None else None
        if not item:
            return
        tok = item[2] if isinstance(entry.container, dict) else item[0]
        widths = (_width(old), _width(entry.value))
        if tok is None or not hasattr(tok, "column") or None in widths:
            return
        tok.column = max(tok.column + widths[1] - widths[0], 0)

    def new_mapping(self) -> Any:
        """An empty mapping of this format (for ``set`` on a missing parent)."""
        return _ruamel().comments.CommentedMap()
