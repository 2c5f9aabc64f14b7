"""The committed v1 known-answer messages still decrypt: through envelope, and through an
independent decoder written from docs/format.md."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from envelope import ClusterSecret, Envelope, LocalKms, inspect
from tests.support import reference_decoder

DOC = json.loads((Path(__file__).parent / "envelope-v1/envelope-v1.json").read_text())
CASES: list[dict[str, Any]] = DOC["cases"]
KEKS = {k["version"]: base64.b64decode(k["material"]) for k in DOC["keyring"]["keys"]}


@pytest.fixture
def kms(tmp_path: Path) -> LocalKms:
    path = tmp_path / "keyring.json"
    path.write_text(json.dumps(DOC["keyring"]))
    os.chmod(path, 0o600)
    return LocalKms.open(path)


def cluster_for(case: dict[str, Any]) -> ClusterSecret | None:
    part = case["cluster_part"]
    return (
        None
        if part is None
        else ClusterSecret.from_bytes(bytes.fromhex(DOC["cluster_parts_hex"][part]))
    )


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_library_decrypts(kms: LocalKms, case: dict[str, Any]) -> None:
    message = bytes.fromhex(case["message_hex"])
    env = Envelope(kms, cluster_for(case))
    assert env.decrypt(message, case["context"]) == bytes.fromhex(case["plaintext_hex"])
    assert inspect(message).context == case["context"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_reference_decoder_decrypts(case: dict[str, Any]) -> None:
    message = bytes.fromhex(case["message_hex"])
    parsed = reference_decoder.Parsed(message)
    assert parsed.body_context().hex() == case["body_context_hex"]
    _provider, key_id, wrapped = next(s for s in parsed.slots if s[0] == "local")
    assert key_id == DOC["keyring"]["id"]
    data_key = reference_decoder.local_unwrap(KEKS, key_id, wrapped, parsed.encoded_context())
    assert data_key.hex() == case["data_key_hex"]
    part = case["cluster_part"]
    ikey = reference_decoder.input_key(
        data_key, None if part is None else bytes.fromhex(DOC["cluster_parts_hex"][part])
    )
    assert ikey.hex() == case["input_key_hex"]
    plaintext = reference_decoder.cobblestone_decrypt(ikey, parsed.body, parsed.body_context())
    assert plaintext.hex() == case["plaintext_hex"]


def test_cases_cover_the_format() -> None:
    names = {c["name"] for c in CASES}
    assert {"empty-no-context-no-split", "two-slots-foreign-first", "kek-version-2"} <= names
    assert any(c["cluster_part"] for c in CASES) and any(c["cluster_part"] is None for c in CASES)


BATCHES: list[dict[str, Any]] = DOC["batches"]


@pytest.mark.parametrize("case", BATCHES, ids=lambda c: c["name"])
def test_library_decrypts_batches(kms: LocalKms, case: dict[str, Any]) -> None:
    from envelope import EncryptedBatch

    sealed = [bytes.fromhex(r) for r in case["sealed_hex"]]
    aad = None if case["aad_hex"] is None else [bytes.fromhex(a) for a in case["aad_hex"]]
    env = Envelope(kms, cluster_for(case))
    batch = EncryptedBatch.from_parts(bytes.fromhex(case["header_hex"]), sealed)
    expected = [bytes.fromhex(r) for r in case["records_hex"]]
    assert env.decrypt_batch(batch, aad=aad, context=case["context"]) == expected
    header = env.batch_header(bytes.fromhex(case["header_hex"]), any_context=True)
    assert header.decrypt_record(sealed[-1], aad=aad[-1] if aad else None) == expected[-1]


@pytest.mark.parametrize("case", BATCHES, ids=lambda c: c["name"])
def test_reference_decoder_decrypts_batches(case: dict[str, Any]) -> None:
    header = reference_decoder.ParsedBatchHeader(bytes.fromhex(case["header_hex"]))
    assert header.digest().hex() == case["batch_digest_hex"]
    assert (header.group is not None) == (case["suite"] == "0x0102")
    assert (header.part, header.parts) == (0, 1)
    _provider, key_id, wrapped = header.slots[0]
    data_key = reference_decoder.local_unwrap(KEKS, key_id, wrapped, header.encoded_context())
    part = case["cluster_part"]
    ikey = reference_decoder.input_key(
        data_key, None if part is None else bytes.fromhex(DOC["cluster_parts_hex"][part])
    )
    assert ikey.hex() == case["input_key_hex"]
    aads = case["aad_hex"] or [""] * len(case["sealed_hex"])
    for sealed, aad, plain in zip(case["sealed_hex"], aads, case["records_hex"], strict=True):
        opened = reference_decoder.batch_open_record(
            ikey, header, bytes.fromhex(sealed), bytes.fromhex(aad)
        )
        assert opened.hex() == plain
