"""Envelope: round trips, the split key, tampering, truncation, rewrap, streams, files."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from envelope import (
    ClusterSecret,
    DataKeyCache,
    DecryptionError,
    Envelope,
    FormatError,
    KeyUnavailableError,
    LocalKms,
    chunked,
    inspect,
)
from envelope._format.message import body_context, parse_header
from envelope._keys.derive import derive_input_key
from envelope._streams import PIECE_CHUNKS
from envelope.kms._types import WrappedKey

CTX = {"service": "billing", "env": "prod"}


@pytest.fixture
def kms() -> LocalKms:
    return LocalKms.ephemeral()


@pytest.fixture
def cluster() -> ClusterSecret:
    return ClusterSecret.generate()


@pytest.fixture
def env(kms: LocalKms, cluster: ClusterSecret) -> Envelope:
    return Envelope(kms, cluster)


@pytest.mark.parametrize("n", [0, 1, 16383, 16384, 16385, (1 << 20) + 3])
@pytest.mark.parametrize("split", [True, False])
def test_round_trip(kms: LocalKms, n: int, split: bool) -> None:
    env = Envelope(kms, ClusterSecret.generate() if split else None)
    data = os.urandom(n)
    blob = env.encrypt(data, CTX)
    assert env.decrypt(blob, any_context=True) == data
    assert env.decrypt(blob, CTX) == data
    info = inspect(blob)
    assert info.plaintext_bytes == n
    assert (info.cluster_secret_id is not None) == split


def test_each_message_has_its_own_data_key(env: Envelope) -> None:
    a, b = env.encrypt(b"same", CTX), env.encrypt(b"same", CTX)
    assert parse_header(a)[0].slots[0].wrapped != parse_header(b)[0].slots[0].wrapped


def test_context_must_match_when_given(env: Envelope) -> None:
    blob = env.encrypt(b"secret", CTX)
    for wrong in ({"service": "payroll", "env": "prod"}, {}, {"service": "billing"}):
        with pytest.raises(DecryptionError) as info:
            env.decrypt(blob, wrong)
        assert type(info.value) is DecryptionError
    assert env.decrypt(blob, dict(reversed(list(CTX.items())))) == b"secret"


def test_every_flipped_byte_fails(env: Envelope) -> None:
    blob = env.encrypt(b"attack at dawn" * 20, CTX)
    for i in range(len(blob)):
        bad = bytearray(blob)
        bad[i] ^= 0x40
        with pytest.raises(DecryptionError):
            env.decrypt(bytes(bad), any_context=True)


@pytest.mark.parametrize("shape", ["uncached", "cached", "two slots", "two slots cached"])
def test_a_wrong_key_commitment_fails(shape: str) -> None:
    """Every byte of the body's key commitment is checked on every decrypt, however the
    input key was found (one slot, a candidate among several, a cached opener)."""
    backends = [LocalKms.ephemeral() for _ in range(2 if "two" in shape else 1)]
    cache = DataKeyCache() if shape.endswith(" cached") or shape == "cached" else None
    env = Envelope(backends, cache=cache)
    blob = env.encrypt(b"attack at dawn", CTX)
    _, offset = parse_header(blob)
    assert env.decrypt(blob, CTX) == b"attack at dawn"
    for i in range(offset + chunked.SALT_SIZE, offset + chunked.SALT_SIZE + 32):
        bad = bytearray(blob)
        bad[i] ^= 0x01
        with pytest.raises(DecryptionError) as caught:
            Envelope(backends, cache=cache).decrypt(bytes(bad), CTX)
        assert type(caught.value) is DecryptionError
        assert str(caught.value) == DecryptionError.MESSAGE


def test_every_truncation_and_extension_fails(env: Envelope) -> None:
    blob = env.encrypt(os.urandom(16384 + 100), CTX)
    for n in range(len(blob)):
        with pytest.raises(DecryptionError):
            env.decrypt(blob[:n], any_context=True)
    for extra in (b"\x00", os.urandom(16), env.encrypt(b"x", CTX)[-40:]):
        with pytest.raises(DecryptionError):
            env.decrypt(blob + extra, any_context=True)


def test_errors_are_opaque(env: Envelope) -> None:
    blob = env.encrypt(b"x" * 100, CTX)
    tail = bytearray(blob)
    tail[-1] ^= 1
    with pytest.raises(DecryptionError) as a:
        env.decrypt(bytes(tail), any_context=True)
    with pytest.raises(DecryptionError) as b:
        env.decrypt(blob, {"other": "ctx"})
    assert str(a.value) == str(b.value) == DecryptionError.MESSAGE


def test_unknown_version_is_a_format_error_naming_it(env: Envelope) -> None:
    blob = bytearray(env.encrypt(b"x", CTX))
    blob[4] = 2
    with pytest.raises(FormatError, match="version 2"):
        env.decrypt(bytes(blob), any_context=True)


def test_neither_part_alone_decrypts(kms: LocalKms, cluster: ClusterSecret) -> None:
    blob = Envelope(kms, cluster).encrypt(b"split", CTX)
    header, offset = parse_header(blob)
    slot = header.slots[0]
    data_key = kms.unwrap(WrappedKey(slot.provider, slot.key_id, slot.wrapped), header.context)
    body = blob[offset:]
    # The right pair works...
    key = derive_input_key(data_key, cluster.current.material)
    assert chunked.decrypt(key, body, body_context(header)) == b"split"
    # ...the KMS part alone does not, nor with another cluster part...
    for wrong in (
        derive_input_key(data_key, None),
        derive_input_key(data_key, ClusterSecret.generate().current.material),
        # ...nor the cluster part with another data key.
        derive_input_key(os.urandom(32), cluster.current.material),
    ):
        with pytest.raises(DecryptionError):
            chunked.decrypt(wrong, body, body_context(header))


def test_missing_cluster_secret_names_the_part(kms: LocalKms, cluster: ClusterSecret) -> None:
    blob = Envelope(kms, cluster).encrypt(b"x", CTX)
    with pytest.raises(KeyUnavailableError, match=cluster.current.id):
        Envelope(kms).decrypt(blob, any_context=True)
    with pytest.raises(KeyUnavailableError, match=cluster.current.id):
        Envelope(kms, ClusterSecret.generate()).decrypt(blob, any_context=True)


def test_cluster_rotation_keeps_old_messages_readable(kms: LocalKms) -> None:
    old = ClusterSecret.generate()
    blob = Envelope(kms, old).encrypt(b"before rotation", CTX)
    rotated = ClusterSecret(ClusterSecret.generate().current, [old.current])
    env = Envelope(kms, rotated)
    assert env.decrypt(blob, any_context=True) == b"before rotation"
    new_blob = env.encrypt(b"after", CTX)
    assert inspect(new_blob).cluster_secret_id == rotated.current.id


def test_other_kms_key_is_named_and_never_contacted(cluster: ClusterSecret) -> None:
    a, b = LocalKms.ephemeral(), LocalKms.ephemeral()
    blob = Envelope(a, cluster).encrypt(b"x", CTX)
    with pytest.raises(KeyUnavailableError, match=a.key_id):
        Envelope(b, cluster).decrypt(blob, any_context=True)


def test_swapped_key_slot_fails(env: Envelope) -> None:
    one, two = env.encrypt(b"one", CTX), env.encrypt(b"two", CTX)
    h1, off1 = parse_header(one)
    h2, _ = parse_header(two)
    from envelope._format.message import Header, encode_header

    frank = encode_header(Header(h1.suite, h1.context, h1.split, h2.slots)) + one[off1:]
    with pytest.raises(DecryptionError):
        env.decrypt(frank, any_context=True)


def test_rewrap_after_rotation(kms: LocalKms, cluster: ClusterSecret) -> None:
    env = Envelope(kms, cluster)
    blob = env.encrypt(b"long-lived", CTX)
    _, offset = parse_header(blob)
    kms.rotate()
    fresh = env.rewrap(blob)
    new_header, new_offset = parse_header(fresh)
    assert new_header.slots[0].wrapped[1:5] == (2).to_bytes(4, "big")
    assert fresh[new_offset:] == blob[offset:]  # body untouched
    assert env.decrypt(fresh, CTX) == b"long-lived"


def test_stream_round_trip_and_constant_pieces(env: Envelope) -> None:
    data = os.urandom(5 * 1024 * 1024 + 17)
    enc, dec = io.BytesIO(), io.BytesIO()
    seen: list[int] = []
    assert env.encrypt_stream(io.BytesIO(data), enc, CTX, progress=seen.append) == len(data)
    assert max(seen) <= PIECE_CHUNKS * 16384 and sum(seen) == len(data)  # constant memory
    assert (
        env.decrypt(enc.getvalue(), any_context=True) == data
    )  # stream and one-shot formats are the same
    assert env.decrypt_stream(io.BytesIO(enc.getvalue()), dec, CTX) == len(data)
    assert dec.getvalue() == data
    one_shot = env.encrypt(data, CTX)
    out = io.BytesIO()
    env.decrypt_stream(io.BytesIO(one_shot), out, any_context=True)
    assert out.getvalue() == data


def test_truncated_stream_fails(env: Envelope) -> None:
    blob = env.encrypt(os.urandom(3 * 16384), CTX)
    with pytest.raises(DecryptionError):
        env.decrypt_stream(io.BytesIO(blob[:-16]), io.BytesIO(), any_context=True)


def test_files(env: Envelope, tmp_path: Path) -> None:
    src, enc, out = tmp_path / "plain", tmp_path / "plain.env", tmp_path / "back"
    src.write_bytes(b"db-password=hunter2\n" * 1000)
    env.encrypt_file(src, enc, CTX)
    env.decrypt_file(enc, out, CTX)
    assert out.read_bytes() == src.read_bytes()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    env.decrypt_file(enc, tmp_path / "ro", mode=0o400, any_context=True)
    assert stat.S_IMODE((tmp_path / "ro").stat().st_mode) == 0o400


def test_failed_file_decryption_leaves_nothing(env: Envelope, tmp_path: Path) -> None:
    enc = tmp_path / "big.env"
    blob = bytearray(env.encrypt(os.urandom(10 * 16384), CTX))
    blob[-1] ^= 1  # early chunks are fine: a streaming decryptor would write them
    enc.write_bytes(bytes(blob))
    before = set(tmp_path.iterdir())
    with pytest.raises(DecryptionError):
        env.decrypt_file(enc, tmp_path / "out", any_context=True)
    assert set(tmp_path.iterdir()) == before


def test_rewrap_file(kms: LocalKms, cluster: ClusterSecret, tmp_path: Path) -> None:
    env = Envelope(kms, cluster)
    path = tmp_path / "m.env"
    path.write_bytes(env.encrypt(b"payload", CTX))
    kms.rotate()
    env.rewrap_file(path)
    header, _ = parse_header(path.read_bytes())
    assert header.slots[0].wrapped[1:5] == (2).to_bytes(4, "big")
    assert env.decrypt(path.read_bytes(), any_context=True) == b"payload"


def test_reprs_hide_secrets(kms: LocalKms, cluster: ClusterSecret) -> None:
    env = Envelope(kms, cluster)
    text = repr(env) + repr(kms) + repr(cluster)
    assert cluster.current.material.hex() not in text
    for key in kms._keys.values():
        assert bytes(key).hex() not in text


def test_threads_argument(kms: LocalKms) -> None:
    data = os.urandom(2 << 20)
    assert Envelope(kms, threads=1).decrypt(Envelope(kms, threads=2).encrypt(data)) == data
    with pytest.raises(ValueError):
        Envelope(kms, threads=-1)
