"""Pickled Envelopes over AWS KMS (moto) and Vault Transit (OpenBao): references only."""

from __future__ import annotations

import pickle
from pathlib import Path

import boto3

from envelope import ClusterSecret, Envelope
from envelope.kms._aws import AwsKms
from envelope.settings import Settings
from tests.support.openbao import OpenBao


def test_aws_kms_pickles_as_key_id_region_endpoint(moto_url: str, tmp_path: Path) -> None:
    client = boto3.client("kms", endpoint_url=moto_url, region_name="eu-west-1")
    arn = client.create_key(Description="pickled")["KeyMetadata"]["Arn"]
    part = ClusterSecret.generate()
    (tmp_path / "part").write_bytes(bytes(part.current.material))
    env = Envelope(
        AwsKms(arn, region="eu-west-1", endpoint_url=moto_url),
        ClusterSecret.from_file(tmp_path / "part"),
    )
    blob = pickle.dumps(env)
    assert arn.encode() in blob and moto_url.encode() in blob
    assert b"testing" not in blob  # the credentials come from the worker's environment
    assert bytes(part.current.material) not in blob
    again = pickle.loads(blob)
    assert again.decrypt(env.encrypt(b"aws")) == b"aws"


def test_vault_pickles_as_address_and_token_file(openbao: OpenBao, tmp_path: Path) -> None:
    openbao.write("transit/keys/pickled-svc")
    (tmp_path / "token").write_text(openbao.root_token)
    settings = Settings.model_validate(
        {
            "kms": {
                "kind": "vault",
                "key": "pickled-svc",
                "endpoint": openbao.url,
                "vault": {"auth": {"method": "token", "token_file": str(tmp_path / "token")}},
            }
        }
    )
    env = Envelope.from_settings(settings)
    blob = pickle.dumps(env)
    assert openbao.root_token.encode() not in blob
    assert str(tmp_path / "token").encode() in blob and openbao.url.encode() in blob
    assert pickle.loads(blob).decrypt(env.encrypt(b"vault")) == b"vault"


def test_s3_key_store_pickles_as_uri_endpoint_region(moto_url: str, tmp_path: Path) -> None:
    from envelope import LocalKms
    from envelope.keystore import S3KeyStore

    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="eu-west-1")
    s3.create_bucket(
        Bucket="pickled-keys", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    LocalKms.create(tmp_path / "kr.json")
    store = S3KeyStore("pickled-keys", "svc", endpoint_url=moto_url, region="eu-west-1")
    env = Envelope(LocalKms.open(tmp_path / "kr.json"), keystore=store)
    env.store_new_key("dek")
    blob = pickle.dumps(env)
    assert b"s3://pickled-keys/svc" in blob and moto_url.encode() in blob
    message = env.encrypt(b"stored key", key_ref="dek")
    assert pickle.loads(blob).decrypt(message) == b"stored key"
