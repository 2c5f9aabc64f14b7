"""encrypt_batch / decrypt_batch on every Arrow string and binary type, and chunked arrays."""

from __future__ import annotations

import pyarrow as pa
import pytest

from envelope import BatchResult, DecryptionError, EncryptedBatch, Envelope, LocalKms
from envelope.kms._local import LocalKms as _LocalKms

STRINGS = ["alice@example.com", None, "", "bob", "é" * 40, None]
TYPES = [
    pa.string(),
    pa.large_string(),
    pa.binary(),
    pa.large_binary(),
    pa.string_view(),
    pa.binary_view(),
]


class CountingKms(_LocalKms):
    """A real local keyring that counts generate/unwrap calls."""

    calls = 0

    def generate_data_key(self, context):  # type: ignore[no-untyped-def]
        type(self).calls += 1
        return super().generate_data_key(context)

    def unwrap(self, wrapped, context):  # type: ignore[no-untyped-def]
        type(self).calls += 1
        return super().unwrap(wrapped, context)


@pytest.fixture
def env() -> Envelope:
    return Envelope(LocalKms.ephemeral())


def _values(typ: pa.DataType) -> list[object]:
    if pa.types.is_string(typ) or pa.types.is_large_string(typ) or typ == pa.string_view():
        return list(STRINGS)
    return [None if v is None else v.encode() for v in STRINGS]


@pytest.mark.parametrize("typ", TYPES, ids=str)
def test_round_trip_restores_type_and_nulls(env: Envelope, typ: pa.DataType) -> None:
    arr = pa.array(_values(typ), typ)
    enc = env.encrypt_batch(arr)
    assert enc.records.type in (pa.binary(), pa.large_binary())
    assert enc.records.null_count == arr.null_count
    assert enc.plain_type == typ
    back = env.decrypt_batch(enc)
    assert back.type == typ
    assert back.to_pylist() == arr.to_pylist()


@pytest.mark.parametrize("typ", TYPES, ids=str)
def test_chunked_array_stays_chunked(env: Envelope, typ: pa.DataType) -> None:
    values = _values(typ)
    chunked = pa.chunked_array([values[:2], values[2:], []], typ)
    enc = env.encrypt_batch(chunked)
    assert isinstance(enc.records, pa.ChunkedArray)
    back = env.decrypt_batch(enc)
    assert isinstance(back, pa.ChunkedArray)
    assert back.type == typ and back.to_pylist() == values


def test_empty_chunked_array(env: Envelope) -> None:
    enc = env.encrypt_batch(pa.chunked_array([], pa.string()))
    assert env.decrypt_batch(enc).to_pylist() == []


def test_one_kms_call_per_call() -> None:
    kms = CountingKms.ephemeral()
    env = Envelope(kms)
    CountingKms.calls = 0
    enc = env.encrypt_batch(pa.chunked_array([["a"] * 1000, ["b"] * 1000]))
    assert CountingKms.calls == 1
    env.decrypt_batch(enc)
    assert CountingKms.calls == 2


def test_from_parts_with_plain_type(env: Envelope) -> None:
    enc = env.encrypt_batch(pa.array(["x", "y"], pa.large_string()))
    again = EncryptedBatch.from_parts(enc.header.to_bytes(), enc.records, pa.large_string())
    assert env.decrypt_batch(again).type == pa.large_string()
    plain = EncryptedBatch.from_parts(enc.header.to_bytes(), enc.records)
    assert env.decrypt_batch(plain).to_pylist() == [b"x", b"y"]


def test_collect_mode_on_strings_nulls_the_bad_value(env: Envelope) -> None:
    enc = env.encrypt_batch(pa.array(["one", "two", "three"]))
    values = enc.records.to_pylist()
    values[1] = values[1][:-1] + bytes([values[1][-1] ^ 1])
    bad = EncryptedBatch(enc.headers, pa.array(values, pa.binary()), pa.string())
    result = env.decrypt_batch(bad, errors="collect")
    assert isinstance(result, BatchResult)
    assert result.failed == (1,)
    assert result.records.type == pa.string()
    assert result.records.to_pylist() == ["one", None, "three"]
    with pytest.raises(DecryptionError):
        env.decrypt_batch(bad)


@pytest.mark.parametrize(
    "arr", [pa.array([[1, 2]]), pa.array([1, 2]), pa.array([{"a": "b"}])], ids=str
)
def test_other_types_are_refused_naming_the_type(env: Envelope, arr: pa.Array) -> None:
    with pytest.raises(TypeError, match=str(arr.type).split("<")[0]):
        env.encrypt_batch(arr)
