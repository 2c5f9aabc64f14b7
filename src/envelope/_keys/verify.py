"""Checking candidate keys against a message's key commitment, and checking every key
slot of a message (``Envelope.verify_key_slots``, ``envelope inspect --verify``).

The body of a message starts with its salt and key commitment; a candidate input key
that does not match them is the wrong key (a foreign or damaged slot or share), which
is found without decrypting a chunk.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Protocol

from envelope._format.context import Context
from envelope._format.message import (
    Header,
    KeySlot,
    SplitDescriptor,
    body_context,
    parse_header,
)
from envelope._keys.derive import derive_input_key
from envelope._keys.policy import AcceptancePolicy
from envelope._keys.slots import unwrap_key
from envelope._keys.threshold import combine_key
from envelope.chunked import OVERHEAD, Decryptor
from envelope.errors import ConfigError, DecryptionError, KmsError
from envelope.kms import KmsBackend
from envelope.kms._types import WrappedKey

__all__ = ["commitment_check", "verify_slots"]

#: k-subsets of a threshold message's shares tried to find its key.
MAX_SUBSETS = 1024
#: Salt and key commitment at the start of every body (chunked's overhead less one tag).
PREFIX_LEN = OVERHEAD - 16
_DAMAGED = "does not unwrap to this message's key (damaged or replaced)"


class SlotProblem(str):
    """What is wrong with a key slot: the error's message in library words, with the
    command line's words in :attr:`cli_message` (flags, not parameters)."""

    __slots__ = ("cli_message",)
    cli_message: str


def _problem(exc: Exception) -> SlotProblem:
    problem = SlotProblem(str(exc))
    problem.cli_message = getattr(exc, "cli_message", str(exc))
    return problem


_FOREIGN = (
    "its share does not belong to this message's key (copied from another message, or damaged)"
)


def commitment_check(digest: bytes, body: bytes | memoryview) -> Callable[[bytearray], bool]:
    """A check that an input key matches the key commitment at the start of ``body``
    (a body too short to hold one accepts every key; decryption then fails)."""
    prefix = bytes(body[:PREFIX_LEN])

    def check(input_key: bytearray) -> bool:
        if len(prefix) < PREFIX_LEN:
            return True
        try:
            Decryptor(input_key, digest).update(prefix)
        except DecryptionError:
            return False
        return True

    return check


class KeySource(Protocol):
    """What :func:`verify_slots` needs of :class:`~envelope._keys.source.KeySource`."""

    backends: tuple[KmsBackend, ...]
    policy: AcceptancePolicy

    def matching(self, slots: Sequence[KeySlot]) -> list[tuple[KmsBackend | None, KeySlot]]:
        """The trusted slots."""

    def cluster_material(self, split: SplitDescriptor) -> bytearray | None:
        """The cluster part a split names."""

    def input_key(
        self,
        slots: Sequence[KeySlot],
        split: SplitDescriptor,
        ctx: Context,
        expected: Context | None,
        *,
        use_cache: bool = True,
        accept: Callable[[bytearray], bool] | None = None,
    ) -> bytearray:
        """The input key, checked by ``accept``."""


def _wipe(b: bytearray) -> None:
    b[:] = bytes(len(b))


def verify_slots(keys: KeySource, blob: memoryview) -> list[tuple[str, str, str | None]]:
    """``(provider, key id, problem)`` for each slot of ``blob`` that ``keys`` trusts.

    Raises:
        FormatError: not a message. KeyUnavailableError: no slot is trusted here.
    """
    header, offset = parse_header(blob)
    check = commitment_check(body_context(header), blob[offset:])
    trusted = keys.matching(header.slots)
    try:
        keys.policy.check_message(header.split, header.slots, keys.backends)
        material = keys.cluster_material(header.split)
    except (DecryptionError, ConfigError) as exc:  # a refused split, a missing part
        return [(s.provider, s.key_id, _problem(exc)) for _, s in trusted]
    problems: dict[int, str | None] = {}
    if header.split.threshold is None:
        for _, slot in trusted:
            try:
                key = keys.input_key((slot,), header.split, header.context, None, use_cache=False)
                good = check(key)
                _wipe(key)
                problems[id(slot)] = None if good else _DAMAGED
            except DecryptionError as exc:
                problems[id(slot)] = _DAMAGED if type(exc) is DecryptionError else _problem(exc)
            except KmsError as exc:
                problems[id(slot)] = _problem(exc)
    else:
        problems = _verify_shares(trusted, header, material, check)
    return [(s.provider, s.key_id, problems[id(s)]) for _, s in trusted]


def _verify_shares(
    trusted: list[tuple[KmsBackend | None, KeySlot]],
    header: Header,
    material: bytearray | None,
    check: Callable[[bytearray], bool],
) -> dict[int, str | None]:
    """Problems of a k-of-n message's shares: each is unwrapped, a k-subset that opens
    the message is searched for, and every other share is checked against it."""
    k, _ = header.split.threshold or (1, 1)
    position = {id(s): i + 1 for i, s in enumerate(header.slots)}
    problems: dict[int, str | None] = {}
    shares: dict[int, tuple[int, bytearray]] = {}
    for backend, slot in trusted:
        if backend is None:
            problems[id(slot)] = "a key-store slot cannot hold a threshold share"
            continue
        try:
            unwrapped = unwrap_key(
                backend, WrappedKey(slot.provider, slot.key_id, slot.wrapped), header.context
            )
            shares[id(slot)] = (position[id(slot)], unwrapped)
        except DecryptionError:
            problems[id(slot)] = _DAMAGED
        except KmsError as exc:
            problems[id(slot)] = _problem(exc)
    try:
        basis, key = _find_basis(k, list(shares.values()), material, check)
        for sid, indexed in shares.items():
            if basis is None:
                problems[sid] = (
                    f"no {k} of the {len(shares)} shares that unwrap open this message"
                    if len(shares) >= k
                    else f"only {len(shares)} of the {k} shares needed unwrap here; not checked"
                )
            elif indexed in basis:
                problems[sid] = None
            else:
                again = combine_key(k, [*basis[: k - 1], indexed])
                problems[sid] = None if again == key else _FOREIGN
                _wipe(again)
        if key is not None:
            _wipe(key)
    finally:
        for _, share in shares.values():
            _wipe(share)
    return problems


def _find_basis(
    k: int,
    shares: list[tuple[int, bytearray]],
    material: bytearray | None,
    check: Callable[[bytearray], bool],
) -> tuple[list[tuple[int, bytearray]] | None, bytearray | None]:
    """A k-subset of ``shares`` whose key the commitment accepts, and that key."""
    for tried, subset in enumerate(itertools.combinations(shares, k)):
        if tried == MAX_SUBSETS:
            break
        key = combine_key(k, list(subset))
        candidate = derive_input_key(key, material)
        try:
            if check(candidate):
                return list(subset), key
        finally:
            _wipe(candidate)
        _wipe(key)
    return None, None
