"""Key stores: where stored (wrapped) data keys live, versioned, outside the messages.

A message encrypted with ``key_ref=NAME`` records a reference to a stored key version
instead of a key slot of its own; the store holds that version's wrapped data key.
:class:`FileKeyStore` keeps them in a directory, :class:`S3KeyStore` in a bucket (the
``aws`` extra). Both create versions exclusively and rewrap by compare-and-swap, so
racing writers never lose an update.
"""

from typing import TYPE_CHECKING

from envelope._lazy import lazy_getattr
from envelope.keystore._base import KeyStore, StoredKey, VersionConflict

if TYPE_CHECKING:
    from envelope.keystore._file import FileKeyStore
    from envelope.keystore._s3 import S3KeyStore

# Imported on first use: a command without a key store pays for neither.
_LAZY = {"FileKeyStore": "_file", "S3KeyStore": "_s3"}

__getattr__ = lazy_getattr(__name__, _LAZY, globals())


__all__ = ["FileKeyStore", "KeyStore", "S3KeyStore", "StoredKey", "VersionConflict"]
