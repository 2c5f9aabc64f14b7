"""Key stores: where stored (wrapped) data keys live, versioned, outside the messages.

A message encrypted with ``key_ref=NAME`` records a reference to a stored key version
instead of a key slot of its own; the store holds that version's wrapped data key.
:class:`FileKeyStore` keeps them in a directory, :class:`S3KeyStore` in a bucket (the
``aws`` extra). Both create versions exclusively and rewrap by compare-and-swap, so
racing writers never lose an update.
"""

from envelope.keystore._base import KeyStore, StoredKey, VersionConflict
from envelope.keystore._file import FileKeyStore
from envelope.keystore._s3 import S3KeyStore

__all__ = ["FileKeyStore", "KeyStore", "S3KeyStore", "StoredKey", "VersionConflict"]
