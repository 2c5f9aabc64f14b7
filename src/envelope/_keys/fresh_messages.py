"""Uncached messages on a local keyring in one native call each.

Without a data-key cache every message gets its own data key. On a local keyring that
key is made, wrapped and used in this process, so the whole message (data key, wrap,
header, input key, body) is one native call: :class:`envelope._native.FreshKeyMessages`.
The bytes are those of the full path (:meth:`KeySource.new_message` with
:meth:`LocalKms.generate_data_key`); tests/unit/test_fresh_messages.py checks that each
path opens the other's messages.

Nothing here decides what goes in a header. For one (context, KEK version, cluster
part) every message's header is the same but for the wrapped data key in its one key
slot, so the template is the full path's own header, encoded twice with two
placeholder keys: the bytes that differ are the slot's. Decryption takes the native
path only for a header that is byte for byte that template around the slot; any
other header (an older KEK version, another keyring, more slots) goes the full way.
"""

from __future__ import annotations

from envelope import _native, _telemetry
from envelope._format.context import Context
from envelope._format.message import KeySlot, SplitDescriptor, encode_message_header
from envelope._keys.cluster import ClusterSecretPart
from envelope._keys.derive import input_key_label
from envelope.kms import LocalKms

__all__ = ["FreshMessages", "fresh_messages"]


def _counts() -> dict[tuple[str, str], int]:
    sealed, opened = _native.fresh_key_counts()
    return {(LocalKms.provider_id, "generate"): sealed, (LocalKms.provider_id, "unwrap"): opened}


# Each native message is one keyring call, counted natively: no Python call per message.
_telemetry.count_native_calls(_counts)


class FreshMessages:
    """The native sealer and opener of one context's messages, and what it was made
    for: the KEK ``version`` and cluster ``part`` (None: no split); ``opens``: False
    when the acceptance policy refuses such messages, so decryption takes the full
    path (which raises)."""

    __slots__ = ("native", "opens", "part", "version")

    def __init__(
        self,
        native: _native.FreshKeyMessages,
        version: int,
        part: ClusterSecretPart | None,
        opens: bool,
    ) -> None:
        self.native = native
        self.version = version
        self.part = part
        self.opens = opens

    def __repr__(self) -> str:
        part = None if self.part is None else self.part.id
        return f"FreshMessages(version={self.version}, part={part!r}, opens={self.opens})"


def fresh_messages(
    kms: LocalKms,
    ctx: Context,
    split: SplitDescriptor,
    part: ClusterSecretPart | None,
    opens: bool,
) -> FreshMessages:
    """The one-call path of new messages under ``ctx`` with this ``split`` (whose
    cluster part, if any, is ``part``).

    Raises:
        ValueError: the header would break a bound (as the full path raises).
        ConfigError: ``part`` was wiped.
    """
    version, wrap, aad = kms.message_wrap(ctx)
    n = wrap.wrapped_len

    def header(blob: bytes) -> tuple[bytes, bytes]:
        return encode_message_header(ctx, split, (KeySlot(kms.provider_id, kms.key_id, blob),))

    zeros, digest = header(bytes(n))
    ones, _ = header(b"\xff" * n)
    at = next(i for i, (a, b) in enumerate(zip(zeros, ones, strict=True)) if a != b)
    head, tail = zeros[:at], zeros[at + n :]
    if ones != head + b"\xff" * n + tail:  # the slot's bytes are not one contiguous run
        raise AssertionError("the key slot is not where the template expects it")
    material = None if part is None else part.material
    native = _native.FreshKeyMessages(
        wrap, aad, head, tail, digest, input_key_label(part is not None), material
    )
    return FreshMessages(native, version, part, opens)
