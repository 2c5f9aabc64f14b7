"""The record-batch header (docs/format.md, "Record batches").

```
magic "\\x89ENB" | version 0x01 | u32 header length H | header (H bytes)
header = bound section | salt (24) | commitment (32) | key slots
bound  = u16 suite 0x0102 | context | split descriptor | u64 record count
         | group id (16) | u32 part index | u32 part count
```

Suite 0x0102 binds a header to its group (one ``encrypt_batch`` call), its position and
the number of sub-batches, so none can be dropped, reordered or swapped in; headers of
suite 0x0101 (before the group fields) are still read, as a group of one.

The batch key's HKDF context is SHA-256 over a label, the magic, the version and the
bound section; salt and commitment follow the bound section, the key slots come last
(outside the digest, as in messages, so a batch header can be rewrapped).
"""

from __future__ import annotations

import hashlib
import secrets
import struct
from dataclasses import dataclass

from envelope._format.context import Context, encode_context
from envelope._format.message import (
    MAX_HEADER_BYTES,
    PREAMBLE_LEN,
    VERSION,
    KeySlot,
    Reader,
    SplitDescriptor,
    check_encodable,
    encode_slots,
    encode_split,
    parse_context,
    parse_slots,
    parse_split,
    preamble_length,
)
from envelope.errors import FormatError

__all__ = [
    "BATCH_MAGIC",
    "GROUP_ID_LEN",
    "MAX_RECORD_COUNT",
    "SALT_LEN",
    "SUITE_RECORD_BATCH",
    "SUITE_RECORD_BATCH_GROUPED",
    "BatchHeaderFields",
    "decode",
    "digest",
    "encode",
    "new_salt",
]

BATCH_MAGIC = b"\x89ENB"
#: Records sealed one by one with AES-256-GCM under an HKDF-SHA512-derived batch key.
SUITE_RECORD_BATCH = 0x0101
#: The same, bound to a group of sub-batches (group id, part index, part count).
SUITE_RECORD_BATCH_GROUPED = 0x0102
GROUP_ID_LEN = 16
#: The most records one batch header may count: the kernel's per-batch nonce budget
#: (``_native.MAX_BATCH_RECORDS``); a bigger count is a malformed header, not a length.
MAX_RECORD_COUNT = 1 << 32
SALT_LEN = 24
COMMITMENT_LEN = 32
_DIGEST_LABEL = b"envelope.dev/v1 batch header\x00"
_WHAT = "envelope record batch header"


@dataclass(frozen=True, slots=True)
class BatchHeaderFields:
    """The parsed fields of a batch header: ``group`` None is a suite-0x0101 header
    (before groups), read as part 0 of 1."""

    context: Context
    split: SplitDescriptor
    record_count: int
    salt: bytes
    commitment: bytes
    slots: tuple[KeySlot, ...]
    group: bytes | None = None
    part: int = 0
    parts: int = 1

    def bound_bytes(self) -> bytes:
        """The part of the header covered by the digest."""
        grouped = self.group is not None
        bound = (
            struct.pack(">H", SUITE_RECORD_BATCH_GROUPED if grouped else SUITE_RECORD_BATCH)
            + encode_context(self.context)
            + encode_split(self.split)
            + struct.pack(">Q", self.record_count)
        )
        if self.group is not None:
            bound += self.group + struct.pack(">II", self.part, self.parts)
        return bound


def new_salt() -> bytes:
    """A fresh random batch salt (``SALT_LEN`` bytes from the OS CSPRNG)."""
    return secrets.token_bytes(SALT_LEN)


def digest(fields: BatchHeaderFields) -> bytes:
    """The batch key's HKDF context: SHA-256 over the version and bound section."""
    return hashlib.sha256(
        _DIGEST_LABEL + BATCH_MAGIC + bytes([VERSION]) + fields.bound_bytes()
    ).digest()


def encode(fields: BatchHeaderFields) -> bytes:
    """Serializes a batch header.

    Raises:
        ValueError: a field exceeds its bound.
    """
    check_encodable(fields.context, fields.split, fields.slots)
    if len(fields.salt) != SALT_LEN or len(fields.commitment) != COMMITMENT_LEN:
        raise ValueError("salt must be 24 bytes and commitment 32")
    if fields.group is not None and (
        len(fields.group) != GROUP_ID_LEN or not 0 <= fields.part < fields.parts < 1 << 32
    ):
        raise ValueError("group id must be 16 bytes and 0 <= part < parts < 2^32")
    if not 0 <= fields.record_count <= MAX_RECORD_COUNT:
        raise ValueError(f"record count must be between 0 and {MAX_RECORD_COUNT}")
    body = fields.bound_bytes() + fields.salt + fields.commitment + encode_slots(fields.slots)
    if len(body) > MAX_HEADER_BYTES:
        raise ValueError(f"batch header would be {len(body)} bytes; at most {MAX_HEADER_BYTES}")
    return BATCH_MAGIC + bytes([VERSION]) + struct.pack(">I", len(body)) + body


def decode(blob: bytes | bytearray | memoryview) -> BatchHeaderFields:
    """Parses a serialized batch header (exactly; no trailing bytes).

    Raises:
        FormatError: not a batch header this version reads, or malformed (says which).
    """
    view = memoryview(blob).cast("B")
    length = preamble_length(bytes(view[:PREAMBLE_LEN]), BATCH_MAGIC, _WHAT)
    if len(view) != PREAMBLE_LEN + length:
        raise FormatError(f"not an {_WHAT}: its length does not match its contents")
    r = Reader(view[PREAMBLE_LEN:])
    suite = r.u16("suite")
    if suite not in (SUITE_RECORD_BATCH, SUITE_RECORD_BATCH_GROUPED):
        raise FormatError(f"unsupported suite {suite:#06x} in batch header")
    context = parse_context(r)
    split = parse_split(r)
    (count,) = struct.unpack(">Q", r.take(8, "record count"))
    if count > MAX_RECORD_COUNT:
        raise FormatError("malformed batch header: record count above 2^32")
    group, part, parts = None, 0, 1
    if suite == SUITE_RECORD_BATCH_GROUPED:
        group = r.take(GROUP_ID_LEN, "group id")
        part, parts = struct.unpack(">II", r.take(8, "part index and count"))
        if not part < parts:
            raise FormatError("malformed batch header: part index not below the part count")
    salt = r.take(SALT_LEN, "salt")
    commitment = r.take(COMMITMENT_LEN, "commitment")
    slots = parse_slots(r)
    if r.pos != length:
        raise FormatError("malformed batch header: trailing bytes after the key slots")
    return BatchHeaderFields(
        context, split, int(count), salt, commitment, slots, group, int(part), int(parts)
    )
