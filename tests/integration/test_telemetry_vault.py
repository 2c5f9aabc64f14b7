"""The `envelope` loggers against a real OpenBao: the KMS calls are logged with their
fields, and no record holds the Vault token, a data key, a wrapped key or the plaintext,
through a permission failure and a server that went away too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from envelope import DataKeyCache, Envelope, KmsError
from envelope._format.context import Context
from envelope.kms._types import DataKey, WrappedKey
from envelope.kms._vault import VaultTransit
from envelope.kms._vault_auth import TokenAuth
from tests.integration.test_vault_transit import new_key
from tests.support.log_capture import Capture, capture_envelope_logs, forms
from tests.support.openbao import OpenBao

SECRET = b"vault-guarded-password-51d0"


class SpyTransit(VaultTransit):
    """The real Transit backend, keeping each data key and wrapped key it handled."""

    seen: list[bytes]

    def generate_data_key(self, context: Context) -> DataKey:
        key = super().generate_data_key(context)
        self.seen += [bytes(key.plaintext), key.wrapped.blob]
        return key

    def unwrap(self, wrapped: WrappedKey, context: Context) -> bytearray:
        self.seen.append(wrapped.blob)
        plain = super().unwrap(wrapped, context)
        self.seen.append(bytes(plain))
        return plain


@pytest.fixture
def captured() -> Iterator[Capture]:
    with capture_envelope_logs() as handler:
        yield handler


def test_vault_kms_calls_log_fields_and_no_secrets(openbao: OpenBao, captured: Capture) -> None:
    key = new_key(openbao, derived=True)
    kms = SpyTransit(key, url=openbao.url, auth=TokenAuth(openbao.root_token))
    kms.seen = []
    env = Envelope(kms, cache=DataKeyCache())
    blob = env.encrypt(SECRET, {"service": "billing"})
    assert Envelope(kms).decrypt(blob, {"service": "billing"}) == SECRET

    stranger = VaultTransit(key, url=openbao.url, auth=TokenAuth("not-a-real-token-7c1e"))
    stranger.stop_retrying_at(0.0)
    with pytest.raises(KmsError):
        Envelope(stranger).decrypt(blob, {"service": "billing"})

    calls = [r for r in captured.records if r.name == "envelope.kms"]
    assert [(r.operation, r.outcome) for r in calls] == [  # type: ignore[attr-defined]
        ("generate", "ok"),
        ("unwrap", "ok"),
        ("unwrap", "error"),
    ]
    assert {r.backend for r in calls} == {kms.provider_id}  # type: ignore[attr-defined]
    assert calls[0].key_id == kms.key_id  # type: ignore[attr-defined]

    assert len(kms.seen) == 4  # a data key and its wrapped form, both ways
    secrets = [openbao.root_token.encode(), b"not-a-real-token-7c1e", SECRET, *kms.seen]
    for record in captured.records:
        text = record.getMessage() + " " + repr(vars(record))
        for secret in secrets:
            for form in forms(secret):
                assert form not in text, (record.getMessage(), form)
