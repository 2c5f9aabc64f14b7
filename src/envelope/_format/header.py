"""The fields of an envelope v1 header (docs/format.md): bounds, suites, split kinds,
key slots, the parsed header, and the bound section with its body context (the
SHA-256 digest the body is bound to), memoized. :mod:`envelope._format.message`
encodes and parses whole headers and re-exports these names."""

from __future__ import annotations

import functools
import hashlib
import struct
from dataclasses import dataclass

from envelope._format.context import Context, encode_context

__all__ = [
    "MAGIC",
    "MAX_HEADER_BYTES",
    "MAX_KEY_ID_BYTES",
    "MAX_KEY_SLOTS",
    "MAX_PROVIDER_ID_BYTES",
    "MAX_SPLIT_ID_BYTES",
    "MAX_WRAPPED_BYTES",
    "PREAMBLE_LEN",
    "SPLIT_CLUSTER_SECRET",
    "SPLIT_NONE",
    "SPLIT_THRESHOLD",
    "SUITES",
    "SUITE_COBBLESTONE_256",
    "VERSION",
    "Header",
    "KeySlot",
    "SplitDescriptor",
    "bound_section",
    "bound_section_for",
    "bound_section_of",
    "encode_split",
]

MAGIC = b"\x89ENV"
VERSION = 1
PREAMBLE_LEN = len(MAGIC) + 1 + 4
MAX_HEADER_BYTES = 64 * 1024
MAX_KEY_SLOTS = 16
MAX_PROVIDER_ID_BYTES = 64
MAX_KEY_ID_BYTES = 2048
MAX_WRAPPED_BYTES = 8192
MAX_SPLIT_ID_BYTES = 64

#: Body: Cobblestone-256 (AES-256-GCM, HKDF-Expand SHA-512); input key from HKDF-SHA512.
SUITE_COBBLESTONE_256 = 0x0001
SUITES = {SUITE_COBBLESTONE_256: "cobblestone-256"}

SPLIT_NONE = 0
SPLIT_CLUSTER_SECRET = 1
SPLIT_THRESHOLD = 2

_DIGEST_LABEL = b"envelope.dev/v1 header\x00"


@dataclass(frozen=True, slots=True)
class KeySlot:
    """One wrapped copy of the message's data key: who wrapped it, under which key."""

    provider: str
    key_id: str
    wrapped: bytes

    def __repr__(self) -> str:
        return (
            f"KeySlot(provider={self.provider!r}, key_id={self.key_id!r}, "
            f"wrapped=<{len(self.wrapped)} bytes>)"
        )


@dataclass(frozen=True, slots=True)
class SplitDescriptor:
    """How the input key is split: ``cluster_secret_id`` names the cluster part needed
    (or None); ``threshold`` is ``(k, n)`` when the data key is shared k-of-n across the
    key slots (Shamir), or None when every slot wraps the whole data key (any-of)."""

    cluster_secret_id: str | None = None
    threshold: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Header:
    """A parsed v1 header."""

    suite: int
    context: Context
    split: SplitDescriptor
    slots: tuple[KeySlot, ...]

    @property
    def bound_bytes(self) -> bytes:
        """The part of the header covered by the body's context digest."""
        return _encode_bound(self)


def _u8(n: int) -> bytes:
    return struct.pack(">B", n)


def _u16(n: int) -> bytes:
    return struct.pack(">H", n)


def _encode_bound(h: Header) -> bytes:
    return bound_section_of(h)[0]


def bound_section_of(h: Header) -> tuple[bytes, bytes]:
    """:func:`bound_section_for` of a header's suite, context and split."""
    return bound_section_for(h.suite, h.context, h.split)


def bound_section_for(suite: int, context: Context, split: SplitDescriptor) -> tuple[bytes, bytes]:
    """The bound section and body context (the SHA-256 digest) of a header with these
    fields: they do not depend on the key slots, so every message under one context and
    split shares them (memoized)."""
    # Keyed by the split's fields: a dataclass's hash and == are Python calls.
    sid, threshold = split.cluster_secret_id, split.threshold
    try:
        return bound_section(suite, context, sid, threshold)
    except TypeError:  # an unhashable context (a list of pairs)
        return bound_section.__wrapped__(suite, context, sid, threshold)


@functools.lru_cache(maxsize=4096)
def bound_section(
    suite: int, context: Context, sid: str | None, threshold: tuple[int, int] | None
) -> tuple[bytes, bytes]:
    split = SplitDescriptor(sid, threshold)
    bound = _u16(suite) + encode_context(context) + encode_split(split)
    return bound, hashlib.sha256(_DIGEST_LABEL + MAGIC + _u8(VERSION) + bound).digest()


def encode_split(split: SplitDescriptor) -> bytes:
    """The split descriptor's bytes (docs/format.md): a kind byte of flags (1: cluster
    part, 2: threshold), then ``k, n`` if threshold, then the part id if cluster."""
    kind = (SPLIT_CLUSTER_SECRET if split.cluster_secret_id is not None else 0) | (
        SPLIT_THRESHOLD if split.threshold is not None else 0
    )
    out = _u8(kind)
    if split.threshold is not None:
        out += _u8(split.threshold[0]) + _u8(split.threshold[1])
    if split.cluster_secret_id is not None:
        sid = split.cluster_secret_id.encode("ascii")
        out += _u8(len(sid)) + sid
    return out
