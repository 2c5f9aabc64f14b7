"""Encryption context: UTF-8 key/value pairs bound to a ciphertext.

The canonical form is the pairs sorted by the UTF-8 bytes of their keys, keys unique.
It is what the header stores, what KMS backends receive, and what is compared on
decryption, so two contexts are equal exactly when their canonical forms are.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

__all__ = [
    "MAX_CONTEXT_KEY_BYTES",
    "MAX_CONTEXT_PAIRS",
    "MAX_CONTEXT_VALUE_BYTES",
    "Context",
    "canonical_context",
    "encode_context",
]

#: A canonical context: ``(key, value)`` pairs sorted by UTF-8 key bytes.
Context = tuple[tuple[str, str], ...]

MAX_CONTEXT_PAIRS = 64
MAX_CONTEXT_KEY_BYTES = 255
MAX_CONTEXT_VALUE_BYTES = 4096
RESERVED_PREFIX = "envelope:"


def canonical_context(context: Mapping[str, str] | None) -> Context:
    """Validates ``context`` and returns its canonical form (memoized).

    Raises:
        TypeError: a key or value is not a ``str``.
        ValueError: more than 64 pairs, an empty key, a key over 255 or a value over
            4096 UTF-8 bytes, a key using the reserved ``envelope:`` prefix, or a
            string that is not valid UTF-8 (lone surrogates).
    """
    if not context:
        return ()
    try:
        return _canonical(tuple(context.items()))
    except TypeError:
        return _canonicalize(context)  # unhashable items: validate (and raise) the slow way


@functools.lru_cache(maxsize=4096)
def _canonical(items: tuple[tuple[str, str], ...]) -> Context:
    return _canonicalize(dict(items))


def _canonicalize(context: Mapping[str, str] | None) -> Context:
    """The uncached work of :func:`canonical_context` (same errors)."""
    if not context:
        return ()
    if len(context) > MAX_CONTEXT_PAIRS:
        raise ValueError(f"encryption context has {len(context)} pairs; at most 64 allowed")
    pairs: list[tuple[bytes, str, str]] = []
    for key, value in context.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError("encryption context keys and values must be str")
        try:
            kb, vb = key.encode("utf-8"), value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"encryption context key {key!r} is not valid UTF-8") from exc
        if not kb or len(kb) > MAX_CONTEXT_KEY_BYTES:
            raise ValueError(f"encryption context key {key!r} must be 1 to 255 UTF-8 bytes")
        if len(vb) > MAX_CONTEXT_VALUE_BYTES:
            raise ValueError(f"encryption context value of {key!r} exceeds 4096 UTF-8 bytes")
        if key.startswith(RESERVED_PREFIX):
            raise ValueError(f"encryption context key {key!r} uses the reserved prefix 'envelope:'")
        pairs.append((kb, key, value))
    pairs.sort()
    return tuple((k, v) for _, k, v in pairs)


def encode_context(context: Context) -> bytes:
    """The canonical byte encoding of a canonical context (docs/format.md):
    ``u16 count`` then, per pair, ``u16 len || key || u16 len || value`` in UTF-8.
    Memoized: a message encodes its context up to three times (KMS AAD, header,
    body digest), and a service uses a few contexts over and over."""
    if not context:
        return b"\x00\x00"
    try:
        return _encoded(context)
    except TypeError:  # not hashable (a list of pairs): encode it as it is
        return _encode(context)


@functools.lru_cache(maxsize=4096)
def _encoded(context: Context) -> bytes:
    return _encode(context)


def _encode(context: Context) -> bytes:
    out = [len(context).to_bytes(2, "big")]
    for key, value in context:
        kb, vb = key.encode(), value.encode()
        out += [len(kb).to_bytes(2, "big"), kb, len(vb).to_bytes(2, "big"), vb]
    return b"".join(out)
