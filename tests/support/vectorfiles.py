"""Loaders for the vector files in tests/vectors (see the README next to each set)."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

VECTORS = Path(__file__).parent.parent / "vectors"


@dataclass(frozen=True)
class GcmVector:
    name: str
    key: bytes
    iv: bytes
    aad: bytes
    msg: bytes | None  # None: must fail
    sealed: bytes


def wycheproof_aes256_gcm() -> Iterator[GcmVector]:
    doc = json.loads((VECTORS / "wycheproof/aes_gcm_test.json").read_text())
    for group in doc["testGroups"]:
        if (group["keySize"], group["ivSize"], group["tagSize"]) != (256, 96, 128):
            continue
        for t in group["tests"]:
            h = bytes.fromhex
            yield GcmVector(
                f"wycheproof-{t['tcId']}",
                h(t["key"]),
                h(t["iv"]),
                h(t["aad"]),
                h(t["msg"]) if t["result"] == "valid" else None,
                h(t["ct"]) + h(t["tag"]),
            )


def nist_gcm(name: str) -> Iterator[GcmVector]:
    """Records of a CAVP .rsp file with 96-bit IVs and 128-bit tags."""
    section: dict[str, str] = {}
    record: dict[str, str] = {}
    in_header = False

    def emit() -> Iterator[GcmVector]:
        if record and section.get("IVlen") == "96" and section.get("Taglen") == "128":
            h = bytes.fromhex
            yield GcmVector(
                f"{name}-{section['PTlen']}-{section['AADlen']}-{record['Count']}",
                h(record["Key"]),
                h(record["IV"]),
                h(record["AAD"]),
                None if "FAIL" in record else h(record["PT"]),
                h(record["CT"]) + h(record["Tag"]),
            )

    for raw in (VECTORS / "nist-gcm" / name).read_text().splitlines():
        line = raw.strip()
        if line.startswith("["):
            if not in_header:
                yield from emit()
                record = {}
                section = {}
            in_header = True
            k, v = line.strip("[]").split("=")
            section[k.strip()] = v.strip()
            continue
        in_header = False
        if line.startswith("Count") and record:
            yield from emit()
            record = {}
        if line == "FAIL":
            record["FAIL"] = ""
        elif "=" in line:
            k, v = line.split("=", 1)
            record[k.strip()] = v.strip()
    yield from emit()


@dataclass(frozen=True)
class ChunkedVector:
    tc_id: int
    comment: str
    key: bytes
    ctx: bytes
    ct: bytes
    valid: bool
    msg_length: int | None
    msg_sha512: bytes | None
    flags: tuple[str, ...]


def cobblestone_256() -> list[ChunkedVector]:
    doc = json.loads(
        (VECTORS / "wycheproof/c2sp_chunked_encryption_aes_256_gcm_test.json").read_text()
    )
    assert doc["algorithm"] == "Cobblestone-256"
    out = []
    for group in doc["testGroups"]:
        for t in group["tests"]:
            out.append(
                ChunkedVector(
                    t["tcId"],
                    t["comment"],
                    bytes.fromhex(t["key"]),
                    bytes.fromhex(t["ctx"]),
                    zlib.decompress(bytes.fromhex(t["ct"])),
                    t["result"] == "valid",
                    t.get("msgLength"),
                    bytes.fromhex(t["msgSha512"]) if "msgSha512" in t else None,
                    tuple(t["flags"]),
                )
            )
    return out
