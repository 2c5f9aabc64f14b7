"""The acceptance policy: what a configured :class:`~envelope._keys.source.KeySource`
accepts, decided by its configuration and never by the message (docs/format.md,
"Acceptance policy").

- A configured cluster secret requires a message split with a part it holds (the part
  lookup names a missing one); a message that records no split is refused.
- A configured threshold ``(k, n)`` requires exactly that threshold, every share slot
  wrapped by a distinct configured custodian; any-of or another threshold is refused.
- ``accept_unsplit`` (migration) lets both kinds of older message through, logged as a
  warning on the ``envelope`` logger each time.
- Stored key objects never name a cluster part and never hold key-store slots.

Also here: custodians that overlap (one key listed twice, or two regions of one AWS
multi-region key) are refused for a threshold, since one custodian would then hold
two shares; and :class:`Principal`, the part of a cache key that says whose
credentials produced an entry.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from envelope._format.message import KeySlot, SplitDescriptor
from envelope.errors import DecryptionError
from envelope.kms import KmsBackend

__all__ = ["AcceptancePolicy", "Principal", "check_custodians", "describe"]

log = logging.getLogger("envelope")

STORED_KEY_PROVIDER = "keystore"
_OPT_IN = "pass accept_unsplit=True to read older messages while migrating"
_OPT_IN_CLI = "pass --accept-unsplit to read older messages while migrating"


class Principal:
    """Whose credentials an entry of a shared cache came from: the backend instance.

    Compares and hashes by identity and holds a reference to the backend, so an entry
    made through one backend object is never served through another (another tenant's
    credentials over the same key id), and the id cannot be reused while the entry
    lives. Two Envelopes over the *same* backend object share entries.
    """

    __slots__ = ("_backend",)

    def __init__(self, backend: KmsBackend) -> None:
        self._backend = backend

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Principal) and other._backend is self._backend

    def __hash__(self) -> int:
        return id(self._backend)

    def __repr__(self) -> str:
        return f"Principal({type(self._backend).__name__} at {id(self._backend):#x})"


def describe(split: SplitDescriptor) -> str:
    """The key layout a split descriptor records, in words (for error messages)."""
    if split.threshold is None:
        return "any-of (each slot holds the whole data key)"
    return f"{split.threshold[0]}-of-{split.threshold[1]} threshold"


def check_custodians(backends: Sequence[KmsBackend]) -> None:
    """Refuses custodians that overlap: one custodian must never hold two shares.

    Raises:
        ValueError: two backends name the same key (``matches()`` either way), which
            includes two regions of one AWS multi-region key.
    """
    for i, a in enumerate(backends):
        for b in backends[i + 1 :]:
            if a is b or (
                a.provider_id == b.provider_id and (a.matches(b.key_id) or b.matches(a.key_id))
            ):
                raise ValueError(
                    f"threshold custodians overlap: {a.provider_id} key {a.key_id!r} and "
                    f"{b.provider_id} key {b.key_id!r} are the same key (or replicas of it), "
                    "so one custodian would hold two shares; list each custodian once"
                )


@dataclass(frozen=True, slots=True)
class AcceptancePolicy:
    """See the module docstring."""

    split_required: bool
    threshold: tuple[int, int] | None
    accept_unsplit: bool

    def _downgrade(self, what: str) -> None:
        if not self.accept_unsplit:
            raise DecryptionError(
                f"refused by this Envelope's policy: {what}; {_OPT_IN}",
                cli=f"refused: {what}; {_OPT_IN_CLI}",
            )
        log.warning("accepting an unsplit message (accept_unsplit=True): %s", what)

    def check_message(
        self, split: SplitDescriptor, slots: Sequence[KeySlot], custodians: Sequence[KmsBackend]
    ) -> None:
        """Refuses a message (or batch) whose split this configuration does not accept.

        Raises:
            DecryptionError: the message records a weaker split than configured (the
                message says what it records and what is required).
        """
        if self.split_required and split.cluster_secret_id is None:
            self._downgrade(
                "the message records no cluster-secret split, and this Envelope has a "
                "cluster secret (anyone with the KMS key alone could have made it)"
            )
        for s in slots:  # a loop, not all(): no generator per message
            if s.provider != STORED_KEY_PROVIDER:
                self._check_threshold(split, slots, custodians)
                return
        # all key-store slots: the threshold is the stored key object's (check_key_object)

    def check_key_object(
        self, split: SplitDescriptor, slots: Sequence[KeySlot], custodians: Sequence[KmsBackend]
    ) -> None:
        """Refuses a stored key object this configuration does not accept.

        Raises:
            DecryptionError: it names a cluster part, holds a key-store slot, or records
                a weaker split than configured.
        """
        if split.cluster_secret_id is not None or any(
            s.provider == STORED_KEY_PROVIDER for s in slots
        ):
            raise DecryptionError(
                "a stored key object never names a cluster part or another stored key"
            )
        self._check_threshold(split, slots, custodians)

    def _check_threshold(
        self, split: SplitDescriptor, slots: Sequence[KeySlot], custodians: Sequence[KmsBackend]
    ) -> None:
        if self.threshold is None:
            return
        k, n = self.threshold
        if split.threshold != self.threshold:
            self._downgrade(
                f"the message's data key is {describe(split)}, and this Envelope requires "
                f"a {k}-of-{n} threshold over its custodians"
            )
            return
        used: set[int] = set()
        for position, slot in enumerate(slots, 1):
            owner = [
                i
                for i, b in enumerate(custodians)
                if slot.provider == b.provider_id and b.matches(slot.key_id)
            ]
            if len(owner) != 1 or owner[0] in used:
                raise DecryptionError(
                    f"refused by this Envelope's policy: share slot {position} "
                    f"({slot.provider} key {slot.key_id!r}) is not wrapped by a distinct "
                    "configured custodian"
                )
            used.add(owner[0])
