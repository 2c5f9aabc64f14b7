"""The committed encrypted-document vectors still decrypt: through envelope.documents and
through an independent decoder written from docs/format.md ("Structured documents")."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature

from envelope import ClusterSecret, Envelope, LocalKms
from envelope import documents as docs
from tests.support import reference_decoder
from tests.support.reference_documents_decoder import Document, core_schema, path_bytes

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "documents" / "documents-v1.json"
DOC = json.loads(VECTORS.read_text())
CASES: list[dict[str, Any]] = DOC["cases"]
KEK = base64.b64decode(DOC["keyring"]["keys"][0]["material"])
PART = bytes.fromhex(DOC["cluster_part_hex"])


def _env(tmp_path: Path, split: bool) -> Envelope:
    """The receiver each vector was made for: with the cluster part when the file records
    a split, without it otherwise (a receiver with a part refuses unsplit files)."""
    path = tmp_path / "keyring.json"
    path.write_text(json.dumps(DOC["keyring"]))
    os.chmod(path, 0o600)
    return Envelope(LocalKms.open(path), ClusterSecret.from_bytes(PART) if split else None)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_library_decrypts(tmp_path: Path, case: dict[str, Any]) -> None:
    env = _env(tmp_path, "cluster_secret" in case["encrypted"].lower())
    out = docs.decrypt(case["encrypted"], env, format=case["format"], context=case["context"])
    assert out == case["plaintext"]


def _unwrap(doc: Document) -> bytes:
    slot = doc.meta["keys"][0]
    ctx = sorted((doc.meta.get("context") or {}).items(), key=lambda kv: kv[0].encode())
    encoded = len(ctx).to_bytes(2, "big") + b"".join(
        len(k.encode()).to_bytes(2, "big")
        + k.encode()
        + len(v.encode()).to_bytes(2, "big")
        + v.encode()
        for k, v in ctx
    )
    data_key = reference_decoder.local_unwrap(
        {1: KEK}, slot["key"], base64.b64decode(slot["wrapped"]), encoded
    )
    part = PART if doc.meta.get("cluster_secret") else None
    return reference_decoder.input_key(data_key, part)


def _expected(case: dict[str, Any]) -> dict[bytes, bytes]:
    """Typed plaintexts of the clear document's leaves, by the same walk."""
    clear = Document(case["plaintext"], case["format"], encrypted=False)
    return {path_bytes(steps): typed for steps, _, typed in clear.leaves}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_reference_decoder_decrypts(case: dict[str, Any]) -> None:
    doc = Document(case["encrypted"], case["format"])
    file_key = _unwrap(doc)
    assert file_key.hex() == case["file_key_hex"]
    doc.verify(file_key)
    expected = _expected(case)
    opened = {path_bytes(steps): plain for steps, plain in doc.values(file_key)}
    assert opened and all(expected[p] == v for p, v in opened.items())
    # every leaf is accounted for: opened here, or clear and equal to the original
    for steps, _, clear in doc.leaves:
        pb = path_bytes(steps)
        assert pb in opened or expected[pb] == clear


def test_reference_decoder_rejects_a_changed_mac_input() -> None:
    case = CASES[0]
    doc = Document(case["encrypted"].replace("port:", "porte:"), "yaml")
    with pytest.raises(InvalidSignature):
        doc.verify(bytes.fromhex(case["file_key_hex"]))
    assert core_schema("0.25") == b"r0.25" and core_schema("007") == b"i7"
