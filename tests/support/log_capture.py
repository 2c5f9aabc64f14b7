"""Capturing the ``envelope`` logger's records, and the text forms a secret could leak
in, for the tests that scan logs for key material."""

from __future__ import annotations

import base64
import contextlib
import logging
from collections.abc import Iterator

__all__ = ["Capture", "capture_envelope_logs", "forms", "record_text"]


class Capture(logging.Handler):
    """Keeps every record it is given."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def capture_envelope_logs() -> Iterator[Capture]:
    """Every record of the ``envelope`` loggers, at DEBUG, while the block runs."""
    root = logging.getLogger("envelope")
    handler, level = Capture(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def forms(secret: bytes) -> list[str]:
    """Every text form a secret could leak in."""
    return [
        secret.hex(),
        secret.hex().upper(),
        base64.b64encode(secret).decode(),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
        base64.b64encode(secret).decode().rstrip("="),
        repr(secret),
        secret.decode("latin-1"),
        str(list(secret)),
    ]


def record_text(record: logging.LogRecord) -> str:
    """A record's message and every attribute, as one string to scan."""
    return record.getMessage() + " " + repr(vars(record))
