"""``envelope.inspect``: what a message's header says, never key material."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from envelope import chunked
from envelope._format.message import SUITES, VERSION, Header, parse_header
from envelope.errors import DecryptionError

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["MessageInfo", "WrappedKeyInfo", "inspect", "message_info"]


@dataclass(frozen=True, slots=True)
class WrappedKeyInfo:
    """One key slot: who can unwrap the data key (no key bytes)."""

    provider: str
    key_id: str
    wrapped_bytes: int


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """The public facts of an envelope message."""

    version: int
    suite: str
    context: dict[str, str]
    wrapped_keys: tuple[WrappedKeyInfo, ...]
    cluster_secret_id: str | None
    threshold: tuple[int, int] | None
    header_bytes: int
    body_bytes: int
    plaintext_bytes: int | None  # None if the body length is not a valid one

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "version": self.version,
            "suite": self.suite,
            "context": self.context,
            "wrapped_keys": [
                {"provider": w.provider, "key_id": w.key_id, "wrapped_bytes": w.wrapped_bytes}
                for w in self.wrapped_keys
            ],
            "cluster_secret_id": self.cluster_secret_id,
            "threshold": list(self.threshold) if self.threshold else None,
            "header_bytes": self.header_bytes,
            "body_bytes": self.body_bytes,
            "plaintext_bytes": self.plaintext_bytes,
        }


def message_info(header: Header, header_bytes: int, body_bytes: int) -> MessageInfo:
    """Builds a :class:`MessageInfo` from a parsed header and the body's length."""
    try:
        plaintext: int | None = chunked.plaintext_length(body_bytes)
    except DecryptionError:
        plaintext = None
    return MessageInfo(
        VERSION,
        SUITES[header.suite],
        dict(header.context),
        tuple(WrappedKeyInfo(s.provider, s.key_id, len(s.wrapped)) for s in header.slots),
        header.split.cluster_secret_id,
        header.split.threshold,
        header_bytes,
        body_bytes,
        plaintext,
    )


def inspect(blob: Buffer) -> MessageInfo:
    """Parses a message's header without decrypting anything or contacting a KMS.

    Raises:
        FormatError: not an envelope message this version can read.
    """
    view = memoryview(blob).cast("B")
    header, offset = parse_header(view)
    return message_info(header, offset, len(view) - offset)
