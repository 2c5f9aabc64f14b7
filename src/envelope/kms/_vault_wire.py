"""What Vault / OpenBao Transit requests and ciphertexts look like: how a context is
bound, which key version a ciphertext names, and a slot's mount and key name (shared by
the backend and by break-glass recovery, which prints the same requests)."""

from __future__ import annotations

import base64
import re

from envelope._format.context import Context, encode_context

__all__ = ["MAX_BATCH", "b64", "ciphertext_version", "split_key_id", "transit_binding"]

_CIPHERTEXT = re.compile(r"^vault:v(\d+):")
#: Items per batch_input request: OpenBao refuses request bodies with too many strings
#: (250 items with a context already exceed its default limit).
MAX_BATCH = 100


def b64(data: bytes | bytearray) -> str:
    """``data`` in base64, as text (what Transit's JSON fields hold)."""
    return base64.b64encode(bytes(data)).decode()


def transit_binding(context: Context, *, derived: bool) -> dict[str, str]:
    """What binds ``context`` in a Transit request: the base64 canonical encoding as
    ``context`` for a derived key (key derivation binds it), as ``associated_data``
    (AES-GCM AAD) otherwise (Transit ignores ``context`` on a non-derived key)."""
    field = "context" if derived else "associated_data"
    return {field: b64(encode_context(context))}


def ciphertext_version(wrapped: bytes) -> int | None:
    """The transit key version a ``vault:vN:...`` ciphertext was made with, else None."""
    match = _CIPHERTEXT.match(wrapped.decode("ascii", "replace"))
    return int(match.group(1)) if match else None


def split_key_id(key_id: str) -> tuple[str, str]:
    """``(mount, key name)`` of a slot's key id ``<mount>/<key name>``
    (the mount may hold slashes, a transit key name never does)."""
    mount, _, name = key_id.rpartition("/")
    return mount, name
