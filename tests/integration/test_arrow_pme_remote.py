"""Parquet Modular Encryption through AWS KMS (moto) and Vault Transit (OpenBao), with
the cluster-secret split: real encrypted files written and read back."""

from __future__ import annotations

from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest

from envelope import ClusterSecret, Envelope, LocalKms
from envelope.kms._aws import AwsKms
from envelope.kms._vault import VaultTransit
from envelope.kms._vault_auth import TokenAuth
from tests.support.openbao import OpenBao
from tests.unit.test_arrow_pme import read, table, write


@pytest.fixture
def aws_env(moto_url: str) -> Envelope:
    arn = boto3.client("kms", endpoint_url=moto_url, region_name="eu-west-1").create_key()[
        "KeyMetadata"
    ]["Arn"]
    return Envelope(AwsKms(arn, endpoint_url=moto_url, region="eu-west-1"))


@pytest.fixture
def vault_env(openbao: OpenBao) -> Envelope:
    openbao.write("transit/keys/parquet-svc")
    return Envelope(
        VaultTransit("parquet-svc", url=openbao.url, auth=TokenAuth(openbao.root_token))
    )


@pytest.mark.parametrize("backend", ["aws_env", "vault_env"])
def test_round_trip_and_refusals(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    kms_env: Envelope = request.getfixturevalue(backend)
    part = ClusterSecret.generate()
    env = Envelope(kms_env.kms, part)
    path = tmp_path / "f.parquet"
    write(env, path, plaintext_footer=True)
    assert read(env, path).equals(table())
    # Without the cluster part: the KMS alone unwraps nothing usable.
    with pytest.raises(Exception, match="cluster-secret part"):
        read(Envelope(kms_env.kms), path, ["email"])
    # Without the KMS (a reader holding the part but another KMS key): nothing unwraps.
    with pytest.raises(Exception, match="this Envelope trusts only"):
        read(Envelope(LocalKms.ephemeral(), part), path, ["ssn"])
    # Without decryption properties the protected columns stay closed.
    with pytest.raises(OSError):
        pq.read_table(path, columns=["ssn"])
    assert pq.read_table(path, columns=["id"]).num_rows == 100
