"""The one case an AsyncEnvelope call runs on the event loop itself: a small message
whose key the data-key cache already holds (no KMS call, no wait for one), where the
crypto costs less than handing the call to a pool thread (docs/async.md has the
measurements behind :data:`INLINE_BYTES`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from envelope import _telemetry
from envelope._envelope import Envelope, _expected
from envelope._format.context import canonical_context

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["INLINE_BYTES", "decrypt_if_cached", "encrypt_if_cached"]

#: Largest input (the plaintext to encrypt, the message to decrypt) handled on the loop
#: on a cache hit: about 10 us there against 50 us or more for the trip through the
#: pool (docs/async.md has the measurements).
INLINE_BYTES = 64 * 1024


def encrypt_if_cached(
    envelope: Envelope, data: Buffer, context: Mapping[str, str] | None, limit: int
) -> bytes | None:
    """``envelope.encrypt(data, context)`` if it needs no KMS call and ``data`` is at
    most ``limit`` bytes; else None (the caller then uses the pool).

    Raises:
        ValueError, TypeError: as :meth:`Envelope.encrypt`.
        ConfigError: the cluster-secret part was wiped.
    """
    keys = envelope._keys
    size = memoryview(data).nbytes
    if keys.cache is None or limit <= 0 or size > limit:
        return None
    sealer = keys.cached_sealer_now(canonical_context(context), size)
    if sealer is None:
        return None
    sealed = sealer.seal(data, None, 1)  # one thread: the loop's; the salt drawn natively
    if _telemetry.active:
        _telemetry.cached_message("encrypt", size)
    return sealed


def decrypt_if_cached(
    envelope: Envelope,
    blob: Buffer,
    context: Mapping[str, str] | None,
    any_context: bool,
    limit: int,
) -> bytes | None:
    """``envelope.decrypt(blob, context, any_context=...)`` if its key is cached and
    ``blob`` is at most ``limit`` bytes; else None.

    Raises:
        DecryptionError, FormatError, ValueError, TypeError: as
            :meth:`Envelope.decrypt`.
        ConfigError: the cluster-secret part was wiped.
    """
    keys = envelope._keys
    view = memoryview(blob).cast("B")
    if keys.cache is None or limit <= 0 or view.nbytes > limit:
        return None
    found = keys.cached_opener_now(view, _expected(context, any_context))
    if found is None:
        return None
    offset, opener = found
    plain = opener.open(view, offset, 1)
    if _telemetry.active:
        _telemetry.cached_message("decrypt", len(plain))
    return plain
