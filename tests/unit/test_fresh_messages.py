"""The one-call path of uncached local-keyring messages (envelope._keys.fresh_messages)
against the full path: the same bytes on the wire, each opens the other's messages, and
it steps aside wherever the full path has something to do (rotation, wipes, telemetry).

The full path is forced with a subclass of LocalKms over the same keys: only a plain
LocalKms takes the one-call path.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import pytest

from envelope import ClusterSecret, Envelope, LocalKms, _native, _telemetry
from envelope._format.message import encode_message_header, parse_header
from envelope._keys.cluster import ClusterSecretPart
from envelope.errors import DecryptionError, KeyUnavailableError
from envelope.kms._local import wrapped_version

CTX = {"service": "billing", "env": "prod"}


class FullPathKms(LocalKms):
    """A LocalKms that the one-call path does not take (it is not exactly LocalKms)."""


def keyrings() -> tuple[LocalKms, FullPathKms]:
    """The same keyring twice: one takes the one-call path, one the full path."""
    keys = {1: bytearray(os.urandom(32))}
    one = LocalKms(
        "kr-same", {v: bytearray(k) for v, k in keys.items()}, {1: "t"}, path=None, passphrase=None
    )
    full = FullPathKms("kr-same", keys, {1: "t"}, path=None, passphrase=None)
    return one, full


def pair(cluster: ClusterSecret | None = None) -> tuple[Envelope, Envelope]:
    one, full = keyrings()
    return Envelope(one, cluster), Envelope(full, cluster)


def takes_one_call(env: Envelope, context: dict[str, str] | None = CTX) -> bool:
    before = _native.fresh_key_counts()[0]
    env.encrypt(b"x", context)
    return _native.fresh_key_counts()[0] == before + 1


@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize("context", [None, CTX, {"k": "v" * 300}])
@pytest.mark.parametrize("size", [0, 1, 64, 65536, 65537, 300_000])
def test_each_path_opens_the_others_messages(
    split: bool, context: dict[str, str] | None, size: int
) -> None:
    cluster = ClusterSecret.generate() if split else None
    fast, full = pair(cluster)
    assert takes_one_call(fast, context) and not takes_one_call(full, context)
    data = os.urandom(size)
    by_fast, by_full = fast.encrypt(data, context), full.encrypt(data, context)
    assert full.decrypt(by_fast, context) == data
    assert fast.decrypt(by_full, context) == data
    assert fast.decrypt(by_fast, context) == data
    assert fast.decrypt(by_fast, any_context=True) == data
    assert len(by_fast) == len(by_full)


def test_the_header_is_the_full_paths_encoding_of_its_fields() -> None:
    fast, _ = pair(ClusterSecret.generate())
    blob = fast.encrypt(b"data", CTX)
    header, offset = parse_header(blob)
    again, _ = encode_message_header(header.context, header.split, header.slots)
    assert blob[:offset] == again
    (slot,) = header.slots
    assert (slot.provider, slot.key_id, wrapped_version(slot.wrapped)) == ("local", "kr-same", 1)
    assert header.split.cluster_secret_id is not None


def test_every_message_has_its_own_data_key_nonce_and_salt() -> None:
    fast, _ = pair()
    blobs = [fast.encrypt(b"same", CTX) for _ in range(500)]
    offsets = [parse_header(b)[1] for b in blobs]
    slots = {parse_header(b)[0].slots[0].wrapped for b in blobs}
    salts = {b[o : o + 24] for b, o in zip(blobs, offsets, strict=True)}
    assert len(slots) == len(salts) == 500
    assert len({s[5:17] for s in slots}) == 500  # the wrap nonces


def test_any_flipped_bit_fails_as_the_opaque_error() -> None:
    fast, full = pair(ClusterSecret.generate())
    blob = fast.encrypt(b"secret data", CTX)
    for i in range(len(blob)):
        bad = bytearray(blob)
        bad[i] ^= 0x01
        with pytest.raises(DecryptionError):  # FormatError, KeyUnavailableError: subclasses
            fast.decrypt(bytes(bad), CTX)
        with pytest.raises(DecryptionError):
            full.decrypt(bytes(bad), CTX)
    with pytest.raises(DecryptionError):
        fast.decrypt(blob[:-1], CTX)
    with pytest.raises(DecryptionError):
        fast.decrypt(blob + b"\x00", CTX)
    with pytest.raises(DecryptionError):
        fast.decrypt(blob, {"service": "billing", "env": "dev"})


def test_another_keyrings_message_is_refused_by_name() -> None:
    fast, _ = pair()
    other = Envelope(LocalKms.ephemeral()).encrypt(b"x", CTX)
    with pytest.raises(KeyUnavailableError, match="trusts only local key"):
        fast.decrypt(other, CTX)


def test_rotation_moves_new_messages_to_the_new_version() -> None:
    kms, _ = keyrings()
    env = Envelope(kms)
    old = env.encrypt(b"old", CTX)
    kms.rotate()
    new = env.encrypt(b"new", CTX)
    assert wrapped_version(parse_header(new)[0].slots[0].wrapped) == 2
    assert env.decrypt(old, CTX) == b"old"  # an older version: the full path
    assert env.decrypt(new, CTX) == b"new"
    assert takes_one_call(env)


def test_a_message_under_a_previous_cluster_part_opens() -> None:
    kms, _ = keyrings()
    old_part = ClusterSecretPart(os.urandom(32))
    before = Envelope(kms, ClusterSecret(old_part)).encrypt(b"x", CTX)
    rotated = Envelope(kms, ClusterSecret(ClusterSecretPart(os.urandom(32)), [old_part]))
    assert rotated.decrypt(before, CTX) == b"x"
    assert rotated.decrypt(rotated.encrypt(b"y", CTX), CTX) == b"y"


def test_the_keyring_calls_are_counted() -> None:
    fast, _ = pair()
    key_gen, key_unwrap = ("local", "generate", "ok"), ("local", "unwrap", "ok")
    counts = _telemetry.kms_call_counts()
    gen0, unwrap0 = counts.get(key_gen, (0, 0.0))[0], counts.get(key_unwrap, (0, 0.0))[0]
    blobs = [fast.encrypt(b"x", CTX) for _ in range(7)]
    for b in blobs[:3]:
        fast.decrypt(b, CTX)
    counts = _telemetry.kms_call_counts()
    assert counts[key_gen][0] == gen0 + 7
    assert counts[key_unwrap][0] == unwrap0 + 3


def test_kms_debug_logging_takes_the_full_path(caplog: pytest.LogCaptureFixture) -> None:
    fast, _ = pair()
    with caplog.at_level(logging.DEBUG, logger="envelope.kms"):
        assert not takes_one_call(fast)
        blob = fast.encrypt(b"x", CTX)
        fast.decrypt(blob, CTX)
    operations = [getattr(r, "operation", None) for r in caplog.records]
    assert "generate" in operations and "unwrap" in operations
    assert takes_one_call(fast)


def test_a_cache_or_a_second_backend_takes_its_own_path() -> None:
    from envelope import DataKeyCache

    kms, _ = keyrings()
    assert not takes_one_call(Envelope(kms, cache=DataKeyCache()))
    assert not takes_one_call(Envelope([kms, LocalKms.ephemeral()]))
    assert takes_one_call(Envelope(kms))


def test_key_ref_takes_the_key_store_path(tmp_path: Any) -> None:
    from envelope.keystore import FileKeyStore

    kms, _ = keyrings()
    env = Envelope(kms, keystore=FileKeyStore(tmp_path / "keys"))
    env.store_new_key("db")
    before = _native.fresh_key_counts()[0]
    blob = env.encrypt(b"x", CTX, key_ref="db")
    assert _native.fresh_key_counts()[0] == before
    assert parse_header(blob)[0].slots[0].provider != "local"
    assert env.decrypt(blob, CTX) == b"x"


def test_key_wrap_is_the_keyrings_blob_layout() -> None:
    kek, head = os.urandom(32), b"\x01\x00\x00\x00\x07"
    wrap = _native.KeyWrap(bytearray(kek), head)
    key = os.urandom(32)
    blob = wrap.wrap(key, b"aad")
    assert len(blob) == wrap.wrapped_len == 5 + 12 + 32 + 16
    assert blob[:5] == head
    assert _native.aes256gcm_open(kek, blob[5:17], b"aad", blob[17:]) == key
    out = bytearray(32)
    wrap.unwrap_into(blob, b"aad", out)
    assert out == key
    with pytest.raises(DecryptionError):
        wrap.unwrap_into(blob, b"aaD", out)
    assert out == bytes(32)  # zeros after a failure, never a partial key
    with pytest.raises(ValueError):
        wrap.unwrap_into(blob, b"aad", bytearray(31))
    with pytest.raises(ValueError):
        wrap.wrap(key[:31], b"aad")
    with pytest.raises(ValueError):
        _native.KeyWrap(kek[:31], head)
