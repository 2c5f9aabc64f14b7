"""The one exception hierarchy of envelope.

```
EnvelopeError
├── DecryptionError      a message did not decrypt (opaque: one message for every cause)
│   ├── FormatError      not an envelope message, or one this version cannot read
│   └── KeyUnavailableError  the message needs a key (KEK, cluster part) this process lacks
├── KmsError             a KMS backend failed (which backend, which key, what to do)
└── ConfigError          local configuration is missing or wrong (what to run or fix)
    └── FileAccessError  an input file cannot be read or an output file cannot be written
```

An error may carry its message in command-line words too (``cli_message``: flags instead
of Python parameters); the ``envelope`` command shows that one, library callers ``str()``.

Everything that goes wrong because of the *bytes of a message* (tampering, truncation,
a wrong context, a wrong key) is a `DecryptionError`, so `except DecryptionError` is
enough to handle untrusted input. Its subclasses only ever add facts that are already
public in the message header (a version number, a key id), never anything derived
from key material or plaintext.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DecryptionError",
    "EnvelopeError",
    "FileAccessError",
    "FormatError",
    "KeyUnavailableError",
    "KmsError",
]


class EnvelopeError(Exception):
    """Base class of every error envelope raises on purpose.

    Args:
        *args: as :class:`Exception` (the first is the message, in library words).
        cli: the same message in command-line words (flags, not parameters), if it differs.
    """

    def __init__(self, *args: object, cli: str | None = None) -> None:
        super().__init__(*args)
        self.cli = cli

    @property
    def cli_message(self) -> str:
        """The message as the ``envelope`` command shows it (flags, not parameters)."""
        return self.cli if self.cli is not None else str(self)


class DecryptionError(EnvelopeError):
    """The message did not authenticate or cannot be decrypted.

    Raised with the same message for every authentication failure (a flipped bit,
    truncation, trailing data, a wrong key, a wrong context), so that callers and
    attackers cannot tell the causes apart.
    """

    MESSAGE = "decryption failed: the message, its key or its context is wrong"

    #: In a record batch: the position of the first record that failed (never its content).
    index: int | None

    def __init__(
        self, message: str | None = None, *, index: int | None = None, cli: str | None = None
    ) -> None:
        if message is None and index is not None:
            message = (
                f"decryption failed at record {index}: the record, its key, its AAD "
                "or its position is wrong"
            )
        super().__init__(message or self.MESSAGE, cli=cli)
        self.index = index


class FormatError(DecryptionError):
    """The bytes are not an envelope message this version can read (names what is wrong)."""


class KeyUnavailableError(DecryptionError):
    """The message names a key (KMS key, key version or cluster-secret part) this process
    does not have or does not trust. The message names that key and what to configure."""


class KmsError(EnvelopeError):
    """A KMS backend could not perform an operation: unreachable, access denied, key
    disabled or missing. The message names the backend, the key and the remedy."""


class ConfigError(EnvelopeError):
    """Local configuration is missing or wrong: the message says which file or setting
    and what to run to fix it."""


class FileAccessError(ConfigError):
    """An input file cannot be read, or an output file (or its directory) cannot be
    written: the message names the file and the operating system's reason. The CLI exits
    with the I/O code for it (a missing keyring or cluster-secret file stays a ConfigError)."""
