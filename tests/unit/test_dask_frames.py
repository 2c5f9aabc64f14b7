"""envelope.dask on Dask's synchronous scheduler (the cluster tests are in integration)."""

from __future__ import annotations

from pathlib import Path

import dask
import dask.dataframe as dd
import pandas as pd
import pyarrow as pa
import pytest

from envelope import DecryptionError, Envelope, KeyUnavailableError, LocalKms
from envelope.dask import HEADER_SUFFIX, decrypt_columns, encrypt_columns, read_parquet, to_parquet


@pytest.fixture(autouse=True)
def synchronous() -> object:
    with dask.config.set(scheduler="synchronous"):
        yield


@pytest.fixture
def env(tmp_path: Path) -> Envelope:
    LocalKms.create(tmp_path / "kr.json")
    return Envelope(LocalKms.open(tmp_path / "kr.json"), threads=1)


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": range(40),
            "email": [None if i % 5 == 0 else f"u{i}@example.com" for i in range(40)],
            "blob": pd.Series(
                [bytes([i]) * 3 for i in range(40)], dtype=pd.ArrowDtype(pa.binary())
            ),
        }
    )


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False
    )


@pytest.mark.parametrize("strategy", ["partition", "job"])
def test_round_trip_in_memory(env: Envelope, strategy: str) -> None:
    ddf = dd.from_pandas(frame(), npartitions=4)
    sealed = encrypt_columns(ddf, env, ["email", "blob"], aad_column="id", strategy=strategy)  # type: ignore[arg-type]
    assert f"email{HEADER_SUFFIX}" in sealed.columns
    got = sealed.compute()
    assert got["email"].dropna().map(len).min() > len("u1@example.com")
    back = decrypt_columns(
        sealed,
        env,
        aad_column="id",
        as_bytes=["blob"],
        strategy=strategy,  # type: ignore[arg-type]
    ).compute()
    same(back, frame())


def test_moved_rows_fail_with_aad(env: Envelope) -> None:
    sealed = encrypt_columns(
        dd.from_pandas(frame(), npartitions=2), env, ["email"], aad_column="id"
    )
    moved = sealed.assign(id=sealed["id"] + 1)
    with pytest.raises(DecryptionError, match="column 'email' at row"):
        decrypt_columns(moved, env, aad_column="id").compute()


def test_merged_partitions_decrypt_split_ones_are_refused(env: Envelope) -> None:
    sealed = encrypt_columns(dd.from_pandas(frame(), npartitions=4), env, ["email"])
    same(
        decrypt_columns(sealed.repartition(npartitions=2), env).compute()[["email"]],
        frame()[["email"]],
    )
    split = sealed.repartition(npartitions=8)
    with pytest.raises((ValueError, DecryptionError), match=r"line up|decryption failed"):
        decrypt_columns(split, env).compute()


def test_parquet_local_scheduler_and_errors(env: Envelope, tmp_path: Path) -> None:
    files = to_parquet(dd.from_pandas(frame(), npartitions=3), tmp_path / "out", env, ["email"])
    assert [Path(f).name for f in files] == [f"part.{i}.parquet" for i in range(3)]
    same(read_parquet(tmp_path / "out", env).compute(), frame())
    LocalKms.create(tmp_path / "other.json")
    other = Envelope(LocalKms.open(tmp_path / "other.json"))
    with pytest.raises(KeyUnavailableError, match=r"part\.\d\.parquet: column 'email'"):
        read_parquet(tmp_path / "out", other).compute()
    from envelope import ConfigError

    with pytest.raises(ConfigError, match=r"no part\.N\.parquet"):
        read_parquet(tmp_path, env)
    with pytest.raises(ValueError, match="strategy"):
        encrypt_columns(dd.from_pandas(frame(), npartitions=1), env, ["email"], strategy="row")  # type: ignore[arg-type]
