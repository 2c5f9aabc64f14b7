"""Record batches: shapes, AAD, single-record decryption, tampering, splitting."""

from __future__ import annotations

import array
import dataclasses
import os
import struct

import numpy as np
import pyarrow as pa
import pytest

from envelope import (
    BatchHeader,
    BatchResult,
    ClusterSecret,
    DecryptionError,
    EncryptedBatch,
    Envelope,
    FormatError,
    KeyUnavailableError,
    LocalKms,
)
from envelope import _batch as batch
from envelope._batch import cipher as batch_cipher
from envelope._format import batch as batch_format
from envelope._format.context import Context, encode_context
from envelope._format.message import PREAMBLE_LEN, encode_split
from envelope.kms._types import DataKey

RECORDS = [b"alice@example.com", b"", b"bob@example.org", os.urandom(1000), b"x"]
PKS = [f"pk-{i}".encode() for i in range(len(RECORDS))]
CTX = {"table": "users", "column": "email"}


class CountingKms(LocalKms):
    calls = 0

    def generate_data_key(self, context: Context) -> DataKey:
        CountingKms.calls += 1
        return super().generate_data_key(context)


@pytest.fixture
def env() -> Envelope:
    return Envelope(LocalKms.ephemeral(), ClusterSecret.generate())


def as_buffer(records: list[bytes]) -> tuple[bytes, array.array[int]]:
    offsets = array.array("q", [0])
    for r in records:
        offsets.append(offsets[-1] + len(r))
    return b"".join(records), offsets


def test_list_round_trip_keeps_shape(env: Envelope) -> None:
    enc = env.encrypt_batch(RECORDS, context=CTX)
    assert isinstance(enc.records, list) and len(enc) == len(RECORDS)
    assert [len(r) for r in enc.records] == [len(r) + batch.RECORD_OVERHEAD for r in RECORDS]
    assert env.decrypt_batch(enc, context=CTX) == RECORDS


@pytest.mark.parametrize("offset_kind", ["int64", "int32", "list", "numpy"])
def test_buffer_round_trip(env: Envelope, offset_kind: str) -> None:
    data, offsets = as_buffer(RECORDS)
    given: object = {
        "int64": offsets,
        "int32": array.array("i", offsets),
        "list": list(offsets),
        "numpy": np.asarray(offsets, dtype=np.int64),
    }[offset_kind]
    enc = env.encrypt_batch((data, given))
    out_data, out_offsets = enc.records
    assert isinstance(out_data, bytes) and len(out_offsets) == len(RECORDS) + 1
    assert len(out_data) == len(data) + batch.RECORD_OVERHEAD * len(RECORDS)
    back_data, back_offsets = env.decrypt_batch(enc, any_context=True)
    assert back_data == data and list(back_offsets) == list(offsets)


def test_buffer_offsets_need_not_start_at_zero(env: Envelope) -> None:
    data = b"HEAD" + b"".join(RECORDS)
    _, offsets = as_buffer(RECORDS)
    shifted = array.array("q", [o + 4 for o in offsets])
    enc = env.encrypt_batch((data, shifted))
    assert env.decrypt_batch(enc, any_context=True)[0] == b"".join(RECORDS)


@pytest.mark.parametrize("typ", [pa.binary(), pa.large_binary()])
def test_arrow_round_trip_with_nulls_and_slices(env: Envelope, typ: pa.DataType) -> None:
    arr = pa.array([*RECORDS, None, b"tail"], type=typ)
    for a in (arr, arr.slice(2, 4)):
        enc = env.encrypt_batch(a)
        assert enc.records.type == typ and enc.records.null_count == a.null_count
        back = env.decrypt_batch(enc, any_context=True)
        assert back.type == typ and back.to_pylist() == a.to_pylist()


def test_arrow_chunked_array(env: Envelope) -> None:
    chunked = pa.chunked_array([[b"a", b"b"], [b"c"]], type=pa.binary())
    assert env.decrypt_batch(env.encrypt_batch(chunked), any_context=True).to_pylist() == [
        b"a",
        b"b",
        b"c",
    ]


def test_numpy_fixed_width(env: Envelope) -> None:
    rows = np.frombuffer(os.urandom(64 * 100), dtype=np.uint8).reshape(100, 64)
    enc = env.encrypt_batch(rows)
    assert enc.records.shape == (100, 64 + batch.RECORD_OVERHEAD)
    assert (env.decrypt_batch(enc, any_context=True) == rows).all()


def test_empty_batch(env: Envelope) -> None:
    enc = env.encrypt_batch([])
    assert enc.records == [] and env.decrypt_batch(enc, any_context=True) == []


@pytest.mark.parametrize(
    "bad",
    [
        [1, 2],
        "text",
        (b"ab", [0, 3]),
        (b"ab", [1, 0]),
        (b"ab", []),
        np.zeros((2, 2), np.int32),
        pa.array([[1]]),  # a nested type (strings are accepted)
        (b"a", [0], "extra"),
    ],
)
def test_bad_inputs_are_refused(env: Envelope, bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        env.encrypt_batch(bad)


def test_same_plaintext_never_repeats_ciphertext(env: Envelope) -> None:
    enc = env.encrypt_batch([b"same value"] * 20_000)
    assert len(set(enc.records)) == 20_000
    assert [int.from_bytes(r[:4], "big") for r in enc.records] == list(range(20_000))


def test_one_kms_call_per_batch() -> None:
    CountingKms.calls = 0
    kms = CountingKms.ephemeral()
    env = Envelope(kms)
    env.encrypt_batch([os.urandom(64) for _ in range(50_000)])
    assert CountingKms.calls == 1


@pytest.mark.parametrize("shape", ["list", "buffer", "arrow", "numpy"])
def test_aad_binds_rows_in_every_shape(env: Envelope, shape: str) -> None:
    recs = [os.urandom(16) for _ in range(5)]
    pks = [f"pk-{i:04d}".encode() for i in range(5)]
    swapped_pks = [pks[1], pks[0], *pks[2:]]

    def shaped(values: list[bytes]) -> object:
        if shape == "list":
            return values
        if shape == "buffer":
            return as_buffer(values)
        if shape == "arrow":
            return pa.array(values, pa.binary())
        return np.frombuffer(b"".join(values), np.uint8).reshape(len(values), -1)

    enc = env.encrypt_batch(shaped(recs), aad=shaped(pks))
    back = env.decrypt_batch(enc, aad=shaped(pks))
    assert back is not None
    with pytest.raises(DecryptionError) as info:
        env.decrypt_batch(enc, aad=shaped(swapped_pks))
    assert info.value.index == 0
    with pytest.raises(DecryptionError):
        env.decrypt_batch(enc, any_context=True)  # AAD missing


def test_aad_count_must_match(env: Envelope) -> None:
    with pytest.raises(ValueError, match="aad"):
        env.encrypt_batch(RECORDS, aad=PKS[:-1])


def test_decrypt_record_alone_from_stored_header(env: Envelope) -> None:
    enc = env.encrypt_batch(RECORDS, aad=PKS, context=CTX)
    stored_header = enc.header.to_bytes()
    rows = dict(zip(PKS, enc.records, strict=True))
    # Later, another process: one KMS call for the header, then any row alone.
    header = env.batch_header(stored_header, context=CTX)
    assert header.decrypt_record(rows[b"pk-3"], aad=b"pk-3") == RECORDS[3]
    # A ciphertext moved to another row fails.
    with pytest.raises(DecryptionError):
        header.decrypt_record(rows[b"pk-3"], aad=b"pk-2")
    # A header without its key cannot decrypt.
    with pytest.raises(Exception, match="no key"):
        BatchHeader.from_bytes(stored_header).decrypt_record(rows[b"pk-1"], aad=b"pk-1")


def test_record_from_another_batch_fails(env: Envelope) -> None:
    one, two = env.encrypt_batch(RECORDS), env.encrypt_batch(RECORDS)
    with pytest.raises(DecryptionError):
        one.header.decrypt_record(two.records[0])
    with pytest.raises(DecryptionError):
        env.decrypt_batch(EncryptedBatch((one.header,), two.records), any_context=True)


def test_wrong_context(env: Envelope) -> None:
    enc = env.encrypt_batch(RECORDS, context=CTX)
    with pytest.raises(DecryptionError):
        env.decrypt_batch(enc, context={"table": "orders", "column": "email"})
    with pytest.raises(DecryptionError):
        env.batch_header(enc.header.to_bytes(), context={})


def test_tampered_header_fails(env: Envelope) -> None:
    enc = env.encrypt_batch(RECORDS, context=CTX)
    raw = enc.header.to_bytes()
    for i in range(len(raw)):
        bad = bytearray(raw)
        bad[i] ^= 0x20
        with pytest.raises(DecryptionError):
            env.decrypt_batch(EncryptedBatch.from_parts(bytes(bad), enc.records), any_context=True)


def test_swapped_records_fail_with_their_index(env: Envelope) -> None:
    enc = env.encrypt_batch(RECORDS)
    recs = list(enc.records)
    recs[2], recs[3] = recs[3], recs[2]
    with pytest.raises(DecryptionError) as info:
        env.decrypt_batch(EncryptedBatch(enc.headers, recs), any_context=True)
    assert info.value.index == 2
    assert RECORDS[2].decode() not in str(info.value)


def test_added_or_dropped_records_fail(env: Envelope) -> None:
    enc = env.encrypt_batch(RECORDS)
    for recs in (enc.records[:-1], [*enc.records, enc.records[0]]):
        with pytest.raises(DecryptionError):
            env.decrypt_batch(EncryptedBatch(enc.headers, recs), any_context=True)


def test_collect_mode(env: Envelope) -> None:
    enc = env.encrypt_batch(RECORDS)
    recs = list(enc.records)
    recs[1] = recs[1][:-1] + bytes([recs[1][-1] ^ 1])
    recs[4] = b"short"
    result = env.decrypt_batch(
        EncryptedBatch(enc.headers, recs), errors="collect", any_context=True
    )
    assert isinstance(result, BatchResult) and not result.ok
    assert result.failed == (1, 4)
    assert result.records == [RECORDS[0], None, RECORDS[2], RECORDS[3], None]
    clean = env.decrypt_batch(enc, errors="collect")
    assert clean.ok and clean.records == RECORDS


def test_collect_mode_arrow_and_numpy(env: Envelope) -> None:
    enc = env.encrypt_batch(pa.array(RECORDS, pa.binary()))
    data, offsets = enc.records.buffers()[2], enc.records.buffers()[1]
    raw = bytearray(data.to_pybytes())
    raw[-1] ^= 1  # last record's tag
    tampered = pa.Array.from_buffers(pa.binary(), len(RECORDS), [None, offsets, pa.py_buffer(raw)])
    result = env.decrypt_batch(
        EncryptedBatch(enc.headers, tampered), errors="collect", any_context=True
    )
    assert result.failed == (4,)
    assert result.records.to_pylist() == [*RECORDS[:4], None]
    rows = np.frombuffer(os.urandom(48), np.uint8).reshape(3, 16)
    enc2 = env.encrypt_batch(rows)
    bad = enc2.records.copy()
    bad[1, 10] ^= 1
    result2 = env.decrypt_batch(
        EncryptedBatch(enc2.headers, bad), errors="collect", any_context=True
    )
    assert result2.failed == (1,)
    assert (result2.records[1] == 0).all() and (result2.records[0] == rows[0]).all()


def test_errors_argument_is_checked(env: Envelope) -> None:
    with pytest.raises(ValueError, match="errors"):
        env.decrypt_batch(env.encrypt_batch([b"x"]), errors="ignore", any_context=True)  # type: ignore[arg-type]


@pytest.mark.parametrize("shape", ["list", "buffer", "arrow", "numpy"])
def test_large_inputs_are_split_into_batches(
    env: Envelope, monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    monkeypatch.setattr(batch_cipher, "MAX_RECORDS_PER_BATCH", 1000)
    values = [os.urandom(8) for _ in range(2500)]
    given: object = {
        "list": values,
        "buffer": as_buffer(values),
        "arrow": pa.array(values, pa.binary()),
        "numpy": np.frombuffer(b"".join(values), np.uint8).reshape(2500, 8),
    }[shape]
    aad = [str(i).encode() for i in range(2500)]
    enc = env.encrypt_batch(given, aad=aad)
    assert [h.record_count for h in enc.headers] == [1000, 1000, 500]
    assert len({h.fields.slots[0].wrapped for h in enc.headers}) == 3  # a data key each
    with pytest.raises(ValueError, match="split"):
        _ = enc.header
    back = env.decrypt_batch(enc, aad=aad)
    if shape == "list":
        assert back == values
    elif shape == "buffer":
        assert back[0] == b"".join(values) and len(back[1]) == 2501
    elif shape == "arrow":
        assert back.to_pylist() == values
    else:
        assert back.tobytes() == b"".join(values)


def test_header_parsing() -> None:
    env = Envelope(LocalKms.ephemeral())
    enc = env.encrypt_batch(RECORDS, context=CTX)
    parsed = BatchHeader.from_bytes(enc.header.to_bytes())
    assert parsed.context == CTX and parsed.record_count == len(RECORDS)
    assert parsed.cluster_secret_id is None
    assert "key=none" in repr(parsed) and "key=held" in repr(enc.header)
    with pytest.raises(FormatError):
        BatchHeader.from_bytes(enc.header.to_bytes() + b"x")
    with pytest.raises(FormatError):
        BatchHeader.from_bytes(b"\x89ENV" + enc.header.to_bytes()[4:])


def test_record_count_above_the_nonce_budget_is_malformed(env: Envelope) -> None:
    # Found by the CI fuzz run: a count with its top bit set reached len() (OverflowError).
    enc = env.encrypt_batch([b"r1", b"r2"], context=CTX)
    raw = enc.header.to_bytes()
    fields = batch_format.decode(raw)
    at = PREAMBLE_LEN + 2 + len(encode_context(fields.context)) + len(encode_split(fields.split))
    assert struct.unpack(">Q", raw[at : at + 8]) == (2,)

    def with_count(n: int) -> bytes:
        return raw[:at] + struct.pack(">Q", n) + raw[at + 8 :]

    assert batch_format.decode(with_count(1 << 32)).record_count == 1 << 32
    for n in ((1 << 32) + 1, (1 << 63) + 2, (1 << 64) - 1):
        with pytest.raises(FormatError, match="record count"):
            BatchHeader.from_bytes(with_count(n))
        with pytest.raises(FormatError, match="record count"):
            env.decrypt_batch(EncryptedBatch.from_parts(with_count(n), enc.records), context=CTX)
    with pytest.raises(ValueError, match="record count"):
        batch_format.encode(dataclasses.replace(fields, record_count=(1 << 32) + 1))
    assert batch_format.MAX_RECORD_COUNT == batch_cipher.MAX_RECORDS_PER_BATCH


def test_other_kms_is_named(env: Envelope) -> None:
    enc = env.encrypt_batch(RECORDS)
    with pytest.raises(KeyUnavailableError):
        Envelope(LocalKms.ephemeral()).decrypt_batch(enc, any_context=True)
