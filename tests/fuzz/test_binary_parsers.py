"""Property fuzzing of the binary parsers: arbitrary bytes and mutations of real headers,
messages, batch headers, key-store objects and Cobblestone bodies raise only the
documented errors (FormatError / DecryptionError / KmsError), never anything else."""

from __future__ import annotations

import contextlib

from hypothesis import given
from hypothesis import strategies as st

from envelope import (
    ClusterSecret,
    DecryptionError,
    Envelope,
    FormatError,
    KeyUnavailableError,
    LocalKms,
    chunked,
)
from envelope._format.batch import decode as decode_batch_header
from envelope._format.message import parse_header
from envelope._keys.stored import key_object
from envelope.errors import KmsError
from envelope.keystore import StoredKey
from tests.fuzz.budget import FUZZ

ENV = Envelope([LocalKms.ephemeral(), LocalKms.ephemeral()], ClusterSecret.generate())
CTX = {"service": "a", "région": "eu"}
MESSAGE = ENV.encrypt(b"payload " * 40, CTX)
HEADER = MESSAGE[: parse_header(MESSAGE)[1]]
KEY = bytes(range(32))
BODY = chunked.encrypt(KEY, b"b" * 70000, b"ctx")


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` with a few bit flips, extreme bytes, truncations and splices."""
    b = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "extreme", "truncate", "splice", "delete"]))
        at = draw(st.integers(0, max(0, len(b) - 1)))
        if op == "flip" and b:
            b[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "extreme" and b:
            b[at] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFE, 0xFF]))
        elif op == "truncate":
            del b[at:]
        elif op == "splice":
            b[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del b[at : at + draw(st.integers(1, 8))]
    return bytes(b)


def any_or_mutated(seed: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=512), mutated(seed))


@FUZZ
@given(any_or_mutated(HEADER))
def test_v1_header_parser(blob: bytes) -> None:
    with contextlib.suppress(FormatError):
        parse_header(blob)


@FUZZ
@given(mutated(MESSAGE))
def test_whole_message_decrypt(blob: bytes) -> None:
    with contextlib.suppress(DecryptionError, FormatError, KeyUnavailableError):
        assert ENV.decrypt(blob, CTX) == b"payload " * 40


BATCH = ENV.encrypt_batch([b"r1", b"r2"], context=CTX)
BATCH_HEADER = BATCH.header.to_bytes()


@FUZZ
@given(any_or_mutated(BATCH_HEADER))
def test_batch_header_parser(blob: bytes) -> None:
    with contextlib.suppress(FormatError):
        decode_batch_header(blob)


@FUZZ
@given(any_or_mutated(HEADER))
def test_key_store_object_parser(blob: bytes) -> None:
    # The documented contract (issue 18): bytes that are not a key object are a
    # FormatError; a store that cannot be used is a KmsError. Nothing else.
    with contextlib.suppress(KmsError, FormatError):
        key_object(StoredKey("k", 1, blob, "etag"))


@FUZZ
@given(mutated(BODY[:3000]), st.lists(st.integers(1, 4096), max_size=8))
def test_cobblestone_stream_opener_any_split(blob: bytes, cuts: list[int]) -> None:
    opener = chunked.Decryptor(KEY, b"ctx")
    try:
        at = 0
        for n in cuts:
            opener.update(blob[at : at + n])
            at += n
        opener.update(blob[at:])
        opener.finalize()
    except DecryptionError:
        pass


@FUZZ
@given(any_or_mutated(BODY[:3000]))
def test_cobblestone_one_shot(blob: bytes) -> None:
    with contextlib.suppress(DecryptionError):
        chunked.decrypt(KEY, blob, b"ctx")


@FUZZ
@given(any_or_mutated(BATCH_HEADER), st.lists(mutated(b"\x00" * 22), min_size=1, max_size=3))
def test_batch_decrypt_from_stored_parts(header: bytes, records: list[bytes]) -> None:
    try:
        batch = type(BATCH).from_parts(header, records)
        ENV.decrypt_batch(batch, context=CTX)
    except (DecryptionError, FormatError, KeyUnavailableError):
        pass
