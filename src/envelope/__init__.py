"""envelope: envelope encryption for services on Kubernetes.

>>> from envelope import Envelope, LocalKms, ClusterSecret
>>> env = Envelope(LocalKms.ephemeral(), ClusterSecret.generate())
>>> blob = env.encrypt(b"s3cr3t", context={"service": "billing"})
>>> env.decrypt(blob, context={"service": "billing"})
b's3cr3t'
"""

from envelope.api import Envelope
from envelope.batch import BatchHeader, BatchResult, EncryptedBatch
from envelope.cache import DataKeyCache
from envelope.cluster import ClusterSecret, ClusterSecretPart
from envelope.errors import (
    ConfigError,
    DecryptionError,
    EnvelopeError,
    FormatError,
    KeyUnavailableError,
    KmsError,
)
from envelope.inspection import MessageInfo, inspect
from envelope.kms import KmsBackend
from envelope.kms.local import LocalKms
from envelope.kms.types import DataKey, WrappedKey

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
    "inspect",
]
__version__ = "0.1.0"
