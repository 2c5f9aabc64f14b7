"""Acting on a message's key slots: which ones this configuration trusts, and the
candidate data keys they yield, in the configured order (any-of: each trusted slot's
key; k-of-n: each new k-subset of the shares unwrapped so far, bounded, local keyrings'
shares first), each passed over when the caller's check (the body's key commitment)
rejects it.

:class:`SlotOpener` is the half of :class:`~envelope._keys.source.KeySource` that
reads key slots; it is a separate module only to keep each file to one job.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Generator, Sequence

from envelope import _telemetry
from envelope._format.context import Context
from envelope._format.message import KeySlot
from envelope._keys.cache import DataKeyCache
from envelope._keys.discovery import DiscoveredKeys
from envelope._keys.policy import Principal
from envelope._keys.stored import STORED_KEY_PROVIDER, slot_version
from envelope._keys.threshold import combine_key
from envelope.errors import DecryptionError, KeyUnavailableError, KmsError
from envelope.keystore import KeyStore, StoredKey
from envelope.kms import KmsBackend, LocalKms
from envelope.kms._types import WrappedKey

__all__ = ["MAX_SHARE_SUBSETS", "Accept", "SlotOpener", "unwrap_key", "wipe", "wrap_key"]

#: How many k-subsets of the unwrapped shares are tried against the key commitment.
MAX_SHARE_SUBSETS = 1024

#: Accepts or rejects a candidate data key (checks it against the key commitment).
Accept = Callable[[bytearray], bool]


def wipe(b: bytearray) -> None:
    """Overwrites ``b`` with zeros."""
    b[:] = bytes(len(b))


def unwrap_key(backend: KmsBackend, wrapped: WrappedKey, ctx: Context) -> bytearray:
    """``backend.unwrap``, timed, counted, logged and traced (:mod:`envelope._telemetry`).

    Raises:
        As ``backend.unwrap``.
    """
    with _telemetry.kms_call(backend.provider_id, "unwrap", wrapped.key_id):
        return backend.unwrap(wrapped, ctx)


def wrap_key(backend: KmsBackend, secret: bytes | bytearray, ctx: Context) -> WrappedKey:
    """``backend.wrap``, timed, counted, logged and traced.

    Raises:
        As ``backend.wrap``.
    """
    with _telemetry.kms_call(backend.provider_id, "wrap") as call:
        wrapped = backend.wrap(secret, ctx)
        call.key_id = wrapped.key_id
    return wrapped


def _allowed(
    backend: DiscoveredKeys, slots: Sequence[KeySlot]
) -> list[tuple[KmsBackend | None, KeySlot]]:
    """The slots a discovering backend's allow-list allows: in allow-list order, ties in
    the message's order."""
    ranked = [
        (rank, i, s)
        for i, s in enumerate(slots)
        if s.provider == backend.provider_id and (rank := backend.rank(s.key_id)) is not None
    ]
    return [(backend, s) for _, _, s in sorted(ranked, key=lambda t: (t[0], t[1]))]


class SlotOpener:
    """See the module docstring; :class:`KeySource` sets the attributes."""

    backends: tuple[KmsBackend, ...]
    keystore: KeyStore | None
    cache: DataKeyCache | None

    def store(self) -> KeyStore:  # pragma: no cover - KeySource defines it
        """The configured key store."""
        raise NotImplementedError

    def unwrap_stored(self, stored: StoredKey) -> bytearray:  # pragma: no cover - as above
        """The data key inside a stored key object."""
        raise NotImplementedError

    def matching(self, slots: Sequence[KeySlot]) -> list[tuple[KmsBackend | None, KeySlot]]:
        """The slots this source may act on, in the configured backends' order (``None``
        as backend: a reference into the configured key store).

        Raises:
            KeyUnavailableError: none (names what the message wants); no KMS was called.
        """
        found: list[tuple[KmsBackend | None, KeySlot]] = []
        for backend in self.backends:
            if isinstance(backend, DiscoveredKeys):
                found += _allowed(backend, slots)
                continue
            found += [
                (backend, s)
                for s in slots
                if s.provider == backend.provider_id and backend.matches(s.key_id)
            ]
        if self.keystore is not None:
            prefix = self.keystore.uri + "/"
            found += [
                (None, s)
                for s in slots
                if s.provider == STORED_KEY_PROVIDER and s.key_id.startswith(prefix)
            ]
        if not found:
            named = ", ".join(f"{s.provider} key {s.key_id!r}" for s in slots)
            discovering = [b for b in self.backends if isinstance(b, DiscoveredKeys)]
            if discovering and self.keystore is None:
                raise discovering[0].refusal(named)
            ours = ", ".join(f"{b.provider_id} key {b.key_id!r}" for b in self.backends)
            raise KeyUnavailableError(
                f"the data key is wrapped by {named}; this Envelope trusts only {ours}"
                + (f" and key store {self.keystore.uri}" if self.keystore else "")
            )
        return found

    def _unwrap(
        self, backend: KmsBackend, slot: KeySlot, ctx: Context, use_cache: bool
    ) -> bytearray:
        wrapped = WrappedKey(slot.provider, slot.key_id, slot.wrapped)
        if self.cache is None or not use_cache:
            return unwrap_key(backend, wrapped, ctx)
        key = (Principal(backend), slot.provider, slot.key_id, slot.wrapped, ctx)
        return self.cache.for_decryption(key, lambda: unwrap_key(backend, wrapped, ctx))

    def _share_keys(  # noqa: PLR0917 - private, called once
        self,
        slots: Sequence[KeySlot],
        trusted: list[tuple[KmsBackend | None, KeySlot]],
        ctx: Context,
        policy: tuple[int, int],
        use_cache: bool,
        failures: list[tuple[str, Exception]],
        shares: list[tuple[int, bytearray]],
    ) -> Generator[bytearray]:
        """Candidate data keys of a k-of-n message: each new k-subset of the shares
        unwrapped so far, at most ``MAX_SHARE_SUBSETS`` of them."""
        k, n = policy
        if len(slots) != n:
            raise DecryptionError()
        position = {id(s): i + 1 for i, s in enumerate(slots)}
        tried = 0
        # Any k shares will do: local keyrings first (no network, never down), then
        # the remote custodians in the configured order.
        for backend, slot in sorted(trusted, key=lambda t: not isinstance(t[0], LocalKms)):
            if backend is None:
                continue  # a key-store slot never holds a share
            try:
                shares.append((position[id(slot)], self._unwrap(backend, slot, ctx, use_cache)))
            except (KmsError, DecryptionError) as exc:
                failures.append((f"{slot.provider} key {slot.key_id}", exc))
                continue
            for rest in itertools.combinations(shares[:-1], k - 1):
                if tried == MAX_SHARE_SUBSETS:
                    return
                tried += 1
                yield combine_key(k, [*rest, shares[-1]])

    def _whole_keys(
        self,
        trusted: list[tuple[KmsBackend | None, KeySlot]],
        ctx: Context,
        use_cache: bool,
        failures: list[tuple[str, Exception]],
    ) -> Generator[bytearray]:
        """Candidate data keys of an any-of message: each trusted slot's, in order."""
        for backend, slot in trusted:
            try:
                if backend is None:
                    store = self.store()
                    yield self.unwrap_stored(store.get(*slot_version(store, slot)))
                else:
                    yield self._unwrap(backend, slot, ctx, use_cache)
            except (KmsError, DecryptionError) as exc:
                failures.append((f"{slot.provider} key {slot.key_id}", exc))

    def data_key(
        self,
        slots: Sequence[KeySlot],
        ctx: Context,
        *,
        use_cache: bool = True,
        threshold: tuple[int, int] | None = None,
        accept: Accept | None = None,
    ) -> bytearray:
        """The data key in ``slots``, through the first configured backend that can (or,
        for a ``threshold`` split, combined from k shares). With ``accept``, a candidate
        it rejects (the body's key commitment) is passed over for the next slot or
        k-subset of shares.

        Raises:
            KeyUnavailableError: no slot names a trusted key.
            DecryptionError: every trusted slot failed to authenticate.
            KmsError: every trusted slot failed and some KMS could not be used (the
                message lists each backend and its reason).
        """
        failures: list[tuple[str, Exception]] = []
        shares: list[tuple[int, bytearray]] = []
        trusted = self.matching(slots)
        if threshold is None:
            found = self._whole_keys(trusted, ctx, use_cache, failures)
            alternatives = len(trusted) > 1
        else:
            found = self._share_keys(slots, trusted, ctx, threshold, use_cache, failures, shares)
            alternatives = sum(b is not None for b, _ in trusted) > threshold[0]
        if not alternatives:
            accept = None  # one candidate at most: decryption checks the commitment anyway
        try:
            for key in found:
                if accept is None or accept(key):
                    return key
                wipe(key)
                failures.append(("a candidate key", DecryptionError()))
        finally:
            found.close()
            for _, share in shares:
                wipe(share)
        if threshold is not None and len(shares) < threshold[0]:
            if failures and all(isinstance(e, DecryptionError) for _, e in failures):
                raise DecryptionError()
            reasons = (
                "; ".join(f"{who}: {exc}" for who, exc in failures) or "no other trusted key slots"
            )
            raise KmsError(
                f"the data key needs {threshold[0]} of {threshold[1]} shares and only "
                f"{len(shares)} could be unwrapped ({reasons})"
            )
        if all(isinstance(e, DecryptionError) for _, e in failures):
            if len(failures) == 1:
                raise failures[0][1]
            raise DecryptionError()
        reasons = "; ".join(f"{who}: {exc}" for who, exc in failures)
        raise KmsError(f"no configured KMS could unwrap the data key ({reasons})")
