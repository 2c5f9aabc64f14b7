"""An independent decoder for encrypted documents, written from docs/format.md
("Structured documents") alone.

It imports nothing from envelope: YAML structure comes from PyYAML's composer (nodes,
styles, alias identity), JSON from the standard library, dotenv is parsed here; the
crypto is ``cryptography`` (HKDF, AES-GCM, HMAC). Key unwrapping reuses the v1 reference
decoder (also written from the spec). If it opens the known-answer vectors and their
MACs verify, the section is complete.
"""

from __future__ import annotations

import base64
import json
import re
import struct
from collections.abc import Iterator
from typing import Any

import yaml
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TOKEN = re.compile(r"ENV\[v1,([A-Za-z0-9_-]+)\]")
MERGE_TAG = "tag:yaml.org,2002:merge"


def lp16(b: bytes) -> bytes:
    return struct.pack(">H", len(b)) + b


def lp32(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def path_bytes(steps: list[tuple[str, Any]]) -> bytes:
    out = struct.pack(">H", len(steps))
    for kind, item in steps:
        if kind == "D":
            out += b"D" + struct.pack(">I", item)
        elif kind == "I":
            out += b"I" + struct.pack(">I", item)
        else:
            out += b"k" + lp32(item.encode())
    return out


def core_schema(text: str) -> bytes:
    """Typed plaintext of a plain YAML scalar by the YAML 1.2 core schema."""
    if text in ("", "~", "null", "Null", "NULL"):
        return b"n"
    if text in ("true", "True", "TRUE", "false", "False", "FALSE"):
        return b"b" + text.lower().encode()
    if re.fullmatch(r"[-+]?[0-9]+", text):
        return b"i" + str(int(text)).encode()
    if re.fullmatch(r"0x[0-9a-fA-F]+|0o[0-7]+", text):
        return b"i" + str(int(text, 0)).encode()
    if re.fullmatch(r"[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)", text):
        return b"r" + {"n": b"nan", "-": b"-inf"}.get(text[0] if text[1:2] != "n" else "n", b"inf")
    if re.fullmatch(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?", text):
        return b"r" + repr(float(text)).encode()
    return b"s" + text.encode()


def yaml_scalar(node: yaml.ScalarNode) -> bytes:
    style = {"'": b"q", '"': b"d", "|": b"l", ">": b"f"}.get(node.style or "")
    return style + node.value.encode() if style else core_schema(node.value)


def json_scalar(value: Any) -> bytes:
    if value is None:
        return b"n"
    if isinstance(value, bool):
        return b"b" + (b"true" if value else b"false")
    if isinstance(value, int):
        return b"i" + str(value).encode()
    if isinstance(value, float):
        return b"r" + repr(value).encode()
    return b"s" + value.encode()


class Document:
    """One encrypted file: its metadata and entries ``(kind, steps, text or node)``."""

    def __init__(self, text: str, fmt: str, *, encrypted: bool = True) -> None:
        """``encrypted=False``: a clear document (no metadata), walked the same way."""
        self.has_meta = encrypted
        self.fmt = fmt
        self.leaves: list[tuple[list[tuple[str, Any]], str | None, bytes]] = []
        self.meta: dict[str, Any] = {}
        self.secret_docs: set[int] = set()
        self.records: list[tuple[bytes, bytes, bytes]] = []
        if fmt == "yaml":
            self._yaml(text)
        elif fmt == "json":
            self._json(text)
        else:
            self._dotenv(text)

    # -- walking -------------------------------------------------------------------------

    def _yaml(self, text: str) -> None:
        docs = list(yaml.compose_all(text))
        top = docs[0]
        if self.has_meta:
            meta = next(v for k, v in top.value if k.value == "envelope")
            top.value = [(k, v) for k, v in top.value if k.value != "envelope"]
            self.meta = yaml.safe_load(yaml.serialize(meta))
        seen: dict[int, bytes] = {}
        for n, doc in enumerate(docs):
            fields = (
                {k.value: v.value for k, v in doc.value}
                if isinstance(doc, yaml.MappingNode)
                else {}
            )
            if fields.get("apiVersion") == "v1" and fields.get("kind") == "Secret":
                self.secret_docs.add(n)
            self._walk_node(doc, [("D", n)], seen)

    def _walk_node(self, node: Any, steps: list[tuple[str, Any]], seen: dict[int, bytes]) -> None:
        pb = path_bytes(steps)
        if id(node) in seen:
            self.records.append((b"A", pb, seen[id(node)]))
            return
        seen[id(node)] = pb
        if isinstance(node, yaml.MappingNode):
            own = [(k, v) for k, v in node.value if k.tag != MERGE_TAG]
            merges = [v for k, v in node.value if k.tag == MERGE_TAG]
            targets = []
            for m in merges:
                for i, target in enumerate(m.value if isinstance(m, yaml.SequenceNode) else [m]):
                    if id(target) not in seen:
                        self._walk_node(target, [*steps, ("k", "<<"), ("I", i)], seen)
                    targets.append(seen[id(target)])
            if targets:
                self.records.append((b"M", pb, b"".join(lp32(t) for t in targets)))
            for k, v in own:
                self._walk_node(v, [*steps, ("k", k.value)], seen)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                self._walk_node(v, [*steps, ("I", i)], seen)
        else:
            self._scalar(
                steps, node.value if TOKEN.fullmatch(node.value) else None, yaml_scalar(node)
            )

    def _scalar(self, steps: list[tuple[str, Any]], token: str | None, clear: bytes) -> None:
        self.records.append((b"?", path_bytes(steps), b""))  # E or C, decided by the rules
        self.leaves.append((steps, token, clear))

    def _json(self, text: str) -> None:
        top = json.loads(text)
        if self.has_meta:
            self.meta = top.pop("envelope")

        def walk(v: Any, steps: list[tuple[str, Any]]) -> None:
            if isinstance(v, dict):
                for k, x in v.items():
                    walk(x, [*steps, ("k", k)])
            elif isinstance(v, list):
                for i, x in enumerate(v):
                    walk(x, [*steps, ("I", i)])
            else:
                self._scalar(
                    steps, v if isinstance(v, str) and TOKEN.fullmatch(v) else None, json_scalar(v)
                )

        walk(top, [("D", 0)])

    def _dotenv(self, text: str) -> None:
        for line in text.splitlines():
            body = line.strip()
            if not body or body.startswith("#"):
                continue
            m = re.match(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)$", body)
            assert m
            key, raw = m.group(1), m.group(2)
            if key == "envelope":
                b = raw.strip()
                self.meta = json.loads(base64.urlsafe_b64decode(b + "=" * (-len(b) % 4)))
                continue
            raw = re.split(r"\s+#", raw, maxsplit=1)[0].strip()
            if raw.startswith("'"):
                clear = b"q" + raw[1:-1].encode()
            elif raw.startswith('"'):
                clear = b"d" + raw[1:-1].encode()
            else:
                clear = b"s" + raw.encode()
            self._scalar([("D", 0), ("k", key)], raw if TOKEN.fullmatch(raw) else None, clear)

    # -- metadata, keys, MAC ------------------------------------------------------------

    def metadata_bytes(self) -> bytes:
        m = self.meta
        ctx = sorted((m.get("context") or {}).items(), key=lambda kv: kv[0].encode())
        out = bytes([m["version"]]) + struct.pack(">H", len(ctx))
        for k, v in ctx:
            out += lp16(k.encode()) + lp16(v.encode())
        sid = m.get("cluster_secret")
        out += b"\x00" if sid is None else b"\x01" + lp16(sid.encode())
        k_n = m.get("threshold")
        out += bytes(map(int, k_n.split("-of-"))) if k_n else b"\x00\x00"
        out += struct.pack(">H", len(m["keys"]))
        for s in m["keys"]:
            out += lp16(s["provider"].encode()) + lp16(s["key"].encode())
            out += lp32(base64.b64decode(s["wrapped"]))
        rules = sorted((m.get("rules") or {}).items())
        out += struct.pack(">H", len(rules))
        for name, value in rules:
            out += lp16(name.encode()) + lp32(value.encode())
        return out + lp16(m["lastmodified"].encode())

    def encrypted(self, steps: list[tuple[str, Any]], token: str | None) -> bool:
        rules = self.meta.get("rules") or {}
        keys = [item for kind, item in steps if kind == "k"]
        secret_doc = steps[0][1] in self.secret_docs
        under_data = len(steps) >= 3 and steps[1] in (("k", "data"), ("k", "stringData"))
        if rules.get("kubernetes_secret") == "true" and not (secret_doc and under_data):
            return False
        if "unencrypted_suffix" in rules:
            return not any(k.endswith(rules["unencrypted_suffix"]) for k in keys)
        if "unencrypted_regex" in rules:
            return not any(re.search(rules["unencrypted_regex"], k) for k in keys)
        return True

    def mac_input(self) -> bytes:
        leaves = iter(self.leaves)
        entries = []
        for record, pb, stored in self.records:
            kind, value = record, stored
            if record == b"?":
                steps, token, clear = next(leaves)
                if self.encrypted(steps, token):
                    assert token is not None, "an encrypted leaf must be a token"
                    kind, value = b"E", token.encode()
                else:
                    kind, value = b"C", clear
            entries.append(kind + lp32(pb) + lp32(value))
        records = struct.pack(">I", len(entries)) + b"".join(entries)
        return b"envelope.dev/doc v1 mac\x00" + lp32(self.metadata_bytes()) + records

    def verify(self, file_key: bytes) -> None:
        mac_key = HKDF(hashes.SHA256(), 32, salt=None, info=b"envelope.dev/doc v1 mac key").derive(
            file_key
        )
        h = hmac.HMAC(mac_key, hashes.SHA256())
        h.update(self.mac_input())
        h.verify(base64.b64decode(self.meta["mac"]))

    def values(self, file_key: bytes) -> Iterator[tuple[list[tuple[str, Any]], bytes]]:
        """``(steps, typed plaintext)`` of every encrypted leaf."""
        for steps, token, _ in self.leaves:
            if not self.encrypted(steps, token):
                continue
            assert token is not None
            body = TOKEN.fullmatch(token).group(1)  # type: ignore[union-attr]
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            salt, sealed = raw[:32], raw[32:]
            key = HKDF(
                hashes.SHA256(), 32, salt=salt, info=b"envelope.dev/doc v1 value key"
            ).derive(file_key)
            yield steps, AESGCM(key).decrypt(bytes(12), sealed, path_bytes(steps))
