"""Inputs over the per-batch record limit become sub-batches bound to one group, their
index and the total (issue 18, item 7): none can be dropped, reordered or swapped in."""

from __future__ import annotations

import pytest

from envelope import DecryptionError, EncryptedBatch, Envelope, LocalKms
from envelope._batch import cipher as batch_cipher
from envelope._format.batch import SUITE_RECORD_BATCH, BatchHeaderFields, decode

CTX = {"table": "users"}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Envelope:
    monkeypatch.setattr(batch_cipher, "MAX_RECORDS_PER_BATCH", 10)
    return Envelope(LocalKms.ephemeral())


def records(tag: str, n: int = 25) -> list[bytes]:
    return [f"{tag}-{i}".encode() for i in range(n)]


def test_sub_batches_record_group_index_and_total(env: Envelope) -> None:
    enc = env.encrypt_batch(records("a"), context=CTX)
    fields = [decode(h.to_bytes()) for h in enc.headers]
    assert [(f.part, f.parts) for f in fields] == [(0, 3), (1, 3), (2, 3)]
    assert len({f.group for f in fields}) == 1 and len(fields[0].group or b"") == 16
    assert env.decrypt_batch(enc, context=CTX) == records("a")


def test_a_dropped_sub_batch_is_detected(env: Envelope) -> None:
    enc = env.encrypt_batch(records("a"), context=CTX)
    dropped = EncryptedBatch((enc.headers[0], enc.headers[1]), enc.records[:20])
    with pytest.raises(DecryptionError):
        env.decrypt_batch(dropped, context=CTX)
    tail = EncryptedBatch((enc.headers[0], enc.headers[2]), enc.records[:10] + enc.records[20:])
    with pytest.raises(DecryptionError):
        env.decrypt_batch(tail, context=CTX)


def test_reordered_sub_batches_are_detected(env: Envelope) -> None:
    enc = env.encrypt_batch(records("a", 20), context=CTX)
    swapped = EncryptedBatch((enc.headers[1], enc.headers[0]), enc.records[10:] + enc.records[:10])
    with pytest.raises(DecryptionError):
        env.decrypt_batch(swapped, context=CTX)


def test_a_sub_batch_from_another_batch_is_detected(env: Envelope) -> None:
    a = env.encrypt_batch(records("a", 20), context=CTX)
    b = env.encrypt_batch(records("b", 20), context=CTX)
    mixed = EncryptedBatch((a.headers[0], b.headers[1]), a.records[:10] + b.records[10:])
    with pytest.raises(DecryptionError):
        env.decrypt_batch(mixed, context=CTX)


def test_one_sub_batch_alone_is_not_a_whole_batch(env: Envelope) -> None:
    enc = env.encrypt_batch(records("a", 20), context=CTX)
    with pytest.raises(DecryptionError):
        env.decrypt_batch(EncryptedBatch((enc.headers[0],), enc.records[:10]), context=CTX)
    # ...while its records still open one by one through their header
    header = env.batch_header(enc.headers[1].to_bytes(), context=CTX)
    assert header.decrypt_record(enc.records[10]) == b"a-10"


def test_single_batches_are_a_group_of_one() -> None:
    env = Envelope(LocalKms.ephemeral())
    enc = env.encrypt_batch([b"x"], context=CTX)
    fields = decode(enc.header.to_bytes())
    assert (fields.part, fields.parts) == (0, 1) and fields.group is not None
    assert isinstance(fields, BatchHeaderFields) and SUITE_RECORD_BATCH == 0x0101
