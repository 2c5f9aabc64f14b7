"""k-of-n sharing of a 32-byte data key with Shamir secret sharing.

The field arithmetic is pycryptodome's (``Crypto.Protocol.SecretSharing.Shamir``, over
GF(2^128)), a maintained and widely reviewed implementation; nothing here does field
arithmetic. It shares 16-byte secrets, so a 32-byte key is shared as two independent
halves with the same share indices; share ``i`` (1-based) is the two halves' shares
concatenated (32 bytes, so each can be wrapped by a KMS like a data key).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from envelope.errors import ConfigError, DecryptionError

__all__ = ["combine_key", "split_key"]

KEY_BYTES = 32
HALF = 16


def _shamir() -> Any:
    try:
        from Crypto.Protocol.SecretSharing import Shamir  # noqa: PLC0415 - optional dependency
    except ImportError:
        raise ConfigError(
            "k-of-n threshold wrapping needs pycryptodome: pip install 'envelope-kms[threshold]'"
        ) from None
    return Shamir


def split_key(k: int, n: int, key: bytes | bytearray) -> list[bytearray]:
    """Shares ``key`` (32 bytes) so that any ``k`` of the ``n`` shares recover it.

    Returns:
        ``n`` shares of 32 bytes; share ``i`` (0-based in the list) has index ``i + 1``.

    Raises:
        ValueError: bad ``k``/``n`` or key length. ConfigError: pycryptodome missing.
    """
    if len(key) != KEY_BYTES or not 1 <= k <= n <= 255:
        raise ValueError("split_key needs a 32-byte key and 1 <= k <= n <= 255")
    shamir = _shamir()
    if k == 1:  # pycryptodome needs k >= 2; 1-of-n is plain replication
        return [bytearray(key) for _ in range(n)]
    lo = shamir.split(k, n, bytes(key[:HALF]))
    hi = shamir.split(k, n, bytes(key[HALF:]))
    shares = []
    for (i, a), (j, b) in zip(lo, hi, strict=True):
        assert i == j
        shares.append(bytearray(a + b))
    return shares


def combine_key(k: int, shares: Sequence[tuple[int, bytes | bytearray]]) -> bytearray:
    """Recovers the key from at least ``k`` ``(index, share)`` pairs.

    A wrong share yields a wrong key, which the message's key commitment then rejects.

    Raises:
        DecryptionError: fewer than ``k`` shares, or malformed ones.
    """
    if len(shares) < k or any(len(s) != KEY_BYTES for _, s in shares):
        raise DecryptionError()
    if k == 1:
        return bytearray(shares[0][1])
    shamir = _shamir()
    chosen = shares[:k]
    lo = shamir.combine([(i, bytes(s[:HALF])) for i, s in chosen])
    hi = shamir.combine([(i, bytes(s[HALF:])) for i, s in chosen])
    return bytearray(lo + hi)
