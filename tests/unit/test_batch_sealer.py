"""BatchSealer / BatchOpener: many batches under one data key, one unwrap per key."""

from __future__ import annotations

import pytest

from envelope import ConfigError, DecryptionError, Envelope
from envelope._batch.sealer import BatchOpener, BatchSealer
from envelope._format.context import canonical_context
from tests.unit.test_batch_arrow_types import CountingKms

CTX = canonical_context({"column": "email"})


@pytest.fixture
def env() -> Envelope:
    CountingKms.calls = 0
    return Envelope(CountingKms.ephemeral())


def test_one_kms_call_for_many_batches_each_with_its_own_key(env: Envelope) -> None:
    with BatchSealer.fresh(env._keys, CTX, 0) as sealer:
        a = sealer.seal([b"same", b"values"])
        b = sealer.seal([b"same", b"values"])
    assert CountingKms.calls == 1 and sealer.sealed == 2
    assert a.header.fields.slots == b.header.fields.slots  # one data key
    assert a.header.fields.salt != b.header.fields.salt  # two batch keys
    assert a.records != b.records
    with BatchOpener(env._keys, CTX, 0) as opener:
        assert opener.open(a) == opener.open(b) == [b"same", b"values"]
    assert CountingKms.calls == 2  # one unwrap for both
    assert env.decrypt_batch(a, context=dict(CTX)) == [b"same", b"values"]  # a plain batch


def test_like_reuses_a_header_data_key_with_one_unwrap(env: Envelope) -> None:
    with BatchSealer.fresh(env._keys, CTX, 0) as first:
        job = first.seal([]).header.to_bytes()
    with BatchSealer.like(env._keys, job, CTX, 0) as worker:
        part = worker.seal([b"x"])
    assert CountingKms.calls == 2
    assert env.decrypt_batch(part, context={"column": "email"}) == [b"x"]


def test_like_checks_the_expected_context(env: Envelope) -> None:
    with BatchSealer.fresh(env._keys, CTX, 0) as first:
        job = first.seal([]).header.to_bytes()
    with pytest.raises(DecryptionError):
        BatchSealer.like(env._keys, job, canonical_context({"column": "other"}), 0)


def test_closed_sealer_refuses_and_zeroes_its_key(env: Envelope) -> None:
    sealer = BatchSealer.fresh(env._keys, CTX, 0)
    sealer.close()
    assert not any(sealer._input_key)
    with pytest.raises(ConfigError, match="closed"):
        sealer.seal([b"late"])


def test_aad_length_is_checked(env: Envelope) -> None:
    with BatchSealer.fresh(env._keys, CTX, 0) as sealer, pytest.raises(ValueError, match="aad"):
        sealer.seal([b"a", b"b"], [b"only one"])
