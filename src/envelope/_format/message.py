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

import struct
from typing import BinaryIO

from envelope._format.context import (
    MAX_CONTEXT_KEY_BYTES,
    MAX_CONTEXT_PAIRS,
    MAX_CONTEXT_VALUE_BYTES,
    Context,
)
from envelope._format.header import (
    MAGIC,
    MAX_HEADER_BYTES,
    MAX_KEY_ID_BYTES,
    MAX_KEY_SLOTS,
    MAX_PROVIDER_ID_BYTES,
    MAX_SPLIT_ID_BYTES,
    MAX_WRAPPED_BYTES,
    PREAMBLE_LEN,
    SPLIT_CLUSTER_SECRET,
    SPLIT_THRESHOLD,
    SUITE_COBBLESTONE_256,
    SUITES,
    VERSION,
    Header,
    KeySlot,
    SplitDescriptor,
    bound_section_for,
    bound_section_of,
    encode_split,
)
from envelope._format.well_formed import parse_well_formed
from envelope.errors import FormatError

__all__ = [  # with the header fields' names from envelope._format.header
    "MAGIC",
    "MAX_HEADER_BYTES",
    "MAX_KEY_SLOTS",
    "PREAMBLE_LEN",
    "SUITES",
    "SUITE_COBBLESTONE_256",
    "VERSION",
    "Header",
    "KeySlot",
    "SplitDescriptor",
    "body_context",
    "encode_header",
    "encode_message_header",
    "encode_split",
    "header_end",
    "parse_header",
    "read_header",
]

_PREAMBLE = struct.Struct(">4sBI")  # magic, version, header length


def encode_slots(slots: tuple[KeySlot, ...]) -> bytes:
    """The key slots' bytes (docs/format.md)."""
    out = [bytes((len(slots),))]
    for s in slots:
        p, k, w = s.provider.encode("ascii"), s.key_id.encode(), s.wrapped
        out += [bytes((len(p),)), p, len(k).to_bytes(2, "big"), k, len(w).to_bytes(2, "big"), w]
    return b"".join(out)


def _check_encodable(h: Header) -> None:
    if h.suite not in SUITES:
        raise ValueError(f"unknown suite {h.suite:#06x}")
    check_encodable(h.context, h.split, h.slots)


def check_encodable(context: Context, split: SplitDescriptor, slots: tuple[KeySlot, ...]) -> None:
    """Raises ValueError if a context, split descriptor or key slots exceed their bounds."""
    if not 1 <= len(slots) <= MAX_KEY_SLOTS:
        raise ValueError(f"a message carries 1 to {MAX_KEY_SLOTS} wrapped keys, not {len(slots)}")
    if len(context) > MAX_CONTEXT_PAIRS:
        raise ValueError("too many context pairs")
    for s in slots:
        if not 1 <= len(s.provider) <= MAX_PROVIDER_ID_BYTES or not s.provider.isascii():
            raise ValueError(f"provider id {s.provider!r} must be 1 to 64 ASCII characters")
        if not 1 <= len(s.key_id.encode()) <= MAX_KEY_ID_BYTES:
            raise ValueError(f"key id {s.key_id!r} must be 1 to 2048 UTF-8 bytes")
        if not 1 <= len(s.wrapped) <= MAX_WRAPPED_BYTES:
            raise ValueError(f"wrapped key of {s.key_id!r} must be 1 to 8192 bytes")
    if split.threshold is not None:
        k, n = split.threshold
        if not 1 <= k <= n <= MAX_KEY_SLOTS or n != len(slots):
            raise ValueError(f"threshold {k}-of-{n} needs 1 <= k <= n <= 16 and one slot per share")
    sid = split.cluster_secret_id
    if sid is not None and (not 1 <= len(sid) <= MAX_SPLIT_ID_BYTES or not sid.isascii()):
        raise ValueError(f"cluster-secret id {sid!r} must be 1 to 64 ASCII characters")


def encode_header(h: Header) -> bytes:
    """Returns the full message preamble and header: magic, version, length, header.

    Raises:
        ValueError: a field exceeds its bound (see docs/format.md).
    """
    _check_encodable(h)
    return _framed(bound_section_of(h)[0], h.slots)


def encode_message_header(
    context: Context, split: SplitDescriptor, slots: tuple[KeySlot, ...]
) -> tuple[bytes, bytes]:
    """:func:`encode_header` and :func:`body_context` of a new Cobblestone-256 message's
    header, in one call (no :class:`Header` is built).

    Raises:
        ValueError: as :func:`encode_header`.
    """
    check_encodable(context, split, slots)
    bound, digest = bound_section_for(SUITE_COBBLESTONE_256, context, split)
    return _framed(bound, slots), digest


def _framed(bound: bytes, slots: tuple[KeySlot, ...]) -> bytes:
    """Preamble, bound section and key slots: the whole header.

    Raises:
        ValueError: the header would exceed MAX_HEADER_BYTES.
    """
    body = bound + encode_slots(slots)
    if len(body) > MAX_HEADER_BYTES:
        raise ValueError(f"header would be {len(body)} bytes; at most {MAX_HEADER_BYTES}")
    return _PREAMBLE.pack(MAGIC, VERSION, len(body)) + body


def body_context(h: Header) -> bytes:
    """The Cobblestone context of the body: SHA-256 over the version and bound section."""
    return bound_section_of(h)[1]


def preamble_length(preamble: bytes, magic: bytes = MAGIC, what: str = "envelope message") -> int:
    """Checks magic and version of a 9-byte preamble; returns the header length.

    Raises:
        FormatError: wrong magic, unknown version, or a header over the 64 KiB limit.
    """
    if len(preamble) < PREAMBLE_LEN:
        raise FormatError(f"not an {what}: too short")
    if preamble[:4] != magic:
        raise FormatError(f"not an {what}: bad magic bytes")
    version = preamble[4]
    if version != VERSION:
        raise FormatError(
            f"unsupported {what} version {version}; this library reads version "
            f"{VERSION} (upgrade envelope-kms to read newer ones)"
        )
    (length,) = struct.unpack_from(">I", preamble, 5)
    if length > MAX_HEADER_BYTES:
        raise FormatError(f"header length {length} exceeds the {MAX_HEADER_BYTES}-byte limit")
    return int(length)


class Reader:
    """A bounds-checked cursor over header bytes; every overrun is a FormatError."""

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
    """The header in ``buf``: the one-pass parser of :mod:`envelope._format.well_formed`
    for the common case, else :func:`_parse_checked`, which says what is wrong (both
    accept exactly the same headers; tests/unit/test_parser_robustness.py compares)."""
    header = parse_well_formed(bytes(buf))
    return header if header is not None else _parse_checked(buf)


def _parse_checked(buf: memoryview) -> Header:
    r = Reader(buf)
    suite = r.u16("suite")
    if suite not in SUITES:
        raise FormatError(f"unsupported suite {suite:#06x} in envelope header")
    context = parse_context(r)
    split = parse_split(r)
    slots = parse_slots(r)
    if r.pos != len(buf):
        raise FormatError("malformed header: trailing bytes after the key slots")
    return Header(suite, context, split, slots)


def parse_context(r: Reader) -> Context:
    """Reads a canonical context (bounded; strictly increasing keys)."""
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
    return tuple(pairs)


def parse_split(r: Reader) -> SplitDescriptor:
    """Reads a split descriptor."""
    kind = r.u8("split descriptor")
    if kind & ~(SPLIT_CLUSTER_SECRET | SPLIT_THRESHOLD):
        raise FormatError(f"unsupported split descriptor kind {kind}")
    threshold = None
    if kind & SPLIT_THRESHOLD:
        k, n = r.u8("threshold k"), r.u8("threshold n")
        if not 1 <= k <= n <= MAX_KEY_SLOTS:
            raise FormatError(f"malformed header: threshold {k}-of-{n} out of bounds")
        threshold = (k, n)
    sid = None
    if kind & SPLIT_CLUSTER_SECRET:
        n = r.u8("cluster-secret id length")
        if not 1 <= n <= MAX_SPLIT_ID_BYTES:
            raise FormatError("malformed header: cluster-secret id length out of bounds")
        sid = r.text(n, "cluster-secret id", ascii_only=True)
    return SplitDescriptor(sid, threshold)


def parse_slots(r: Reader) -> tuple[KeySlot, ...]:
    """Reads the key slots (1 to 16, each bounded)."""
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
    return tuple(slots)


def header_end(message: bytes | bytearray | memoryview) -> int:
    """Where the header at the start of ``message`` (bytes, or a byte-format view) ends:
    the body's offset, from the preamble alone (the header itself is not parsed).

    Raises:
        FormatError: as :func:`preamble_length`.
    """
    if len(message) >= PREAMBLE_LEN:  # the common case in one C call, no copy
        magic, version, length = _PREAMBLE.unpack_from(message)
        if magic == MAGIC and version == VERSION and length <= MAX_HEADER_BYTES:
            end: int = PREAMBLE_LEN + length
            return end
    return PREAMBLE_LEN + preamble_length(bytes(message[:PREAMBLE_LEN]))  # raises


def parse_header(message: bytes | bytearray | memoryview) -> tuple[Header, int]:
    """Parses the header at the start of ``message``.

    Returns:
        The header and the offset where the body starts.

    Raises:
        FormatError: not an envelope message, an unsupported version or suite, or a
            malformed or oversized header (the message says which).
    """
    if type(message) is bytes:  # sliced as it is: one copy, no view
        end = header_end(message)
        if len(message) < end:
            raise FormatError("not an envelope message: truncated header")
        raw = message[PREAMBLE_LEN:end]
        header = parse_well_formed(raw)
        return (header if header is not None else _parse_checked(memoryview(raw))), end
    view = memoryview(message).cast("B")
    end = header_end(view)
    if len(view) < end:
        raise FormatError("not an envelope message: truncated header")
    return _parse_body(view[PREAMBLE_LEN:end]), end


def read_header(stream: BinaryIO) -> Header:
    """Reads and parses a header from ``stream``, leaving it positioned at the body.

    The header length is checked against the 64 KiB limit before it is read.

    Raises:
        FormatError: as :func:`parse_header`.
    """
    preamble = read_exactly(stream, PREAMBLE_LEN)
    length = preamble_length(preamble)
    body = read_exactly(stream, length)
    if len(body) < length:
        raise FormatError("not an envelope message: truncated header")
    return _parse_body(memoryview(body))


def read_exactly(stream: BinaryIO, n: int) -> bytes:
    """Reads up to ``n`` bytes, fewer only at end of stream."""
    parts = []
    remaining = n
    while remaining:
        piece = stream.read(remaining)
        if not piece:
            break
        parts.append(piece)
        remaining -= len(piece)
    return b"".join(parts)
