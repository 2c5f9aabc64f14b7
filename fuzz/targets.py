"""The fuzz targets: each takes one input and raises only on an undocumented outcome.

Inputs are plain byte layouts (no FuzzedDataProvider) so the seed corpora can be built
from real messages by :func:`seeds`.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable

from envelope import (
    ClusterSecret,
    DecryptionError,
    Envelope,
    FormatError,
    KeyUnavailableError,
    LocalKms,
    _native,
    chunked,
)
from envelope._format.batch import decode as decode_batch_header
from envelope._format.message import parse_header

KEY = bytes(range(32))
CONTEXT = b"fuzz"
SALT = bytes(24)
#: Fixed keys, so the committed seed messages decrypt and the fuzzer reaches the body.
ENV = Envelope(
    LocalKms("fuzz", {1: bytearray(range(64, 96))}, {1: ""}, path=None, passphrase=None),
    ClusterSecret.from_bytes(bytes(range(32, 64))),
)
CIPHER, COMMITMENT = _native.BatchCipher.derive(KEY, SALT, CONTEXT)


def stream_opener(data: bytes) -> None:
    """``data`` = k (1 byte, mod 9), k cut lengths (u16 BE), a Cobblestone ciphertext fed
    to the stream opener in those pieces. Only DecryptionError may come out."""
    k = data[0] % 9 if data else 0
    cuts = [int.from_bytes(data[1 + 2 * i : 3 + 2 * i], "big") for i in range(k)]
    body = data[1 + 2 * k :]
    opener = chunked.Decryptor(KEY, CONTEXT)
    with contextlib.suppress(DecryptionError):
        at = 0
        for n in cuts:
            opener.update(body[at : at + n])
            at += n
        opener.update(body[at:])
        opener.finalize()


def batch_open(data: bytes) -> None:
    """``data`` = k (1 byte, mod 17), a mode byte, offsets, then the record bytes: the
    binding's batch open with arbitrary offsets. Mode bit 0 set: k+1 raw int64 offsets
    (any values); clear: k u16 record lengths (valid offsets, so the kernel runs). The
    offsets are arguments, so a bad one is ValueError; a record that does not
    authenticate is flagged in ``status``, never raised."""
    k = data[0] % 17 if data else 0
    raw_mode = len(data) > 1 and data[1] & 1
    width = 8 * (k + 1) if raw_mode else 2 * k
    table = data[2 : 2 + width].ljust(width, b"\0")
    records = data[2 + width :]
    if raw_mode:
        offsets = bytearray(table)
    else:
        ends, at = [0], 0
        for i in range(k):
            at += int.from_bytes(table[2 * i : 2 * i + 2], "big")
            ends.append(at)
        offsets = bytearray(struct.pack(f"={k + 1}q", *ends))
    try:
        out, status, failed = CIPHER.open(records, memoryview(offsets).cast("q"))
    except ValueError:
        return
    opened, out_offsets = out
    assert len(status) == k and failed == sum(status)
    assert memoryview(out_offsets).cast("q")[-1] == len(opened)


def header_parser(data: bytes) -> None:
    """A v1 message header, a batch header and a whole message from the same bytes:
    FormatError / DecryptionError (and its KeyUnavailableError) only."""
    with contextlib.suppress(FormatError):
        parse_header(data)
    with contextlib.suppress(FormatError):
        decode_batch_header(data)
    with contextlib.suppress(DecryptionError, FormatError, KeyUnavailableError):
        ENV.decrypt(data, {"service": "fuzz"})


TARGETS: dict[str, Callable[[bytes], None]] = {
    "stream_opener": stream_opener,
    "batch_open": batch_open,
    "header_parser": header_parser,
}


def seeds() -> dict[str, list[bytes]]:
    """Small valid inputs per target (what ``python -m fuzz.run --write-seeds`` commits)."""
    short = chunked.encrypt(KEY, b"seed message", CONTEXT)
    two_chunks = chunked.encrypt(KEY, bytes(range(256)) * 260, CONTEXT)
    rec = CIPHER.seal([b"alpha", b"", b"gamma" * 9])
    flat = memoryview(bytearray(struct.pack("=4q", 0, 3, 6, 11))).cast("q")
    data, offsets = CIPHER.seal(b"onetwothree", flat)
    msg = ENV.encrypt(b"a secret", {"service": "fuzz"})
    batch = ENV.encrypt_batch([b"r1", b"r2"], context={"service": "fuzz"})
    return {
        "stream_opener": [
            b"\0" + short,
            b"\2" + (7).to_bytes(2, "big") + (100).to_bytes(2, "big") + short,
            b"\3" + b"\0\x38" + b"\x40\x00" + b"\x00\x01" + two_chunks[:20000],
        ],
        "batch_open": [
            b"\3\1" + offsets + data,
            bytes([len(rec), 0]) + b"".join(len(r).to_bytes(2, "big") for r in rec) + b"".join(rec),
        ],
        "header_parser": [msg, msg[: parse_header(msg)[1]], batch.header.to_bytes()],
    }
