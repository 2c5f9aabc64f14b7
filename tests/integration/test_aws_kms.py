"""The AWS KMS backend against moto's KMS and STS over HTTP."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from envelope import ClusterSecret, DecryptionError, Envelope, KeyUnavailableError, KmsError
from envelope.kms._aws import AwsKms
from tests.support.aws_faults import inject, kms_error
from tests.support.clock import VirtualTime
from tests.support.kms_contract import CTX, DisableContract, KmsContract


def kms_client(url: str) -> Any:
    return boto3.client("kms", endpoint_url=url, region_name="eu-west-1")


@pytest.fixture
def key_arn(moto_url: str) -> str:
    return str(kms_client(moto_url).create_key(Description="service-a KEK")["KeyMetadata"]["Arn"])


class TestAwsKmsContract(KmsContract, DisableContract):
    @pytest.fixture
    def backend(self, moto_url: str, key_arn: str) -> AwsKms:
        return AwsKms(key_arn, endpoint_url=moto_url, region="eu-west-1")

    @pytest.fixture
    def rotate(self, moto_url: str, key_arn: str) -> Callable[[], None]:
        def rotate() -> None:
            kms_client(moto_url).rotate_key_on_demand(KeyId=key_arn)

        return rotate

    @pytest.fixture
    def disable(self, moto_url: str, key_arn: str, backend: AwsKms) -> Callable[[], None]:
        def disable() -> None:
            kms_client(moto_url).disable_key(KeyId=key_arn.rsplit("/", 1)[-1])
            # moto records the state but still serves the key; answer as real KMS does.
            inject(
                backend._client,
                lambda op: (
                    None
                    if op == "DescribeKey"
                    else kms_error("DisabledException", f"{key_arn} is disabled.")
                ),
            )

        return disable


def test_alias_resolves_to_the_key_arn(moto_url: str, key_arn: str) -> None:
    alias = f"alias/service-a-{os.urandom(4).hex()}"
    kms_client(moto_url).create_alias(AliasName=alias, TargetKeyId=key_arn)
    kms = AwsKms(alias, endpoint_url=moto_url, region="eu-west-1")
    assert kms.key_id == key_arn
    dk = kms.generate_data_key(CTX)
    assert dk.wrapped.key_id == key_arn
    assert (
        AwsKms(key_arn, endpoint_url=moto_url, region="eu-west-1").unwrap(dk.wrapped, CTX)
        == dk.plaintext
    )


def test_plain_boto3_decrypts_our_wrapped_key(moto_url: str, key_arn: str) -> None:
    kms = AwsKms(key_arn, endpoint_url=moto_url, region="eu-west-1")
    dk = kms.generate_data_key(CTX)
    plain = kms_client(moto_url).decrypt(
        CiphertextBlob=dk.wrapped.blob, EncryptionContext=dict(CTX)
    )
    assert plain["Plaintext"] == bytes(dk.plaintext)
    with pytest.raises(Exception, match="InvalidCiphertext"):
        kms_client(moto_url).decrypt(CiphertextBlob=dk.wrapped.blob, EncryptionContext={})


def test_unwrap_pins_the_configured_key(moto_url: str, key_arn: str) -> None:
    other = kms_client(moto_url).create_key()["KeyMetadata"]["Arn"]
    theirs = AwsKms(other, endpoint_url=moto_url, region="eu-west-1").generate_data_key(CTX)
    ours = AwsKms(key_arn, endpoint_url=moto_url, region="eu-west-1")
    with pytest.raises(KeyUnavailableError, match=other):
        ours.unwrap(theirs.wrapped, CTX)
    # Even if a slot is relabelled with our key id, KMS is asked with our KeyId pinned.
    from envelope.kms._types import WrappedKey

    relabelled = WrappedKey("aws-kms", key_arn, theirs.wrapped.blob)
    with pytest.raises((DecryptionError, KmsError)):
        ours.unwrap(relabelled, CTX)


def test_multi_region_replica_matches() -> None:
    kms = AwsKms("arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd", client=object())  # type: ignore[arg-type]
    assert kms.matches("arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd")
    assert not kms.matches("arn:aws:kms:us-east-1:999999999999:key/mrk-1234abcd")
    assert not kms.matches("arn:aws:kms:us-east-1:111122223333:key/mrk-ffff")
    plain = AwsKms("arn:aws:kms:eu-west-1:111122223333:key/1234", client=object())  # type: ignore[arg-type]
    assert not plain.matches("arn:aws:kms:us-east-1:111122223333:key/1234")


def test_throttling_is_retried(
    moto_url: str, key_arn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = VirtualTime()
    monkeypatch.setattr("botocore.endpoint.time", clock)  # botocore's backoff, not waited
    kms = AwsKms(key_arn, endpoint_url=moto_url, region="eu-west-1")
    failures = iter([True, True])

    def throttle(op: str) -> Any:
        if op == "GenerateDataKey" and next(failures, False):
            return kms_error("ThrottlingException", "Rate exceeded")
        return None

    seen = inject(kms._client, throttle)
    kms.generate_data_key(CTX)
    assert seen.count("GenerateDataKey") == 3
    assert len(clock.slept) == 2 and all(s > 0 for s in clock.slept)  # backed off each time


def test_throttling_gives_up_with_a_clear_error(
    moto_url: str, key_arn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("botocore.endpoint.time", VirtualTime())  # backoff not waited
    kms = AwsKms(key_arn, endpoint_url=moto_url, region="eu-west-1", max_attempts=2)
    seen = inject(kms._client, lambda op: kms_error("ThrottlingException", "Rate exceeded"))
    with pytest.raises(KmsError, match="throttled"):
        kms.generate_data_key(CTX)
    assert seen.count("GenerateDataKey") == 2


def test_server_errors_are_retried(moto_url: str, key_arn: str) -> None:
    kms = AwsKms(key_arn, endpoint_url=moto_url, region="eu-west-1")
    once = iter([True])
    seen = inject(
        kms._client,
        lambda op: (
            kms_error("KMSInternalException", "boom", 500)
            if op == "Decrypt" and next(once, False)
            else None
        ),
    )
    dk = kms.generate_data_key(CTX)
    assert kms.unwrap(dk.wrapped, CTX) == dk.plaintext
    assert seen.count("Decrypt") == 2


def test_access_denied_names_key_and_principal(moto_url: str, key_arn: str) -> None:
    kms = AwsKms(key_arn, endpoint_url=moto_url, region="eu-west-1")
    principal = "arn:aws:sts::123456789012:assumed-role/service-b/pod"
    inject(
        kms._client,
        lambda op: kms_error(
            "AccessDeniedException", f"User: {principal} is not authorized to perform: kms:Decrypt"
        ),
    )
    dk = AwsKms(key_arn, endpoint_url=moto_url, region="eu-west-1").generate_data_key(CTX)
    with pytest.raises(KmsError) as info:
        kms.unwrap(dk.wrapped, CTX)
    assert key_arn in str(info.value) and principal in str(info.value)


def test_missing_key_and_unreachable_endpoint(moto_url: str) -> None:
    missing = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    with pytest.raises(KmsError, match="not found"):
        AwsKms(missing, endpoint_url=moto_url, region="eu-west-1").generate_data_key(CTX)
    dead = AwsKms(
        missing,
        endpoint_url="http://127.0.0.1:9",
        region="eu-west-1",
        max_attempts=1,
        connect_timeout=1,
    )
    with pytest.raises(KmsError, match="cannot reach AWS KMS"):
        dead.generate_data_key(CTX)


def test_web_identity_login(
    moto_url: str, key_arn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = tmp_path / "token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YTpiIn0.sig")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/service-a")
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", moto_url)
    session = boto3.Session(region_name="eu-west-1")
    creds = session.get_credentials()
    assert creds is not None and creds.method == "assume-role-with-web-identity"
    kms = AwsKms(key_arn, endpoint_url=moto_url, region="eu-west-1")
    dk = kms.generate_data_key(CTX)
    assert kms.unwrap(dk.wrapped, CTX) == dk.plaintext


def test_envelope_round_trip_with_split(moto_url: str, key_arn: str) -> None:
    env = Envelope(
        AwsKms(key_arn, endpoint_url=moto_url, region="eu-west-1"), ClusterSecret.generate()
    )
    blob = env.encrypt(b"db-password", {"service": "a"})
    assert env.decrypt(blob, {"service": "a"}) == b"db-password"
    kms_client(moto_url).rotate_key_on_demand(KeyId=key_arn)
    assert env.decrypt(env.rewrap(blob), any_context=True) == b"db-password"
    enc = env.encrypt_batch([b"r1", b"r2"])
    assert env.decrypt_batch(enc, any_context=True) == [b"r1", b"r2"]


def test_import_envelope_without_boto3_names_the_extra() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['boto3'] = None\n"
        "import envelope\n"
        "from envelope.kms._aws import AwsKms\n"
        "try:\n    AwsKms('alias/x')\nexcept envelope.ConfigError as e:\n    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ}
    )
    assert "pip install 'envelope-kms[aws]'" in out.stdout
