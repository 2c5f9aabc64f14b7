"""Key stores (a directory, and S3 on moto over HTTP), and Envelope's key_ref."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from envelope import ClusterSecret, DecryptionError, Envelope, KeyUnavailableError, LocalKms, cli
from envelope._exitcodes import ExitCode
from envelope._format.message import parse_header
from envelope.errors import ConfigError
from envelope.keystore import FileKeyStore, KeyStore, S3KeyStore, VersionConflict
from envelope.kms._aws import AwsKms


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyStore]:
    if request.param == "file":
        yield FileKeyStore(tmp_path / "keys")
        return
    url = request.getfixturevalue("moto_url")
    s3 = boto3.client("s3", endpoint_url=url, region_name="eu-west-1")
    bucket = f"keys-{os.urandom(4).hex()}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    yield S3KeyStore(bucket, "team-a", client=s3)


def test_versions_and_reads(store: KeyStore) -> None:
    assert store.create("service-a/dek", b"one") == 1
    assert store.create("service-a/dek", b"two") == 2
    assert store.create("service-b/dek", b"other") == 1
    assert store.versions("service-a/dek") == [1, 2]
    assert store.get("service-a/dek").blob == b"two"
    assert store.get("service-a/dek", 1).blob == b"one"
    assert store.names() == ["service-a/dek", "service-b/dek"]
    assert store.names("service-b") == ["service-b/dek"]
    with pytest.raises(KeyUnavailableError, match="no key named"):
        store.get("absent")
    with pytest.raises(KeyUnavailableError):
        store.get("service-a/dek", 9)


def test_racing_writers_never_lose_a_version(store: KeyStore) -> None:
    barrier = threading.Barrier(8)
    got: list[int] = []

    def writer(i: int) -> None:
        barrier.wait()
        got.append(store.create("race/dek", f"writer-{i}".encode()))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 9))
    blobs = {store.get("race/dek", v).blob for v in range(1, 9)}
    assert blobs == {f"writer-{i}".encode() for i in range(8)}


def test_replace_is_conditional(store: KeyStore) -> None:
    store.create("svc/dek", b"original")
    first, second = store.get("svc/dek"), store.get("svc/dek")
    store.replace(first, b"rewrapped by A")
    with pytest.raises(VersionConflict):
        store.replace(second, b"rewrapped by B from a stale read")
    assert store.get("svc/dek").blob == b"rewrapped by A"


@pytest.mark.parametrize("bad", ["", "../escape", "a/../b", "/abs", "sp ace", "a//b"])
def test_names_are_validated(store: KeyStore, bad: str) -> None:
    with pytest.raises(ValueError):
        store.create(bad, b"x")


def test_file_store_modes(tmp_path: Path) -> None:
    store = FileKeyStore(tmp_path / "k")
    store.create("svc/dek", b"x")
    assert (tmp_path / "k/svc/dek/v00000001").stat().st_mode & 0o777 == 0o600
    assert not [p for p in (tmp_path / "k/svc/dek").iterdir() if p.name.startswith(".")]


def test_envelope_with_stored_key(store: KeyStore) -> None:
    kms = LocalKms.ephemeral()
    env = Envelope(kms, ClusterSecret.generate(), keystore=store)
    assert env.store_new_key("svc/dek", {"service": "svc"}) == 1
    blobs = [
        env.encrypt(f"secret {i}".encode(), {"n": str(i)}, key_ref="svc/dek") for i in range(3)
    ]
    slot = parse_header(blobs[0])[0].slots[0]
    assert slot.provider == "keystore" and slot.key_id == f"{store.uri}/svc/dek@1"
    assert [env.decrypt(b, any_context=True) for b in blobs] == [
        b"secret 0",
        b"secret 1",
        b"secret 2",
    ]
    # A new version: new messages use it, old ones still decrypt.
    assert env.store_new_key("svc/dek") == 2
    newer = env.encrypt(b"after", key_ref="svc/dek")
    assert parse_header(newer)[0].slots[0].key_id.endswith("@2")
    assert env.decrypt(blobs[0], any_context=True) == b"secret 0"
    # Batches too.
    enc = env.encrypt_batch([b"r1", b"r2"], key_ref="svc/dek@1")
    assert env.decrypt_batch(enc, any_context=True) == [b"r1", b"r2"]


def test_rewrap_stored_key_keeps_messages_readable(store: KeyStore) -> None:
    kms = LocalKms.ephemeral()
    env = Envelope(kms, keystore=store)
    env.store_new_key("svc/dek")
    blob = env.encrypt(b"payload", key_ref="svc/dek")
    before = store.get("svc/dek").blob
    kms.rotate()
    env.rewrap_stored_key("svc/dek")
    after = store.get("svc/dek")
    assert after.blob != before
    assert parse_header(after.blob)[0].slots[0].wrapped[1:5] == (2).to_bytes(4, "big")
    assert env.decrypt(blob, any_context=True) == b"payload"


def test_store_is_never_chosen_by_the_message(tmp_path: Path) -> None:
    kms = LocalKms.ephemeral()
    a, b = FileKeyStore(tmp_path / "a"), FileKeyStore(tmp_path / "b")
    env_a = Envelope(kms, keystore=a)
    env_a.store_new_key("svc/dek")
    blob = env_a.encrypt(b"x", key_ref="svc/dek")
    # Same KMS, another store holding a key of the same name: the message is not followed there.
    Envelope(kms, keystore=b).store_new_key("svc/dek")
    with pytest.raises(KeyUnavailableError, match=a.uri):
        Envelope(kms, keystore=b).decrypt(blob, any_context=True)
    with pytest.raises(KeyUnavailableError):
        Envelope(kms).decrypt(blob, any_context=True)
    with pytest.raises(ConfigError, match="not in the configured key store"):
        Envelope(kms, keystore=b).encrypt(b"x", key_ref=f"{a.uri}/svc/dek")


def test_swapped_stored_key_fails(tmp_path: Path) -> None:
    kms = LocalKms.ephemeral()
    store = FileKeyStore(tmp_path / "k")
    env = Envelope(kms, keystore=store)
    env.store_new_key("svc/dek")
    blob = env.encrypt(b"x", key_ref="svc/dek")
    env.store_new_key("svc/dek")
    path = tmp_path / "k/svc/dek"
    (path / "v00000001").write_bytes((path / "v00000002").read_bytes())  # an attacker swaps keys
    with pytest.raises(DecryptionError):
        env.decrypt(blob, any_context=True)


def test_seed_flow_end_to_end(moto_url: str, tmp_path: Path) -> None:
    """The deployment the project is for, on moto over HTTP: a per-service KMS key and
    bucket; the service's wrapped data key in S3; a secret encrypted; then, as the pod
    would: fetch the wrapped key, unwrap it with KMS, combine with the cluster part,
    decrypt."""
    kms_client = boto3.client("kms", endpoint_url=moto_url, region_name="eu-west-1")
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="eu-west-1")
    key_arn = kms_client.create_key(Description="service-a KEK")["KeyMetadata"]["Arn"]
    unique = os.urandom(4).hex()
    alias, bucket = f"alias/service-a-{unique}", f"service-a-keys-{unique}"
    kms_client.create_alias(AliasName=alias, TargetKeyId=key_arn)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    part_file = tmp_path / "cluster-secret-part"
    part_file.write_bytes(os.urandom(32))

    # Operator, once.
    operator = Envelope(
        AwsKms(alias, endpoint_url=moto_url, region="eu-west-1"),
        ClusterSecret.from_file(part_file),
        keystore=S3KeyStore(bucket, "service-a", client=s3),
    )
    operator.store_new_key("dek", {"service": "service-a"})
    sealed = operator.encrypt(b"DB_PASSWORD=correct-horse", {"service": "service-a"}, key_ref="dek")

    # The pod, later, with its own clients and nothing but the mounted part.
    pod = Envelope(
        AwsKms(alias, endpoint_url=moto_url, region="eu-west-1"),
        ClusterSecret.from_file(part_file),
        keystore=S3KeyStore(bucket, "service-a", endpoint_url=moto_url, region="eu-west-1"),
    )
    assert pod.decrypt(sealed, {"service": "service-a"}) == b"DB_PASSWORD=correct-horse"
    # Without the cluster part, the KMS and the bucket are not enough.
    no_part = Envelope(pod.kms, keystore=S3KeyStore(bucket, "service-a", client=s3))
    with pytest.raises(KeyUnavailableError):
        no_part.decrypt(sealed, any_context=True)


def test_cli_keystore_commands(
    moto_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    kms_client = boto3.client("kms", endpoint_url=moto_url, region_name="eu-west-1")
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="eu-west-1")
    key_arn = kms_client.create_key()["KeyMetadata"]["Arn"]
    bucket = f"cli-keys-{os.urandom(4).hex()}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    monkeypatch.chdir(tmp_path)
    for k, v in {
        "ENVELOPE_KMS": "aws",
        "ENVELOPE_KMS_KEY": key_arn,
        "ENVELOPE_KMS_REGION": "eu-west-1",
        "ENVELOPE_KMS_ENDPOINT": moto_url,
        "ENVELOPE_KEYSTORE": f"s3://{bucket}/svc",
        "ENVELOPE_KEYSTORE_ENDPOINT": moto_url,
    }.items():
        monkeypatch.setenv(k, v)
    assert cli.run(["keystore", "put", "dek", "-c", "service=svc"]) == 0
    assert cli.run(["keystore", "put", "dek"]) == 0
    capsys.readouterr()
    assert cli.run(["keystore", "list"]) == 0
    assert "dek  versions 1..2" in capsys.readouterr().out
    assert cli.run(["keystore", "get", "dek", "--version", "1", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"service": "svc"' in out and key_arn in out
    Path("secret.txt").write_bytes(b"token")
    assert (
        cli.run(["encrypt", "secret.txt", "-o", "secret.env", "--no-split", "--key-ref", "dek@1"])
        == 0
    )
    kms_client.rotate_key_on_demand(KeyId=key_arn)
    assert cli.run(["keystore", "rewrap", "dek", "--all"]) == 0
    assert cli.run(["decrypt", "secret.env", "-o", "out.txt"]) == 0
    assert Path("out.txt").read_bytes() == b"token"
    assert cli.run(["keystore", "get", "absent"]) == ExitCode.CONFIG
