"""k-of-n threshold wrapping of the data key (Shamir shares, one per backend)."""

from __future__ import annotations

import os

import pytest

from envelope import ClusterSecret, DecryptionError, Envelope, KmsError, inspect
from envelope._format.message import Header, KeySlot, encode_header, parse_header
from envelope._keys.threshold import combine_key, split_key
from tests.unit.test_multi_kms import Recording


def three() -> list[Recording]:
    return [Recording.make(n) for n in ("aws-eu", "aws-us", "vault")]


def test_shares_combine_from_any_k() -> None:
    key = os.urandom(32)
    shares = split_key(2, 3, key)
    assert len({bytes(s) for s in shares}) == 3 and all(bytes(s) != key for s in shares)
    for pair in ((0, 1), (0, 2), (1, 2)):
        assert combine_key(2, [(i + 1, shares[i]) for i in pair]) == key
    assert combine_key(2, [(1, shares[0]), (2, shares[2])]) != key  # wrong index: wrong key
    with pytest.raises(DecryptionError):
        combine_key(2, [(1, shares[0])])


def test_two_of_three_with_one_kms_unreachable() -> None:
    kms = three()
    env = Envelope(kms, ClusterSecret.generate(), threshold=2)
    blob = env.encrypt(b"two custodians", {"service": "vault"})
    info = inspect(blob)
    assert info.threshold == (2, 3) and len(info.wrapped_keys) == 3
    assert all(k.calls == ["wrap"] for k in kms)  # the key was made locally and shared
    kms[0].down = True
    assert env.decrypt(blob, any_context=True) == b"two custodians"


def test_two_of_three_with_two_unreachable_names_both() -> None:
    kms = three()
    env = Envelope(kms, threshold=2)
    blob = env.encrypt(b"x")
    kms[0].down = kms[2].down = True
    with pytest.raises(KmsError) as info:
        env.decrypt(blob, any_context=True)
    text = str(info.value)
    assert "needs 2 of 3 shares" in text
    assert (
        f"local key {kms[0].key_id}: aws-eu" in text and f"local key {kms[2].key_id}: vault" in text
    )


def test_each_custodian_alone_cannot_decrypt() -> None:
    kms = three()
    blob = Envelope(kms, threshold=2).encrypt(b"secret")
    for one in kms:
        with pytest.raises(KmsError, match="needs 2 of 3"):
            Envelope([one]).decrypt(blob, any_context=True)
        with pytest.raises(DecryptionError, match="policy"):
            Envelope([one], threshold=1).decrypt(blob, any_context=True)


def test_three_of_three_and_with_the_cluster_part() -> None:
    kms = three()
    cluster = ClusterSecret.generate()
    env = Envelope(kms, cluster, threshold=3)
    blob = env.encrypt(b"all three")
    assert env.decrypt(blob, any_context=True) == b"all three"
    kms[1].down = True
    with pytest.raises(KmsError):
        env.decrypt(blob, any_context=True)
    kms[1].down = False
    from envelope import KeyUnavailableError

    with pytest.raises(KeyUnavailableError):
        Envelope(kms, threshold=3).decrypt(
            blob, any_context=True
        )  # the KMS custodians without the cluster part


def test_reordered_or_tampered_shares_fail() -> None:
    kms = three()
    env = Envelope(kms, threshold=2)
    blob = env.encrypt(b"x")
    header, offset = parse_header(blob)
    swapped = (header.slots[1], header.slots[0], header.slots[2])
    forged = (
        encode_header(Header(header.suite, header.context, header.split, swapped)) + blob[offset:]
    )
    with pytest.raises(DecryptionError):
        env.decrypt(forged, any_context=True)
    bad = tuple(
        KeySlot(s.provider, s.key_id, s.wrapped[:-1] + bytes([s.wrapped[-1] ^ 1]))
        for s in header.slots
    )
    forged = encode_header(Header(header.suite, header.context, header.split, bad)) + blob[offset:]
    with pytest.raises(DecryptionError):
        env.decrypt(forged, any_context=True)


def test_policy_is_bound_to_the_body() -> None:
    """The threshold lives in the split descriptor, inside the digest the body commits to."""
    from envelope._format.message import SplitDescriptor

    kms = three()
    env = Envelope(kms, threshold=2)
    blob = env.encrypt(b"x")
    header, offset = parse_header(blob)
    weaker = SplitDescriptor(header.split.cluster_secret_id, (1, 3))
    forged = (
        encode_header(Header(header.suite, header.context, weaker, header.slots)) + blob[offset:]
    )
    with pytest.raises(DecryptionError):
        env.decrypt(forged, any_context=True)


def test_rewrap_and_batches_and_cache() -> None:
    from envelope import DataKeyCache

    kms = three()
    env = Envelope(kms, threshold=2, cache=DataKeyCache())
    blob = env.encrypt(b"payload")
    for k in kms:
        k.rotate()
    assert env.decrypt(env.rewrap(blob), any_context=True) == b"payload"
    enc = env.encrypt_batch([b"a", b"b"])
    assert enc.header.fields.split.threshold == (2, 3)
    assert env.decrypt_batch(enc, any_context=True) == [b"a", b"b"]


@pytest.mark.parametrize("bad", [0, 4])
def test_threshold_bounds(bad: int) -> None:
    with pytest.raises(ValueError, match="threshold"):
        Envelope(three(), threshold=bad)
