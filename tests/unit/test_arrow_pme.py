"""Parquet Modular Encryption with envelope's KmsClient over a local keyring."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from envelope import ClusterSecret, Envelope, LocalKms
from envelope.arrow import KmsClient, crypto_factory, decryption_properties, encryption_properties


def table() -> pa.Table:
    return pa.table(
        {
            "id": list(range(100)),
            "email": [f"u{i}@example.com" for i in range(100)],
            "ssn": [f"{i:09d}" for i in range(100)],
        }
    )


def write(env: Envelope, path: Path, *, plaintext_footer: bool = False) -> None:
    props = encryption_properties(
        crypto_factory(env),
        footer_key="footer",
        column_keys={"pii": ["email"], "ids": ["ssn"]},
        plaintext_footer=plaintext_footer,
    )
    pq.write_table(table(), path, encryption_properties=props)


def read(env: Envelope, path: Path, columns: list[str] | None = None) -> pa.Table:
    props = decryption_properties(crypto_factory(env))
    return pq.read_table(path, columns=columns, decryption_properties=props)


@pytest.fixture
def keyring(tmp_path: Path) -> Path:
    LocalKms.create(tmp_path / "kr.json")
    return tmp_path / "kr.json"


@pytest.fixture
def part() -> ClusterSecret:
    return ClusterSecret.generate()


def test_write_and_read_back(keyring: Path, part: ClusterSecret, tmp_path: Path) -> None:
    env = Envelope(LocalKms.open(keyring), part)
    write(env, tmp_path / "f.parquet")
    assert read(env, tmp_path / "f.parquet").equals(table())
    raw = (tmp_path / "f.parquet").read_bytes()
    assert b"u7@example.com" not in raw and b"000000042" not in raw


def test_no_decryption_properties_cannot_read(
    keyring: Path, part: ClusterSecret, tmp_path: Path
) -> None:
    write(Envelope(LocalKms.open(keyring), part), tmp_path / "f.parquet")
    with pytest.raises(OSError, match=r"(?i)encrypt|footer|magic"):
        pq.read_table(tmp_path / "f.parquet")


def test_without_the_cluster_part_nothing_protected_reads(
    keyring: Path, part: ClusterSecret, tmp_path: Path
) -> None:
    write(Envelope(LocalKms.open(keyring), part), tmp_path / "f.parquet", plaintext_footer=True)
    kms_only = Envelope(LocalKms.open(keyring))
    assert pq.read_table(tmp_path / "f.parquet", columns=["id"]).column("id").to_pylist()[:3] == [
        0,
        1,
        2,
    ]
    for column in ("email", "ssn"):
        with pytest.raises(Exception, match="cluster-secret part"):
            read(kms_only, tmp_path / "f.parquet", [column])
    other_part = Envelope(LocalKms.open(keyring), ClusterSecret.generate())
    with pytest.raises(Exception, match="cluster-secret part"):
        read(other_part, tmp_path / "f.parquet", ["email"])


def test_without_the_kms_nothing_protected_reads(
    keyring: Path, part: ClusterSecret, tmp_path: Path
) -> None:
    write(Envelope(LocalKms.open(keyring), part), tmp_path / "f.parquet")
    with pytest.raises(Exception, match="this Envelope trusts only"):
        read(Envelope(LocalKms.ephemeral(), part), tmp_path / "f.parquet")


def test_master_keys_map_to_their_own_envelopes(keyring: Path, tmp_path: Path) -> None:
    footer_env = Envelope(LocalKms.open(keyring))
    pii_env = Envelope(LocalKms.ephemeral())
    factory = crypto_factory(footer_env, envelopes={"pii": pii_env})
    props = encryption_properties(
        factory, footer_key="footer", column_keys={"pii": ["email"]}, plaintext_footer=True
    )
    pq.write_table(table(), tmp_path / "f.parquet", encryption_properties=props)
    got = pq.read_table(
        tmp_path / "f.parquet", decryption_properties=decryption_properties(factory)
    )
    assert got.equals(table())
    without_pii = crypto_factory(footer_env)
    with pytest.raises(Exception, match="this Envelope trusts only"):
        pq.read_table(
            tmp_path / "f.parquet",
            columns=["email"],
            decryption_properties=decryption_properties(without_pii),
        )


def test_wrapped_keys_are_bound_to_their_master_key() -> None:
    client = KmsClient(Envelope(LocalKms.ephemeral()))
    wrapped = client.wrap_key(b"k" * 32, "pii")
    assert client.unwrap_key(wrapped, "pii") == b"k" * 32
    from envelope import DecryptionError

    with pytest.raises(DecryptionError):
        client.unwrap_key(wrapped, "footer")


def test_client_needs_an_envelope() -> None:
    with pytest.raises(ValueError, match="give an Envelope"):
        KmsClient()
