from __future__ import annotations

import io
import struct

import pytest

from envelope._format.context import canonical_context
from envelope._format.message import (
    MAGIC,
    MAX_HEADER_BYTES,
    SUITE_COBBLESTONE_256,
    Header,
    KeySlot,
    SplitDescriptor,
    body_context,
    encode_header,
    parse_header,
    read_header,
)
from envelope.errors import DecryptionError, FormatError


def header(**kw: object) -> Header:
    base: dict[str, object] = {
        "suite": SUITE_COBBLESTONE_256,
        "context": canonical_context({"b": "2", "a": "1"}),
        "split": SplitDescriptor("cs-0123456789abcdef"),
        "slots": (KeySlot("local", "kr-1", b"\x01" * 65),),
    }
    base.update(kw)
    return Header(**base)  # type: ignore[arg-type]


def test_round_trip() -> None:
    h = header(
        slots=(KeySlot("local", "kr-1", b"w" * 65), KeySlot("aws-kms", "arn:aws:kms:x", b"z" * 200))
    )
    raw = encode_header(h)
    parsed, end = parse_header(raw + b"BODY")
    assert parsed == h and end == len(raw)
    assert read_header(io.BytesIO(raw)) == h


def test_layout_starts_with_magic_version_length() -> None:
    raw = encode_header(header())
    assert raw[:4] == MAGIC == b"\x89ENV"
    assert raw[4] == 1
    assert struct.unpack(">I", raw[5:9])[0] == len(raw) - 9


def test_context_is_canonical() -> None:
    assert canonical_context({"b": "1", "a": "2", "é": "3"}) == (("a", "2"), ("b", "1"), ("é", "3"))


def test_digest_binds_context_and_split_but_not_slots() -> None:
    h = header()
    d = body_context(h)
    assert body_context(header(context=canonical_context({"a": "1"}))) != d
    assert body_context(header(split=SplitDescriptor(None))) != d
    assert body_context(header(slots=(KeySlot("local", "kr-2", b"other"),))) == d


def test_unknown_version_is_named() -> None:
    raw = bytearray(encode_header(header()))
    raw[4] = 7
    with pytest.raises(FormatError, match="version 7"):
        parse_header(bytes(raw))


def test_format_error_is_a_decryption_error() -> None:
    assert issubclass(FormatError, DecryptionError)


@pytest.mark.parametrize(
    "blob", [b"", b"\x89EN", b"PK\x03\x04\x01\x00\x00\x00\x00", b"\x89ENV\x01\x00"]
)
def test_not_a_message(blob: bytes) -> None:
    with pytest.raises(FormatError, match="not an envelope message"):
        parse_header(blob)


class CountingStream(io.RawIOBase):
    """Claims to be endless; records how much was asked for."""

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix
        self.requested = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        self.requested += n
        out, self.prefix = self.prefix[:n], self.prefix[n:]
        return out or b"\x00" * n


def test_oversized_header_refused_before_reading_it() -> None:
    evil = MAGIC + b"\x01" + struct.pack(">I", 0xFFFFFFFF)
    with pytest.raises(FormatError, match="exceeds"):
        parse_header(evil + b"\x00" * 100)
    stream = CountingStream(evil)
    with pytest.raises(FormatError, match="exceeds"):
        read_header(stream)  # type: ignore[arg-type]
    assert stream.requested == 9


def test_limit_is_exactly_64_kib() -> None:
    ok = MAGIC + b"\x01" + struct.pack(">I", MAX_HEADER_BYTES)
    with pytest.raises(FormatError, match="truncated"):
        parse_header(ok)  # allowed length, but missing bytes


def _raw_with(body: bytes) -> bytes:
    return MAGIC + b"\x01" + struct.pack(">I", len(body)) + body


def test_non_canonical_context_order_is_refused() -> None:
    body = (
        struct.pack(">HH", 1, 2)
        + struct.pack(">H", 1)
        + b"b"
        + struct.pack(">H", 0)
        + struct.pack(">H", 1)
        + b"a"
        + struct.pack(">H", 0)
        + b"\x00\x01\x05local\x00\x01k\x00\x01w"
    )
    with pytest.raises(FormatError, match="canonical order"):
        parse_header(_raw_with(body))


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (struct.pack(">HH", 9, 0), "suite"),
        (struct.pack(">HH", 1, 65), "context pairs"),
        (struct.pack(">HH", 1, 0) + b"\x00\x00", "wrapped keys"),
        (struct.pack(">HH", 1, 0) + b"\x00\x11", "wrapped keys"),
        (struct.pack(">HH", 1, 0) + b"\x07", "split"),
        (struct.pack(">HH", 1, 0) + b"\x00\x01\x05local\x00\x01k\x00\x01w" + b"X", "trailing"),
        (struct.pack(">HH", 1, 0) + b"\x00\x01\x05local\x00\x01k\x00\x05w", "truncated"),
        (struct.pack(">HH", 1, 0) + b"\x00\x01\x05loc\xffl\x00\x01k\x00\x01w", "not valid text"),
    ],
)
def test_malformed_headers(body: bytes, match: str) -> None:
    with pytest.raises(FormatError, match=match):
        parse_header(_raw_with(body))


@pytest.mark.parametrize(
    "bad",
    [
        {"slots": ()},
        {"slots": tuple(KeySlot("local", "k", b"w") for _ in range(17))},
        {"slots": (KeySlot("", "k", b"w"),)},
        {"slots": (KeySlot("local", "k" * 2049, b"w"),)},
        {"slots": (KeySlot("local", "k", b"w" * 8193),)},
        {"split": SplitDescriptor("x" * 65)},
        {"suite": 99},
    ],
)
def test_encoder_enforces_bounds(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        encode_header(header(**bad))


@pytest.mark.parametrize(
    "ctx",
    [
        {"": "v"},
        {"k" * 256: "v"},
        {"k": "v" * 4097},
        {f"k{i}": "" for i in range(65)},
        {"envelope:internal": "x"},
        {"k": "\ud800"},
    ],
)
def test_context_bounds(ctx: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        canonical_context(ctx)


def test_context_types() -> None:
    with pytest.raises(TypeError):
        canonical_context({"k": 1})  # type: ignore[dict-item]
