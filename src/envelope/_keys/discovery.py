"""A KMS backend whose key is the one a message's key slot names, if an allow-list
allows it ("discovery decrypt": decrypting without naming the key).

:class:`DiscoveredKeys` is told only *which key ids* it may use (``rank``: the position of
the first allow-list pattern a key id matches, None when none does) and how to build a
backend for one of them (``build``: the settings layer's, with the configured KMS kind,
endpoint, region, mount and auth). The message picks a key id among the allowed ones;
it never picks where or how the KMS is reached (docs/threat-model.md, "Discovery
decrypt"). :meth:`~envelope._keys.slots.SlotOpener.matching` tries the allowed slots in
allow-list order (ties: the message's order) and, when none is allowed, raises the
:meth:`refusal` naming the keys the message wants.

It decrypts and rewraps only: it has no key of its own to encrypt under, unless
``encryptor`` gives one (the local keyring, whose file is the configured key).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from envelope._format.context import Context
from envelope.errors import ConfigError, KeyUnavailableError
from envelope.kms import KmsBackend
from envelope.kms._types import DataKey, WrappedKey

__all__ = ["DiscoveredKeys", "Rank"]

#: The position of the first allow-list pattern that allows a key id (None: none does).
Rank = Callable[[str], int | None]


class DiscoveredKeys:
    """See the module docstring.

    Args:
        provider_id: the key-slot provider of the configured KMS kind (``aws-kms``).
        rank: see :data:`Rank`; may call the configured KMS (an alias lookup).
        build: the backend for an allowed key id (called once per key id, then kept).
        allowed: the allow-list as given (for messages and ``key_id``).
        hint: what to configure when nothing is allowed, in CLI words.
        encryptor: the backend new data keys come from (None: encrypting is refused).
    """

    def __init__(
        self,
        provider_id: str,
        *,
        rank: Rank,
        build: Callable[[str], KmsBackend],
        allowed: Sequence[str],
        hint: str,
        encryptor: KmsBackend | None = None,
    ) -> None:
        self._provider = provider_id
        self._rank = rank
        self._build = build
        self.allowed = tuple(allowed)
        self._hint = hint
        self._encryptor = encryptor
        self._built: dict[str, KmsBackend] = {}
        self._setup: list[Callable[[KmsBackend], None]] = []
        # The settings tree this backend pickles as (set by the settings layer).
        self._origin: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"DiscoveredKeys(provider={self._provider!r}, allowed={list(self.allowed)!r})"

    @property
    def provider_id(self) -> str:
        """The configured KMS kind's key-slot provider."""
        return self._provider

    @property
    def key_id(self) -> str:
        """The encryptor's key id, else a description of the allow-list (no key of its own)."""
        if self._encryptor is not None:
            return self._encryptor.key_id
        return "any key allowed by " + (", ".join(self.allowed) or "(an empty allow-list)")

    def rank(self, key_id: str) -> int | None:
        """The position of the first allow-list pattern that allows ``key_id`` (None: none).

        Raises:
            KmsError: an alias pattern needed the configured KMS and it failed.
        """
        return self._rank(key_id)

    def matches(self, key_id: str) -> bool:
        """True if the allow-list allows ``key_id`` (see :meth:`rank`)."""
        return self.rank(key_id) is not None

    def refusal(self, wanted: str) -> KeyUnavailableError:
        """The error for a message none of whose slots (``wanted``, in words) is allowed."""
        given = (
            f"the allowed keys ({', '.join(self.allowed)}) include none of them"
            if self.allowed
            else "no key is configured and no allow-list is given"
        )
        return KeyUnavailableError(f"the data key is wrapped by {wanted}; {given}: {self._hint}")

    def backend_for(self, key_id: str) -> KmsBackend:
        """The backend of the allowed key ``key_id`` (built once).

        Raises:
            KeyUnavailableError: the allow-list does not allow ``key_id``.
            ConfigError: the backend cannot be set up.
        """
        found = self._built.get(key_id)
        if found is None:
            if not self.matches(key_id):
                raise self.refusal(f"{self._provider} key {key_id!r}")
            found = self._build(key_id)
            for setup in self._setup:
                setup(found)
            self._built[key_id] = found
        return found

    def configure_each(self, setup: Callable[[KmsBackend], None]) -> None:
        """Applies ``setup`` to every backend built so far and to each one built later
        (a run-wide deadline, say)."""
        self._setup.append(setup)
        for backend in self._built.values():
            setup(backend)

    def _checked(self, wrapped: WrappedKey) -> KmsBackend:
        if wrapped.provider != self._provider:
            raise self.refusal(f"{wrapped.provider} key {wrapped.key_id!r}")
        return self.backend_for(wrapped.key_id)

    def _encrypting(self) -> KmsBackend:
        if self._encryptor is None:
            raise ConfigError(f"encrypting needs a key, and none is configured: {self._hint}")
        return self._encryptor

    def generate_data_key(self, context: Context) -> DataKey:
        """Through the encryptor.

        Raises:
            ConfigError: no encryptor (no key is configured: the allow-list only picks
                keys to decrypt with). KmsError: as the encryptor's.
        """
        return self._encrypting().generate_data_key(context)

    def wrap(self, plaintext: bytes | bytearray, context: Context) -> WrappedKey:
        """Through the encryptor.

        Raises:
            ConfigError, KmsError: as :meth:`generate_data_key`.
        """
        return self._encrypting().wrap(plaintext, context)

    def unwrap(self, wrapped: WrappedKey, context: Context) -> bytearray:
        """Through the backend of the key ``wrapped`` names, if allowed.

        Raises:
            KeyUnavailableError: that key is not allowed. DecryptionError, KmsError,
                ConfigError: as that backend's.
        """
        return self._checked(wrapped).unwrap(wrapped, context)

    def rewrap(self, wrapped: WrappedKey, context: Context) -> WrappedKey:
        """Under the newest version of the key ``wrapped`` names, if allowed.

        Raises:
            KeyUnavailableError, DecryptionError, KmsError, ConfigError: as :meth:`unwrap`.
        """
        return self._checked(wrapped).rewrap(wrapped, context)

    def health(self) -> None:
        """Checks the encryptor, else every key used so far.

        Raises:
            ConfigError: no encryptor and no key used yet (nothing to check).
            KmsError: a key is not usable.
        """
        if self._encryptor is not None:
            self._encryptor.health()
            return
        if not self._built:
            raise ConfigError(f"no key to check: {self._hint}")
        for backend in self._built.values():
            backend.health()
