"""envelope.dask on a real distributed.LocalCluster (2 worker processes), with Vault
Transit (OpenBao) as the KMS and the cluster-secret split; the real backend's calls are
counted in every process (OpenBao refuses audit devices over its API)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import dask.dataframe as dd
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from distributed import Client, LocalCluster

from envelope import ClusterSecret, DecryptionError, Envelope, LocalKms
from envelope.dask import decrypt_columns, encrypt_columns, read_parquet, to_parquet
from envelope.settings import Settings
from tests.support.openbao import OpenBao

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 6


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """Two worker processes that import this tree (src, and tests for fault hooks)."""
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    cluster = LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    )
    c = Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


@pytest.fixture(scope="module")
def settings(openbao: OpenBao, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    work = tmp_path_factory.mktemp("dask-svc")
    openbao.write("transit/keys/dask-svc")
    (work / "token").write_text(openbao.root_token)
    part = ClusterSecret.generate()
    (work / "part").write_bytes(bytes(part.current.material))
    return Settings.model_validate(
        {
            "kms": {
                "kind": "vault",
                "key": "dask-svc",
                "endpoint": openbao.url,
                "vault": {"auth": {"method": "token", "token_file": str(work / "token")}},
            },
            "cluster_secret": {"file": str(work / "part")},
        }
    )


def _install_counter() -> None:
    """Counts the real Vault Transit calls this process makes (run on each worker too)."""
    from envelope.kms._vault import VaultTransit

    if hasattr(VaultTransit, "calls_for_test"):
        return
    VaultTransit.calls_for_test = {"datakey": 0, "decrypt": 0}  # type: ignore[attr-defined]
    generate, unwrap = VaultTransit.generate_data_key, VaultTransit.unwrap

    def counted_generate(self: VaultTransit, context: object) -> object:
        VaultTransit.calls_for_test["datakey"] += 1  # type: ignore[attr-defined]
        return generate(self, context)  # type: ignore[arg-type]

    def counted_unwrap(self: VaultTransit, wrapped: object, context: object) -> object:
        VaultTransit.calls_for_test["decrypt"] += 1  # type: ignore[attr-defined]
        return unwrap(self, wrapped, context)  # type: ignore[arg-type]

    VaultTransit.generate_data_key = counted_generate  # type: ignore[assignment,method-assign]
    VaultTransit.unwrap = counted_unwrap  # type: ignore[assignment,method-assign]


def _calls() -> dict[str, int]:
    from envelope.kms._vault import VaultTransit

    return dict(getattr(VaultTransit, "calls_for_test", {"datakey": 0, "decrypt": 0}))


def kms_calls(client: Client) -> dict[str, int]:
    """Vault calls made so far by this process and every worker process."""
    total = _calls()
    for counts in client.run(_calls).values():
        for k, v in counts.items():
            total[k] += v
    return total


def counted(client: Client, before: dict[str, int]) -> dict[str, int]:
    now = kms_calls(client)
    return {k: now[k] - before[k] for k in now}


def frame(rows: int = 600) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": range(rows),
            "email": [None if i % 7 == 0 else f"user{i}@example.com" for i in range(rows)],
            "amount": [i * 1.5 for i in range(rows)],
        }
    )


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False
    )


def test_parquet_round_trip_on_disk(client: Client, settings: Settings, tmp_path: Path) -> None:
    pdf = frame()
    ddf = dd.from_pandas(pdf, npartitions=PARTITIONS)
    files = to_parquet(ddf, tmp_path / "out", settings, ["email"], aad_column="id")
    assert len(files) == PARTITIONS
    plain = pq.read_table(files[0])  # a plain reader: ciphertext, headers in the metadata
    assert plain.schema.field("email").type in (pa.binary(), pa.large_binary())
    assert b"user1@example.com" not in Path(files[1]).read_bytes()
    back = read_parquet(tmp_path / "out", settings).compute()
    same(back, pdf)


@pytest.mark.parametrize(
    ("strategy", "generate", "unwrap_at_most"),
    [("partition", PARTITIONS, PARTITIONS), ("job", 1, 2)],
)
def test_kms_calls_per_strategy(
    client: Client, settings: Settings, strategy: str, generate: int, unwrap_at_most: int
) -> None:
    _install_counter()
    client.run(_install_counter)
    ddf = dd.from_pandas(frame(), npartitions=PARTITIONS)
    env = Envelope.from_settings(settings)
    before = kms_calls(client)
    sealed = encrypt_columns(ddf, env, ["email"], strategy=strategy).persist()  # type: ignore[arg-type]
    sealed = client.persist(sealed)
    from distributed import wait

    wait(sealed)
    calls = counted(client, before)
    assert calls["datakey"] == generate
    # partition: no unwrap; job: each worker process unwraps the job's key once
    assert calls["decrypt"] <= (0 if strategy == "partition" else 2)
    before = kms_calls(client)
    back = decrypt_columns(sealed, env, strategy=strategy).compute()  # type: ignore[arg-type]
    calls = counted(client, before)
    assert calls["datakey"] == 0
    assert 1 <= calls["decrypt"] <= unwrap_at_most
    if strategy == "partition":
        assert calls["decrypt"] == PARTITIONS
    same(back, frame())


def _kill_on_first_write(marker_path: str) -> None:
    """Installed on each worker: the first partition write anywhere in the cluster writes
    half a file, then its worker process dies (SIGKILL: no cleanup runs)."""
    import envelope.dask._parquet as module

    real = module.pq.write_table
    marker = Path(marker_path)

    def write_table(table: object, where: object, **kw: object) -> None:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            real(table, where, **kw)
            return
        os.close(fd)
        where.write(b"PAR1 half a file")  # type: ignore[attr-defined]
        where.flush()  # type: ignore[attr-defined]
        os.kill(os.getpid(), signal.SIGKILL)

    module.pq.write_table = write_table


def test_killed_worker_job_retries_and_commits_no_partial_file(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    marker = tmp_path / "killed"
    client.run(_kill_on_first_write, str(marker))
    pdf = frame()
    files = to_parquet(
        dd.from_pandas(pdf, npartitions=PARTITIONS), tmp_path / "out", settings, ["email"]
    )
    assert marker.exists()  # a worker really died mid-write
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        Path(f).name for f in files
    )
    for f in files:
        pq.read_metadata(f)  # every committed file is whole
    same(read_parquet(tmp_path / "out", settings).compute(), pdf)
    client.wait_for_workers(2)


def test_tampered_partition_is_detected(client: Client, settings: Settings, tmp_path: Path) -> None:
    files = to_parquet(
        dd.from_pandas(frame(), npartitions=PARTITIONS), tmp_path / "out", settings, ["email"]
    )
    t = pq.read_table(files[3])
    values = t.column("email").to_pylist()
    values[5] = values[5][:-1] + bytes([values[5][-1] ^ 1])
    i = t.schema.get_field_index("email")
    pq.write_table(
        t.set_column(i, t.schema.field("email"), pa.array(values, t.schema.field("email").type)),
        files[3],
    )
    with pytest.raises(
        DecryptionError, match=r"part\.3\.parquet: decryption failed in column 'email' at row 5"
    ):
        read_parquet(tmp_path / "out", settings).compute()


def test_envelope_with_raw_key_bytes_is_refused_before_any_task(client: Client) -> None:
    import pickle

    ddf = dd.from_pandas(frame(10), npartitions=2)
    with pytest.raises(pickle.PicklingError, match="never key bytes"):
        encrypt_columns(ddf, Envelope(LocalKms.ephemeral()), ["email"])


def test_missing_column_is_named(client: Client, settings: Settings) -> None:
    ddf = dd.from_pandas(frame(10), npartitions=2)
    with pytest.raises(ValueError, match="column 'mail' is not in the frame"):
        encrypt_columns(ddf, settings, ["mail"])
