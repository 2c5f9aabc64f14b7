"""Regenerates envelope-v1.json: known-answer messages made with fixed randomness.

Run once, from the repository root: ``python tests/vectors/envelope-v1/generate.py``.
The output is committed; every later version of envelope must keep decrypting it.
Fixed "random" values come from SHA-256 of a label, so the file is reproducible.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from envelope import chunked
from envelope._format.context import canonical_context, encode_context
from envelope._format.message import (
    SUITE_COBBLESTONE_256,
    Header,
    KeySlot,
    SplitDescriptor,
    body_context,
    encode_header,
)
from envelope._keys.cluster import ClusterSecretPart
from envelope._keys.derive import derive_input_key

HERE = Path(__file__).parent
KEYRING_ID = "kr-0000000000000001"


def fixed(label: str, n: int) -> bytes:
    out = b""
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"envelope-v1 vectors/{label}/{counter}".encode()).digest()
        counter += 1
    return out[:n]


KEKS = {1: fixed("kek-1", 32), 2: fixed("kek-2", 32)}
PARTS = {"a": fixed("cluster-part-a", 32)}


def local_wrap(
    version: int, data_key: bytes, context: tuple[tuple[str, str], ...], label: str
) -> bytes:
    nonce = fixed(f"wrap-nonce/{label}", 12)
    aad = (
        b"envelope.dev/v1 local-kms wrap\x00"
        + KEYRING_ID.encode()
        + b"\x00"
        + struct.pack(">I", version)
        + encode_context(context)
    )
    return (
        struct.pack(">BI", 1, version) + nonce + AESGCM(KEKS[version]).encrypt(nonce, data_key, aad)
    )


def case(
    name: str,
    plaintext: bytes,
    context: dict[str, str],
    part: str | None,
    kek_version: int = 1,
    foreign_slot: bool = False,
) -> dict[str, object]:
    ctx = canonical_context(context)
    data_key = fixed(f"data-key/{name}", 32)
    slots = [KeySlot("local", KEYRING_ID, local_wrap(kek_version, data_key, ctx, name))]
    if foreign_slot:
        slots.insert(
            0, KeySlot("aws-kms", "arn:aws:kms:eu-west-1:111122223333:key/example", b"\x01" * 184)
        )
    split = SplitDescriptor(None)
    part_bytes = None
    if part is not None:
        part_bytes = PARTS[part]
        split = SplitDescriptor(ClusterSecretPart(part_bytes).id)
    header = Header(SUITE_COBBLESTONE_256, ctx, split, tuple(slots))
    input_key = derive_input_key(data_key, part_bytes)
    body = chunked.encrypt(
        input_key, plaintext, body_context(header), salt=fixed(f"salt/{name}", 24)
    )
    return {
        "name": name,
        "context": context,
        "cluster_part": part,
        "plaintext_hex": plaintext.hex(),
        "data_key_hex": data_key.hex(),
        "input_key_hex": bytes(input_key).hex(),
        "body_context_hex": body_context(header).hex(),
        "message_hex": (encode_header(header) + body).hex(),
    }


def batch_case(
    name: str,
    records: list[bytes],
    aad: list[bytes] | None,
    context: dict[str, str],
    part: str | None,
    *,
    grouped: bool = True,
) -> dict[str, object]:
    """A batch of suite 0x0102 (a group of one), or of the older suite 0x0101."""
    from envelope import _native
    from envelope._format.batch import BatchHeaderFields, digest, encode

    ctx = canonical_context(context)
    data_key = fixed(f"data-key/{name}", 32)
    slot = KeySlot("local", KEYRING_ID, local_wrap(1, data_key, ctx, name))
    part_bytes = PARTS[part] if part else None
    split = SplitDescriptor(ClusterSecretPart(part_bytes).id if part_bytes else None)
    input_key = derive_input_key(data_key, part_bytes)
    salt = fixed(f"salt/{name}", 24)
    group = (fixed(f"group/{name}", 16), 0, 1) if grouped else (None, 0, 1)
    draft = BatchHeaderFields(ctx, split, len(records), salt, bytes(32), (slot,), *group)
    cipher, commitment = _native.BatchCipher.derive(bytes(input_key), salt, digest(draft))
    fields = BatchHeaderFields(ctx, split, len(records), salt, commitment, (slot,), *group)
    sealed = cipher.seal(records, None, aad, None, 1)
    assert isinstance(sealed, list)
    return {
        "name": name,
        "context": context,
        "cluster_part": part,
        "suite": "0x0102" if grouped else "0x0101",
        "records_hex": [r.hex() for r in records],
        "aad_hex": None if aad is None else [a.hex() for a in aad],
        "data_key_hex": data_key.hex(),
        "input_key_hex": bytes(input_key).hex(),
        "batch_digest_hex": digest(fields).hex(),
        "header_hex": encode(fields).hex(),
        "sealed_hex": [r.hex() for r in sealed],
    }


def main() -> None:
    cases = [
        case("empty-no-context-no-split", b"", {}, None),
        case(
            "short-secret-split",
            b"DATABASE_URL=postgres://app:pw@db/app\n",
            {"service": "billing", "env": "prod"},
            "a",
        ),
        case(
            "three-chunks-unicode-context",
            fixed("plaintext-3", 40_000),
            {"service": "billing", "région": "eu-ouest", "empty": ""},
            "a",
        ),
        case("exactly-one-chunk", fixed("plaintext-4", 16_384), {"k": "v"}, "a"),
        case(
            "two-slots-foreign-first", b"multi-kms", {"service": "billing"}, "a", foreign_slot=True
        ),
        case("kek-version-2", b"after rotation", {"service": "billing"}, None, kek_version=2),
    ]
    batches = [  # the first two predate sub-batch groups (suite 0x0101): kept as made
        batch_case(
            "emails-with-primary-keys",
            [b"alice@example.com", b"", b"bob@example.org"],
            [b"user:1", b"user:2", b"user:3"],
            {"table": "users", "column": "email"},
            "a",
            grouped=False,
        ),
        batch_case(
            "tokens-no-aad-no-split",
            [fixed(f"token-{i}", 32) for i in range(4)],
            None,
            {},
            None,
            grouped=False,
        ),
        batch_case(
            "grouped-emails-with-primary-keys",
            [b"carol@example.net", b"dave@example.com"],
            [b"user:4", b"user:5"],
            {"table": "users", "column": "email"},
            "a",
        ),
        batch_case("grouped-no-aad-no-split", [fixed("grouped-token", 32)], None, {}, None),
    ]
    doc = {
        "description": "envelope message format v1 known-answer vectors (docs/format.md)",
        "keyring": {
            "format": "envelope-keyring/v1",
            "id": KEYRING_ID,
            "protection": None,
            "keys": [
                {
                    "version": v,
                    "created": "2026-11-22T00:00:00+00:00",
                    "material": base64.b64encode(k).decode(),
                }
                for v, k in KEKS.items()
            ],
        },
        "cluster_parts_hex": {k: v.hex() for k, v in PARTS.items()},
        "cases": cases,
        "batches": batches,
    }
    (HERE / "envelope-v1.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
