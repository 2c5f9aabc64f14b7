"""A DataKeyCache shared by two tenants over one Vault/OpenBao transit key, each with its
own token (issue 18, item 2), against a real OpenBao server: the real policy engine
decides, and the cache never answers for a tenant with another tenant's keys."""

from __future__ import annotations

import pytest

from envelope import DataKeyCache, Envelope, KmsError
from envelope.kms._vault import VaultTransit
from envelope.kms._vault_auth import TokenAuth
from tests.integration.test_vault_transit import new_key, service_token
from tests.support.openbao import OpenBao

CTX = {"tenant": "a"}


def no_access_token(bao: OpenBao, key: str) -> str:
    """A token that may read the key's metadata but not use it."""
    name = f"read-only-{key}"
    bao.admin.sys.create_or_update_policy(
        name, f'path "transit/keys/{key}" {{ capabilities = ["read"] }}'
    )
    return str(bao.admin.auth.token.create(policies=[name], ttl="1h")["auth"]["client_token"])


def test_tenants_sharing_a_cache_each_ask_the_kms(openbao: OpenBao) -> None:
    key = new_key(openbao, derived=True)
    tenant_a = VaultTransit(key, url=openbao.url, auth=TokenAuth(service_token(openbao, key)))
    tenant_b = VaultTransit(key, url=openbao.url, auth=TokenAuth(no_access_token(openbao, key)))
    cache = DataKeyCache()
    env_a, env_b = Envelope(tenant_a, cache=cache), Envelope(tenant_b, cache=cache)
    blob = env_a.encrypt(b"tenant a's secret", CTX)
    assert env_a.decrypt(blob, CTX) == b"tenant a's secret"  # cached now
    with pytest.raises(KmsError, match="denied"):
        env_b.decrypt(blob, CTX)
    with pytest.raises(KmsError, match="denied"):
        env_b.encrypt(b"in a's context", CTX)
    batch = env_a.encrypt_batch([b"row"], context=CTX)
    with pytest.raises(KmsError, match="denied"):
        env_b.decrypt_batch(batch, context=CTX)
    assert env_a.decrypt_batch(batch, context=CTX) == [b"row"]
