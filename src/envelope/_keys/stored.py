"""Stored data keys as messages see them: the ``keystore`` key slot that references one
version in the configured key store, resolving such references, and the key objects
themselves (an envelope v1 header with no body; see :mod:`envelope.keystore`)."""

from __future__ import annotations

from envelope._format.context import Context
from envelope._format.message import (
    SUITE_COBBLESTONE_256,
    Header,
    KeySlot,
    SplitDescriptor,
    encode_header,
    parse_header,
)
from envelope.errors import ConfigError, DecryptionError, FormatError, KmsError
from envelope.keystore import KeyStore, StoredKey

__all__ = [
    "STORED_KEY_PROVIDER",
    "key_object",
    "new_key_object",
    "reference_slot",
    "resolve_ref",
    "slot_version",
]

#: Slots that reference a stored data key; their wrapped bytes are a format byte and
#: the u32 version.
STORED_KEY_PROVIDER = "keystore"
STORED_KEY_SLOT_FORMAT = b"\x01"


def resolve_ref(store: KeyStore, key_ref: str) -> tuple[str, int | None]:
    """Name and version (None: newest) of ``name``, ``name@version`` or
    ``<store uri>/name[@version]`` in ``store`` (never another one).

    Raises:
        ConfigError: the reference names another store. ValueError: a bad version.
    """
    ref = key_ref
    if "://" in ref:
        if not ref.startswith(store.uri + "/"):
            raise ConfigError(
                f"key reference {key_ref!r} is not in the configured key store {store.uri}"
            )
        ref = ref[len(store.uri) + 1 :]
    name, _, version = ref.partition("@")
    if version and not version.isdigit():
        raise ValueError(f"key reference {key_ref!r}: the version after '@' must be a number")
    return name, int(version) if version else None


def reference_slot(store: KeyStore, stored: StoredKey) -> KeySlot:
    """The key slot a message records for ``stored`` (a reference, not a key)."""
    return KeySlot(
        STORED_KEY_PROVIDER,
        f"{store.uri}/{stored.name}@{stored.version}",
        STORED_KEY_SLOT_FORMAT + stored.version.to_bytes(4, "big"),
    )


def slot_version(store: KeyStore, slot: KeySlot) -> tuple[str, int]:
    """Name and version a ``keystore`` slot references.

    Raises:
        DecryptionError: the slot's bytes do not match its reference.
        ConfigError, ValueError: as :func:`resolve_ref`.
    """
    name, version = resolve_ref(store, slot.key_id)
    if version is None or slot.wrapped != STORED_KEY_SLOT_FORMAT + version.to_bytes(4, "big"):
        raise DecryptionError()
    return name, version


def key_object(stored: StoredKey) -> Header:
    """The header inside a stored key object.

    Raises:
        KmsError: the object is not a key object (names the key and version).
    """
    try:
        header, end = parse_header(stored.blob)
    except FormatError:
        raise KmsError(
            f"stored key {stored.name!r} version {stored.version} is not a key object"
        ) from None
    if end != len(stored.blob):
        raise KmsError(f"stored key {stored.name!r} version {stored.version} has trailing bytes")
    return header


def new_key_object(ctx: Context, slots: tuple[KeySlot, ...]) -> bytes:
    """The bytes of a key object holding ``slots`` for ``ctx`` (never split)."""
    return encode_header(Header(SUITE_COBBLESTONE_256, ctx, SplitDescriptor(None), slots))
