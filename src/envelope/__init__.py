"""envelope: envelope encryption for services on Kubernetes.

>>> from envelope import Envelope, LocalKms, ClusterSecret
>>> env = Envelope(LocalKms.ephemeral(), ClusterSecret.generate())
>>> blob = env.encrypt(b"s3cr3t", context={"service": "billing"})
>>> env.decrypt(blob, context={"service": "billing"})
b's3cr3t'
"""

from typing import TYPE_CHECKING

from envelope._envelope import Envelope
from envelope._keys.cache import DataKeyCache
from envelope._keys.cluster import ClusterSecret, ClusterSecretPart
from envelope._lazy import lazy_getattr
from envelope._version import __version__
from envelope.errors import (
    ConfigError,
    DecryptionError,
    EnvelopeError,
    FormatError,
    KeyUnavailableError,
    KmsError,
)
from envelope.kms import DataKey, KmsBackend, LocalKms, WrappedKey

if TYPE_CHECKING:
    from envelope._batch import BatchHeader, BatchResult, EncryptedBatch
    from envelope._format.inspect import MessageInfo, inspect

# The bulk path and the inspector are imported on first use (CLI start-up time).
_LAZY = {
    **dict.fromkeys(("BatchHeader", "BatchResult", "EncryptedBatch"), "_batch"),
    **dict.fromkeys(("MessageInfo", "inspect"), "_format.inspect"),
}

__getattr__ = lazy_getattr(__name__, _LAZY, globals())


__all__ = [
    "BatchHeader",
    "BatchResult",
    "ClusterSecret",
    "ClusterSecretPart",
    "ConfigError",
    "DataKey",
    "DataKeyCache",
    "DecryptionError",
    "EncryptedBatch",
    "Envelope",
    "EnvelopeError",
    "FormatError",
    "KeyUnavailableError",
    "KmsBackend",
    "KmsError",
    "LocalKms",
    "MessageInfo",
    "WrappedKey",
    "__version__",
    "inspect",
]
