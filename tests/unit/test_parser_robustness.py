"""Seeded random mutations of real headers and messages: the parsers and decryptors
raise only their documented errors (FormatError / DecryptionError), never IndexError,
struct.error, UnicodeDecodeError or anything else, and never allocate from a length
they have not bounded."""

from __future__ import annotations

import contextlib
import random

import pytest

from envelope import ClusterSecret, DecryptionError, Envelope, FormatError, LocalKms, chunked
from envelope._format.batch import decode as decode_batch_header
from envelope._format.message import PREAMBLE_LEN, _parse_checked, parse_header
from envelope._format.well_formed import parse_well_formed

SEED = 20261122


def mutations(blob: bytes, rng: random.Random, count: int) -> list[bytes]:
    out = []
    for _ in range(count):
        b = bytearray(blob)
        op = rng.randrange(4)
        if op == 0:  # flip some bits
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif op == 1:  # overwrite a byte with an extreme value (lengths!)
            b[rng.randrange(len(b))] = rng.choice([0, 1, 0x7F, 0x80, 0xFF])
        elif op == 2:  # truncate
            del b[rng.randrange(len(b)) :]
        else:  # splice random bytes in
            at = rng.randrange(len(b) + 1)
            b[at:at] = rng.randbytes(rng.randint(1, 8))
        out.append(bytes(b))
    return out


@pytest.fixture(scope="module")
def env() -> Envelope:
    return Envelope([LocalKms.ephemeral(), LocalKms.ephemeral()], ClusterSecret.generate())


def test_message_headers(env: Envelope) -> None:
    rng = random.Random(SEED)
    blob = env.encrypt(b"payload", {"service": "a", "région": "eu"})
    _, end = parse_header(blob)
    for mutated in mutations(blob[:end], rng, 5000):
        with contextlib.suppress(FormatError):
            parse_header(mutated)


@pytest.mark.parametrize("threshold", [None, 2])
def test_the_one_pass_header_parser_accepts_exactly_what_the_checked_one_does(
    env: Envelope, threshold: int | None
) -> None:
    """Both parse each mutation to the same header, or both refuse it (the one-pass
    parser with None, the checked one with the FormatError that says why)."""
    rng = random.Random(SEED + 7)
    kms = [LocalKms.ephemeral(), LocalKms.ephemeral()]
    source = env if threshold is None else Envelope(kms, threshold=threshold)
    blob = source.encrypt(b"payload", {"service": "a", "région": "eu", "z": ""})
    _, end = parse_header(blob)
    bodies = [blob[PREAMBLE_LEN:end], *(m[PREAMBLE_LEN:] for m in mutations(blob[:end], rng, 5000))]
    accepted = 0
    for body in bodies:
        fast = parse_well_formed(body)
        try:
            checked = _parse_checked(memoryview(body))
        except FormatError:
            assert fast is None, body
            continue
        assert fast == checked, body
        accepted += 1
    assert accepted > 1  # not only the unmutated header


def test_whole_messages_single_slot() -> None:
    """With one key slot, every mutation fails."""
    rng = random.Random(SEED + 1)
    env = Envelope(LocalKms.ephemeral(), ClusterSecret.generate())
    blob = env.encrypt(b"x" * 300, {"service": "a"})
    for mutated in mutations(blob, rng, 2000):
        if mutated == blob:
            continue
        with pytest.raises(DecryptionError):
            env.decrypt(mutated, any_context=True)


def test_whole_messages_any_of(env: Envelope) -> None:
    """With spare slots (any-of), a mutation of one slot can leave another that still
    opens the message; but no mutation ever yields anything but the original plaintext."""
    rng = random.Random(SEED + 4)
    blob = env.encrypt(b"x" * 300, {"service": "a"})
    survived = 0
    for mutated in mutations(blob, rng, 2000):
        try:
            assert env.decrypt(mutated, any_context=True) == b"x" * 300
            survived += 1
        except DecryptionError:
            pass
    assert survived  # the damaged-spare-slot case exists: verify_key_slots reports it


def test_batch_headers(env: Envelope) -> None:
    rng = random.Random(SEED + 2)
    raw = env.encrypt_batch([b"a", b"b"], context={"t": "x"}).header.to_bytes()
    for mutated in mutations(raw, rng, 5000):
        with contextlib.suppress(FormatError):
            decode_batch_header(mutated)


def test_cobblestone_bodies() -> None:
    rng = random.Random(SEED + 3)
    key = rng.randbytes(32)
    ct = chunked.encrypt(key, rng.randbytes(40_000), b"ctx")
    for mutated in mutations(ct, rng, 300):
        if mutated == ct:
            continue
        with pytest.raises(DecryptionError):
            chunked.decrypt(key, mutated, b"ctx")
    for junk in (rng.randbytes(n) for n in range(0, 200, 7)):
        with pytest.raises(DecryptionError):
            chunked.decrypt(key, junk, b"ctx")
