"""What every format handler produces: the parsed documents and how to write them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from envelope.errors import FormatError

__all__ = ["DocumentSyntaxError", "Format", "Parsed"]


class DocumentSyntaxError(FormatError):
    """A document is not valid YAML, JSON or dotenv (or repeats a key): names the file,
    line and column (1-based; 0 when unknown), never a value."""

    def __init__(self, name: str, line: int, column: int, problem: str) -> None:
        where = f"{name}:{line}:{column}" if line else name
        super().__init__(f"{where}: {problem}")
        self.file, self.line, self.column = name, line, column


class Format(Protocol):
    """A format handler (YAML, JSON, dotenv)."""

    name: str

    def parse(self, text: str, name: str) -> Parsed: ...

    def dump(self, parsed: Parsed) -> str: ...

    def restore(self, code: bytes, value: Any, anchor: str | None) -> Any: ...

    def token(self, token: str, anchor: str | None) -> Any: ...

    def new_mapping(self) -> Any: ...


@dataclass
class Parsed:
    """Parsed documents (a list: YAML streams hold several) and the handler's layout."""

    handler: Format
    docs: list[Any]
    state: Any = None
    #: the text used CRLF line ends (written back with them)
    crlf: bool = False

    def line_ends(self, text: str) -> str:
        """``text`` with the line ends the document was read with."""
        return text.replace("\n", "\r\n") if self.crlf else text
