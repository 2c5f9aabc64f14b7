"""Stored data keys as messages see them: the ``keystore`` key slot that references one
version in the configured key store, resolving such references, and the key objects
themselves (an envelope v1 header with no body; see :mod:`envelope.keystore`)."""

from __future__ import annotations

import re

from envelope._format.context import Context
from envelope._format.message import (
    SUITE_COBBLESTONE_256,
    Header,
    KeySlot,
    SplitDescriptor,
    encode_header,
    parse_header,
)
from envelope.errors import ConfigError, DecryptionError, FormatError
from envelope.keystore import KeyStore, StoredKey
from envelope.keystore._base import check_name

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
#: Versions are ASCII digits without leading zeros, 1 to 2^32 - 1 (a u32 in the slot).
MAX_STORED_VERSION = 2**32 - 1
_VERSION = re.compile(r"[1-9][0-9]{0,9}")


def resolve_ref(store: KeyStore, key_ref: str) -> tuple[str, int | None]:
    """Name and version (None: newest) of ``name``, ``name@version`` or
    ``<store uri>/name[@version]`` in ``store`` (never another one).

    Raises:
        ConfigError: the reference names another store. ValueError: a bad version
            (not ASCII digits, or outside 1 to 2^32 - 1) or name.
    """
    ref = key_ref
    if "://" in ref:
        if not ref.startswith(store.uri + "/"):
            raise ConfigError(
                f"key reference {key_ref!r} is not in the configured key store {store.uri}"
            )
        ref = ref[len(store.uri) + 1 :]
    name, at, version = ref.partition("@")
    check_name(name)
    if not at:
        return name, None
    if not _VERSION.fullmatch(version) or int(version) > MAX_STORED_VERSION:
        raise ValueError(
            f"key reference {key_ref!r}: the version after '@' must be a number "
            f"from 1 to {MAX_STORED_VERSION}"
        )
    return name, int(version)


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
        DecryptionError: the slot's reference is malformed (a bad name or version) or
            its bytes do not match it.
    """
    try:
        name, version = resolve_ref(store, slot.key_id)
    except (ValueError, ConfigError):
        raise DecryptionError() from None
    if version is None or slot.wrapped != STORED_KEY_SLOT_FORMAT + version.to_bytes(4, "big"):
        raise DecryptionError()
    return name, version


def key_object(stored: StoredKey) -> Header:
    """The header inside a stored key object.

    Raises:
        FormatError: the object is not a key object (names the key and version).
    """
    try:
        header, end = parse_header(stored.blob)
    except FormatError:
        raise FormatError(
            f"stored key {stored.name!r} version {stored.version} is not a key object"
        ) from None
    if end != len(stored.blob):
        raise FormatError(f"stored key {stored.name!r} version {stored.version} has trailing bytes")
    return header


def new_key_object(
    ctx: Context, slots: tuple[KeySlot, ...], threshold: tuple[int, int] | None = None
) -> bytes:
    """The bytes of a key object holding ``slots`` for ``ctx`` (never a cluster part;
    ``threshold``: the slots hold k-of-n shares)."""
    return encode_header(
        Header(SUITE_COBBLESTONE_256, ctx, SplitDescriptor(None, threshold), slots)
    )
