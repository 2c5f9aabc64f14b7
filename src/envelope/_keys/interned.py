"""Message-cache key parts as single interned objects, compared and hashed by id
(:meth:`envelope._keys.source.KeySource.seal_key`)."""

from __future__ import annotations

import threading
import weakref

__all__ = ["Interned", "intern"]


class Interned:
    """A message-cache key part as one object, the same for equal ``parts`` while it
    lives, compared and hashed by id: a cache key made of it hashes in constant time
    instead of re-hashing the identity (and context) on every message. It holds its
    parts, hence the identity's backends, so neither it nor their ids can be reused
    while a cache entry (or a source) holds it."""

    __slots__ = ("__weakref__", "parts")

    def __init__(self, parts: tuple[object, ...]) -> None:
        self.parts = parts


_interned: weakref.WeakValueDictionary[tuple[object, ...], Interned] = weakref.WeakValueDictionary()
_interned_lock = threading.Lock()


def intern(parts: tuple[object, ...]) -> Interned:
    """The one live :class:`Interned` of ``parts`` (made if there is none)."""
    with _interned_lock:
        token = _interned.get(parts)
        if token is None:
            token = _interned[parts] = Interned(parts)
        return token
