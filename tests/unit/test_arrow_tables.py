"""envelope.arrow: encrypt_table / decrypt_table and Parquet files of them."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from envelope import (
    ClusterSecret,
    ConfigError,
    DecryptionError,
    Envelope,
    FormatError,
    KeyUnavailableError,
    LocalKms,
)
from envelope.arrow import (
    METADATA_KEY,
    TableResult,
    decrypt_table,
    encrypt_table,
    encrypted_columns,
    read_row_group,
    read_table,
    write_table,
)
from tests.unit.test_batch_arrow_types import CountingKms


@pytest.fixture
def env() -> Envelope:
    return Envelope(LocalKms.ephemeral(), ClusterSecret.generate())


def people(n: int = 10) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "email": pa.array(
                [None if i % 4 == 1 else f"user{i}@example.com" for i in range(n)], pa.string()
            ),
            "ssn": pa.array([f"{i:03d}-00-0000".encode() for i in range(n)], pa.large_binary()),
            "score": pa.array([float(i) for i in range(n)], pa.float64()),
        },
        metadata={b"owner": b"data team"},
    )


def _tamper(table: pa.Table, column: str, row: int) -> pa.Table:
    values = table.column(column).to_pylist()
    values[row] = values[row][:-1] + bytes([values[row][-1] ^ 1])
    i = table.schema.get_field_index(column)
    return table.set_column(
        i, table.schema.field(column), pa.array(values, table.column(column).type)
    )


def test_round_trip_keeps_types_nulls_and_other_columns(env: Envelope) -> None:
    t = people()
    sealed = encrypt_table(env, t, ["email", "ssn"], aad_column="id")
    assert sealed.column("score").equals(t.column("score"))
    assert sealed.schema.field("email").type == pa.binary()
    assert sealed.column("email").null_count == t.column("email").null_count
    assert encrypted_columns(sealed) == ["email", "ssn"]
    assert sealed.schema.metadata == {b"owner": b"data team"}
    back = decrypt_table(env, sealed)
    assert back.equals(t) and back.schema.field("ssn").type == pa.large_binary()
    assert encrypted_columns(back) == []


@pytest.mark.parametrize(
    "typ", [pa.string(), pa.large_string(), pa.string_view(), pa.binary_view()], ids=str
)
def test_every_string_and_binary_type(env: Envelope, typ: pa.DataType) -> None:
    values = ["x", None, "", "y" * 100]
    arr = pa.array(values if "string" in str(typ) else [v and v.encode() for v in values], typ)
    t = pa.table({"v": arr})
    assert decrypt_table(env, encrypt_table(env, t, ["v"])).equals(t)


def test_one_kms_call_per_encrypted_column() -> None:
    env = Envelope(CountingKms.ephemeral())
    CountingKms.calls = 0
    t = pa.concat_tables([people(100)] * 5)  # five record batches
    sealed = encrypt_table(env, t, ["email", "ssn"])
    assert CountingKms.calls == 2
    assert len(json.loads(sealed.schema.field("email").metadata[METADATA_KEY])["headers"]) == 5
    CountingKms.calls = 0
    decrypt_table(env, sealed)
    assert CountingKms.calls == 2


def test_record_batches_decrypt_alone(env: Envelope) -> None:
    t = people(10)
    sealed = encrypt_table(env, t, ["email"], batch_rows=4)
    batches = sealed.to_batches(max_chunksize=4)
    assert [b.num_rows for b in batches] == [4, 4, 2]
    back = decrypt_table(env, batches[1], row_offset=4)
    assert isinstance(back, pa.RecordBatch)
    assert back.column(1).to_pylist() == t.column("email").to_pylist()[4:8]
    with pytest.raises(ValueError, match="do not line up"):
        decrypt_table(env, sealed.slice(2, 4), row_offset=2)


def test_record_batch_in_record_batch_out(env: Envelope) -> None:
    rb = people(3).to_batches()[0]
    sealed = encrypt_table(env, rb, ["email"])
    assert isinstance(sealed, pa.RecordBatch)
    assert decrypt_table(env, sealed).equals(rb)


def test_moved_value_fails_naming_column_and_row(env: Envelope) -> None:
    sealed = encrypt_table(env, people(), ["email"], aad_column="id")
    ids = sealed.column("id").to_pylist()
    ids[2], ids[3] = ids[3], ids[2]  # rows keep their ciphertext but change keys
    swapped = sealed.set_column(0, sealed.schema.field("id"), pa.array(ids, pa.int64()))
    with pytest.raises(DecryptionError, match="column 'email' at row 2") as info:
        decrypt_table(env, swapped)
    assert info.value.index == 2


def test_swapped_columns_fail(env: Envelope) -> None:
    t = pa.table({"a": ["1", "2"], "b": ["3", "4"]})
    sealed = encrypt_table(env, t, ["a", "b"])
    swapped = pa.table(
        [sealed.column("b"), sealed.column("a")],
        schema=pa.schema(
            [sealed.schema.field("b").with_name("a"), sealed.schema.field("a").with_name("b")]
        ),
    )
    with pytest.raises(DecryptionError, match="sealed for column 'b'"):
        decrypt_table(env, swapped)


def test_tampered_value_raises_or_is_collected(env: Envelope) -> None:
    t = people()
    bad = _tamper(encrypt_table(env, t, ["email", "ssn"]), "ssn", 7)
    with pytest.raises(DecryptionError, match="column 'ssn' at row 7"):
        decrypt_table(env, bad)
    result = decrypt_table(env, bad, errors="collect")
    assert isinstance(result, TableResult) and not result.ok
    assert result.failed == {"email": (), "ssn": (7,)}
    expected = t.column("ssn").to_pylist()
    expected[7] = None
    assert result.table.column("ssn").to_pylist() == expected
    assert result.table.column("email").equals(t.column("email"))


def test_context_is_checked(env: Envelope) -> None:
    sealed = encrypt_table(env, people(), ["email"], context={"table": "people"})
    assert decrypt_table(env, sealed, context={"table": "people"}).equals(people())
    with pytest.raises(DecryptionError):
        decrypt_table(env, sealed, context={"table": "other"})


def test_another_key_names_the_column(env: Envelope) -> None:
    sealed = encrypt_table(env, people(), ["email"])
    with pytest.raises(KeyUnavailableError, match="column 'email'"):
        decrypt_table(Envelope(LocalKms.ephemeral()), sealed)


@pytest.mark.parametrize(
    ("columns", "aad", "error", "match"),
    [
        (["nope"], None, ValueError, "column 'nope' is not in the table"),
        (["score"], None, TypeError, "column 'score' has type double"),
        (["tags"], None, TypeError, "column 'tags' has type list"),
        (["email"], "nope", ValueError, "AAD column 'nope'"),
        (["email"], "email", ValueError, "cannot be encrypted itself"),
        (["email"], "tags", TypeError, "AAD column 'tags'"),
    ],
)
def test_bad_input_names_the_column(
    env: Envelope, columns: list[str], aad: str | None, error: type[Exception], match: str
) -> None:
    t = people(2).append_column("tags", pa.array([["a"], []]))
    with pytest.raises(error, match=match):
        encrypt_table(env, t, columns, aad_column=aad)


def test_encrypting_twice_is_refused(env: Envelope) -> None:
    with pytest.raises(ValueError, match="already encrypted"):
        encrypt_table(env, encrypt_table(env, people(), ["email"]), ["email"])


def test_missing_or_corrupt_metadata_names_the_column(env: Envelope) -> None:
    sealed = encrypt_table(env, people(), ["email"])
    stripped = sealed.replace_schema_metadata(None).cast(
        pa.schema([f.remove_metadata() for f in sealed.schema])
    )
    with pytest.raises(FormatError, match="column 'email' has no envelope header"):
        decrypt_table(env, stripped, columns=["email"])
    i = sealed.schema.get_field_index("email")
    corrupt = sealed.schema.field("email").with_metadata({METADATA_KEY: b"{not json"})
    with pytest.raises(FormatError, match="column 'email': the envelope metadata is corrupt"):
        decrypt_table(env, sealed.set_column(i, corrupt, sealed.column("email")))


def test_parquet_round_trip_through_a_plain_reader(env: Envelope, tmp_path: Path) -> None:
    t = people(10)
    pq.write_table(
        encrypt_table(env, t, ["email"], aad_column="id", batch_rows=4),
        tmp_path / "p.parquet",
        row_group_size=4,
    )
    plain = pq.read_table(tmp_path / "p.parquet")  # no envelope involved
    assert plain.column("email").type == pa.binary()
    assert decrypt_table(env, plain).equals(t)
    f = pq.ParquetFile(tmp_path / "p.parquet")
    assert f.num_row_groups == 3
    group = decrypt_table(env, f.read_row_group(2), row_offset=8)
    assert group.column("email").to_pylist() == t.column("email").to_pylist()[8:]


def test_write_and_read_helpers(env: Envelope, tmp_path: Path) -> None:
    t = people(10)
    path = tmp_path / "people.parquet"
    write_table(env, t, path, ["email", "ssn"], aad_column="id", row_group_size=3)
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_table(env, path).equals(t)
    assert read_table(env, path, columns=["email"]).column_names == ["email", "id"]
    assert read_row_group(env, path, 3).column("id").to_pylist() == [9]
    with pytest.raises(KeyUnavailableError, match=f"{path}: column 'email'"):
        read_table(Envelope(LocalKms.ephemeral()), path)
    with pytest.raises(ConfigError, match="cannot read"):
        read_table(env, tmp_path / "missing.parquet")
    assert [p.name for p in tmp_path.iterdir()] == ["people.parquet"]  # no temp file left


def test_tampered_file_names_file_column_and_row(env: Envelope, tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(_tamper(encrypt_table(env, people(), ["ssn"]), "ssn", 4), path)
    with pytest.raises(
        DecryptionError, match=f"{path}: decryption failed in column 'ssn' at row 4"
    ):
        read_table(env, path)


def test_empty_table(env: Envelope) -> None:
    t = people(0)
    assert decrypt_table(env, encrypt_table(env, t, ["email"])).equals(t)
