"""envelope: envelope encryption for services on Kubernetes."""

from envelope.errors import (
    ConfigError,
    DecryptionError,
    EnvelopeError,
    FormatError,
    KeyUnavailableError,
    KmsError,
)

__all__ = [
    "ConfigError",
    "DecryptionError",
    "EnvelopeError",
    "FormatError",
    "KeyUnavailableError",
    "KmsError",
]
__version__ = "0.1.0"
