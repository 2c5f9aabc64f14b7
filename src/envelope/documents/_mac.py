"""The metadata block and the document MAC (docs/format.md, "Structured documents")."""

from __future__ import annotations

import base64
import binascii
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac

from envelope._format.context import Context, canonical_context
from envelope._format.message import SUITE_COBBLESTONE_256, Header, KeySlot, SplitDescriptor
from envelope.documents._format import derive_mac_key
from envelope.documents._tree import ALIAS, MERGE, Entry
from envelope.errors import DecryptionError

__all__ = ["METADATA_KEY", "Metadata", "check_mac", "compute_mac", "entry_records"]

#: The reserved top-level key (YAML, JSON) or variable (dotenv) holding the metadata.
METADATA_KEY = "envelope"
VERSION = 1
MAC_LABEL = b"envelope.dev/doc v1 mac\x00"
RULE_NAMES = (
    "encrypted_regex",
    "encrypted_suffix",
    "kubernetes_secret",
    "unencrypted_regex",
    "unencrypted_suffix",
)
_THRESHOLD = re.compile(r"([1-9][0-9]?)-of-([1-9][0-9]?)")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@dataclass
class Metadata:
    """What a document records besides its values (all covered by the MAC)."""

    header: Header
    rules: dict[str, str] = field(default_factory=dict)
    lastmodified: str = ""
    mac: bytes = b""

    @property
    def context(self) -> Context:
        """The encryption context (also bound by the KMS to the wrapped keys)."""
        return self.header.context

    def to_plain(self) -> dict[str, Any]:
        """The block as written into the file (plain dicts, lists and strings)."""
        h = self.header
        out: dict[str, Any] = {"version": VERSION}
        if h.context:
            out["context"] = dict(h.context)
        if h.split.cluster_secret_id is not None:
            out["cluster_secret"] = h.split.cluster_secret_id
        if h.split.threshold is not None:
            out["threshold"] = "{}-of-{}".format(*h.split.threshold)
        out["keys"] = [
            {
                "provider": s.provider,
                "key": s.key_id,
                "wrapped": base64.b64encode(s.wrapped).decode(),
            }
            for s in h.slots
        ]
        if self.rules:
            out["rules"] = dict(sorted(self.rules.items()))
        out["lastmodified"] = self.lastmodified
        out["mac"] = base64.b64encode(self.mac).decode()
        return out

    @classmethod
    def from_plain(cls, block: Any, name: str) -> Metadata:
        """Reads a metadata block back, strictly.

        Raises:
            DecryptionError: any field missing, extra, of the wrong type (names the file).
        """
        try:
            return _from_plain(block)
        except (KeyError, TypeError, ValueError, binascii.Error, AssertionError):
            raise DecryptionError(
                f"{name}: the envelope metadata block is damaged or was edited"
            ) from None

    def canonical(self) -> bytes:
        """The metadata's MAC input (docs/format.md)."""
        h = self.header
        out = [bytes([VERSION]), struct.pack(">H", len(h.context))]
        for k, v in h.context:
            out += [_lp16(k.encode()), _lp16(v.encode())]
        sid = h.split.cluster_secret_id
        out.append(b"\x00" if sid is None else b"\x01" + _lp16(sid.encode()))
        k_of_n = h.split.threshold or (0, 0)
        out.append(bytes(k_of_n))
        out.append(struct.pack(">H", len(h.slots)))
        for s in h.slots:
            out += [_lp16(s.provider.encode()), _lp16(s.key_id.encode()), _lp32(s.wrapped)]
        out.append(struct.pack(">H", len(self.rules)))
        for rk, rv in sorted(self.rules.items()):
            out += [_lp16(rk.encode()), _lp32(rv.encode())]
        out.append(_lp16(self.lastmodified.encode()))
        return b"".join(out)


def _lp16(b: bytes) -> bytes:
    return struct.pack(">H", len(b)) + b


def _lp32(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def _text(value: Any) -> str:
    assert isinstance(value, str)
    return str(value)


def _from_plain(block: Any) -> Metadata:
    assert isinstance(block, Mapping)
    allowed = {"version", "context", "cluster_secret", "threshold", "keys", "rules"}
    allowed |= {"lastmodified", "mac"}
    assert set(block) <= allowed
    version = block["version"]
    assert isinstance(version, int) and not isinstance(version, bool) and version == VERSION
    ctx_block = block.get("context", {})
    assert isinstance(ctx_block, Mapping) and (ctx_block or "context" not in block)
    ctx = canonical_context({_text(k): _text(v) for k, v in ctx_block.items()})
    sid = block.get("cluster_secret")
    sid = None if sid is None else _text(sid)
    threshold = None
    if "threshold" in block:
        m = _THRESHOLD.fullmatch(_text(block["threshold"]))
        assert m is not None
        threshold = (int(m.group(1)), int(m.group(2)))
    keys = block["keys"]
    assert isinstance(keys, Sequence) and not isinstance(keys, str) and 1 <= len(keys) <= 16
    slots = []
    for k in keys:
        assert isinstance(k, Mapping) and set(k) == {"provider", "key", "wrapped"}
        wrapped = base64.b64decode(_text(k["wrapped"]), validate=True)
        slots.append(KeySlot(_text(k["provider"]), _text(k["key"]), wrapped))
    rules_block = block.get("rules", {})
    assert isinstance(rules_block, Mapping) and (rules_block or "rules" not in block)
    rules = {_text(k): _text(v) for k, v in rules_block.items()}
    assert set(rules) <= set(RULE_NAMES)
    last = _text(block["lastmodified"])
    assert _TIME.fullmatch(last)
    mac = base64.b64decode(_text(block["mac"]), validate=True)
    assert len(mac) == 32
    header = Header(SUITE_COBBLESTONE_256, ctx, SplitDescriptor(sid, threshold), tuple(slots))
    return Metadata(header, rules, last, mac)


def entry_records(entries: Sequence[Entry], leaf_bytes: Sequence[tuple[bytes, bytes]]) -> bytes:
    """The MAC input of the entries: ``leaf_bytes`` gives, per LEAF entry in order,
    ``(kind byte, value bytes)``: ``E`` + token, or ``C`` + typed plaintext."""
    out = [struct.pack(">I", len(entries))]
    leaves = iter(leaf_bytes)
    for e in entries:
        if e.kind == ALIAS:
            kind, value = b"A", e.targets[0]
        elif e.kind == MERGE:
            kind, value = b"M", b"".join(_lp32(t) for t in e.targets)
        else:
            kind, value = next(leaves)
        out += [kind, _lp32(e.path_bytes), _lp32(value)]
    return b"".join(out)


def compute_mac(file_key: bytes | bytearray, meta: Metadata, records: bytes) -> bytes:
    """HMAC-SHA256 under the MAC key over label, metadata and entry records."""
    mac = hmac.HMAC(derive_mac_key(file_key), hashes.SHA256())
    mac.update(MAC_LABEL + _lp32(meta.canonical()) + records)
    return mac.finalize()


def check_mac(file_key: bytes | bytearray, meta: Metadata, records: bytes, name: str) -> None:
    """Raises:
    DecryptionError: the MAC does not match (names the file, never a value)."""
    mac = hmac.HMAC(derive_mac_key(file_key), hashes.SHA256())
    mac.update(MAC_LABEL + _lp32(meta.canonical()) + records)
    try:
        mac.verify(meta.mac)
    except InvalidSignature:
        raise DecryptionError(
            f"{name}: decryption failed: the document was altered (a value, key, order or the "
            "metadata), or its key or context is wrong"
        ) from None
