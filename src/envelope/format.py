"""The envelope v1 wire format (specified byte by byte in docs/format.md).

```
magic "\\x89ENV" | version 0x01 | u32 header length H | header (H bytes) | Cobblestone-256 body
header = bound section | key slots
bound  = u16 suite | context pairs | split descriptor
slots  = u8 count | count x (provider id, key id, wrapped key)
```

The body's Cobblestone context is SHA-256 over a label, the magic, the version and the
bound section. Key slots are left out of that digest so a message can be rewrapped
without touching its body; a tampered slot still fails, because it unwraps to a
different data key (or none) and the body's key commitment rejects it.

Every length is bounded and checked before anything is allocated.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import BinaryIO

from envelope.context import (
    MAX_CONTEXT_KEY_BYTES,
    MAX_CONTEXT_PAIRS,
    MAX_CONTEXT_VALUE_BYTES,
    Context,
    encode_context,
)
from envelope.errors import FormatError

__all__ = [
    "MAGIC",
    "MAX_HEADER_BYTES",
    "MAX_KEY_SLOTS",
    "PREAMBLE_LEN",
    "SUITE_COBBLESTONE_256",
    "VERSION",
    "Header",
    "KeySlot",
    "SplitDescriptor",
    "body_context",
    "encode_header",
    "parse_header",
    "read_header",
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
    """How the input key is split: ``cluster_secret_id`` names the part needed, or None."""

    cluster_secret_id: str | None = None


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
    out = [_u16(h.suite), encode_context(h.context)]
    if h.split.cluster_secret_id is None:
        out.append(_u8(SPLIT_NONE))
    else:
        sid = h.split.cluster_secret_id.encode("ascii")
        out += [_u8(SPLIT_CLUSTER_SECRET), _u8(len(sid)), sid]
    return b"".join(out)


def _encode_slots(slots: tuple[KeySlot, ...]) -> bytes:
    out = [_u8(len(slots))]
    for s in slots:
        p, k = s.provider.encode("ascii"), s.key_id.encode()
        out += [_u8(len(p)), p, _u16(len(k)), k, _u16(len(s.wrapped)), s.wrapped]
    return b"".join(out)


def _check_encodable(h: Header) -> None:
    if h.suite not in SUITES:
        raise ValueError(f"unknown suite {h.suite:#06x}")
    if not 1 <= len(h.slots) <= MAX_KEY_SLOTS:
        raise ValueError(f"a message carries 1 to {MAX_KEY_SLOTS} wrapped keys, not {len(h.slots)}")
    if len(h.context) > MAX_CONTEXT_PAIRS:
        raise ValueError("too many context pairs")
    for s in h.slots:
        if not 1 <= len(s.provider) <= MAX_PROVIDER_ID_BYTES or not s.provider.isascii():
            raise ValueError(f"provider id {s.provider!r} must be 1 to 64 ASCII characters")
        if not 1 <= len(s.key_id.encode()) <= MAX_KEY_ID_BYTES:
            raise ValueError(f"key id {s.key_id!r} must be 1 to 2048 UTF-8 bytes")
        if not 1 <= len(s.wrapped) <= MAX_WRAPPED_BYTES:
            raise ValueError(f"wrapped key of {s.key_id!r} must be 1 to 8192 bytes")
    sid = h.split.cluster_secret_id
    if sid is not None and (not 1 <= len(sid) <= MAX_SPLIT_ID_BYTES or not sid.isascii()):
        raise ValueError(f"cluster-secret id {sid!r} must be 1 to 64 ASCII characters")


def encode_header(h: Header) -> bytes:
    """Returns the full message preamble and header: magic, version, length, header.

    Raises:
        ValueError: a field exceeds its bound (see docs/format.md).
    """
    _check_encodable(h)
    body = _encode_bound(h) + _encode_slots(h.slots)
    if len(body) > MAX_HEADER_BYTES:
        raise ValueError(f"header would be {len(body)} bytes; at most {MAX_HEADER_BYTES}")
    return MAGIC + _u8(VERSION) + struct.pack(">I", len(body)) + body


def body_context(h: Header) -> bytes:
    """The Cobblestone context of the body: SHA-256 over the version and bound section."""
    return hashlib.sha256(_DIGEST_LABEL + MAGIC + _u8(VERSION) + h.bound_bytes).digest()


def _preamble_length(preamble: bytes) -> int:
    if len(preamble) < PREAMBLE_LEN:
        raise FormatError("not an envelope message: too short")
    if preamble[:4] != MAGIC:
        raise FormatError("not an envelope message: bad magic bytes")
    version = preamble[4]
    if version != VERSION:
        raise FormatError(
            f"unsupported envelope message version {version}; this library reads version "
            f"{VERSION} (upgrade envelope-kms to read newer messages)"
        )
    (length,) = struct.unpack_from(">I", preamble, 5)
    if length > MAX_HEADER_BYTES:
        raise FormatError(f"header length {length} exceeds the {MAX_HEADER_BYTES}-byte limit")
    return int(length)


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: memoryview) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.buf):
            raise FormatError(f"malformed header: truncated {what}")
        out = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return out

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        return int(struct.unpack(">H", self.take(2, what))[0])

    def text(self, n: int, what: str, *, ascii_only: bool = False) -> str:
        raw = self.take(n, what)
        try:
            return raw.decode("ascii" if ascii_only else "utf-8")
        except UnicodeDecodeError:
            raise FormatError(f"malformed header: {what} is not valid text") from None


def _parse_body(buf: memoryview) -> Header:
    r = _Reader(buf)
    suite = r.u16("suite")
    if suite not in SUITES:
        raise FormatError(f"unsupported suite {suite:#06x} in envelope header")
    n_ctx = r.u16("context count")
    if n_ctx > MAX_CONTEXT_PAIRS:
        raise FormatError(f"malformed header: {n_ctx} context pairs (at most {MAX_CONTEXT_PAIRS})")
    pairs: list[tuple[str, str]] = []
    prev: bytes | None = None
    for _ in range(n_ctx):
        klen = r.u16("context key length")
        if not 1 <= klen <= MAX_CONTEXT_KEY_BYTES:
            raise FormatError("malformed header: context key length out of bounds")
        kb = r.take(klen, "context key")
        vlen = r.u16("context value length")
        if vlen > MAX_CONTEXT_VALUE_BYTES:
            raise FormatError("malformed header: context value length out of bounds")
        value = r.text(vlen, "context value")
        if prev is not None and kb <= prev:
            raise FormatError("malformed header: context keys not in canonical order")
        prev = kb
        try:
            pairs.append((kb.decode("utf-8"), value))
        except UnicodeDecodeError:
            raise FormatError("malformed header: context key is not valid UTF-8") from None
    split_kind = r.u8("split descriptor")
    if split_kind == SPLIT_NONE:
        split = SplitDescriptor()
    elif split_kind == SPLIT_CLUSTER_SECRET:
        n = r.u8("cluster-secret id length")
        if not 1 <= n <= MAX_SPLIT_ID_BYTES:
            raise FormatError("malformed header: cluster-secret id length out of bounds")
        split = SplitDescriptor(r.text(n, "cluster-secret id", ascii_only=True))
    else:
        raise FormatError(f"unsupported split descriptor kind {split_kind}")
    n_slots = r.u8("key slot count")
    if not 1 <= n_slots <= MAX_KEY_SLOTS:
        raise FormatError(
            f"malformed header: {n_slots} wrapped keys (1 to {MAX_KEY_SLOTS} allowed)"
        )
    slots = []
    for _ in range(n_slots):
        plen = r.u8("provider id length")
        if not 1 <= plen <= MAX_PROVIDER_ID_BYTES:
            raise FormatError("malformed header: provider id length out of bounds")
        provider = r.text(plen, "provider id", ascii_only=True)
        klen = r.u16("key id length")
        if not 1 <= klen <= MAX_KEY_ID_BYTES:
            raise FormatError("malformed header: key id length out of bounds")
        key_id = r.text(klen, "key id")
        wlen = r.u16("wrapped key length")
        if not 1 <= wlen <= MAX_WRAPPED_BYTES:
            raise FormatError("malformed header: wrapped key length out of bounds")
        slots.append(KeySlot(provider, key_id, r.take(wlen, "wrapped key")))
    if r.pos != len(buf):
        raise FormatError("malformed header: trailing bytes after the key slots")
    return Header(suite, tuple(pairs), split, tuple(slots))


def parse_header(message: bytes | bytearray | memoryview) -> tuple[Header, int]:
    """Parses the header at the start of ``message``.

    Returns:
        The header and the offset where the body starts.

    Raises:
        FormatError: not an envelope message, an unsupported version or suite, or a
            malformed or oversized header (the message says which).
    """
    view = memoryview(message).cast("B")
    length = _preamble_length(bytes(view[:PREAMBLE_LEN]))
    end = PREAMBLE_LEN + length
    if len(view) < end:
        raise FormatError("not an envelope message: truncated header")
    return _parse_body(view[PREAMBLE_LEN:end]), end


def read_header(stream: BinaryIO) -> Header:
    """Reads and parses a header from ``stream``, leaving it positioned at the body.

    The header length is checked against the 64 KiB limit before it is read.

    Raises:
        FormatError: as :func:`parse_header`.
    """
    preamble = _read_exactly(stream, PREAMBLE_LEN)
    length = _preamble_length(preamble)
    body = _read_exactly(stream, length)
    if len(body) < length:
        raise FormatError("not an envelope message: truncated header")
    return _parse_body(memoryview(body))


def _read_exactly(stream: BinaryIO, n: int) -> bytes:
    parts = []
    remaining = n
    while remaining:
        piece = stream.read(remaining)
        if not piece:
            break
        parts.append(piece)
        remaining -= len(piece)
    return b"".join(parts)
