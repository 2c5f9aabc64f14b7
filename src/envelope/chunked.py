"""c2sp.org/chunked-encryption ("Cobblestone-256") over AES-256-GCM and HKDF-Expand SHA-512.

This is the message body of every envelope message, exposed for callers who manage
their own 32-byte input keys. The data plane runs in the Rust kernel with the GIL
released; large messages are split across all cores (``threads=0``) chunk by chunk.

A ciphertext is ``salt (24) || commitment (32) || chunk 0 || ... || final chunk``,
each chunk 16 KiB of plaintext plus a 16-byte tag; the final chunk is always shorter
than 16 KiB (possibly empty), so truncation and extension are detected.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from envelope import _native

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = [
    "CHUNK_SIZE",
    "OVERHEAD",
    "Decryptor",
    "Encryptor",
    "decrypt",
    "decrypt_into",
    "encrypt",
    "encrypt_into",
    "new_salt",
    "plaintext_length",
    "sealed_length",
]

#: Plaintext bytes per chunk.
CHUNK_SIZE: int = _native.CHUNK_LEN
#: Fixed bytes added to every message (salt + commitment + final tag).
OVERHEAD: int = _native.PREFIX_LEN + _native.TAG_LEN
SALT_SIZE: int = _native.SALT_LEN


def new_salt() -> bytes:
    """A fresh random salt (``SALT_SIZE`` bytes from the OS CSPRNG) for one message."""
    return secrets.token_bytes(SALT_SIZE)


def _salt(salt: bytes | None) -> bytes:
    return new_salt() if salt is None else bytes(salt)


def sealed_length(plaintext_length: int) -> int:
    """Returns the ciphertext length of a message of ``plaintext_length`` bytes.

    Raises:
        ValueError: beyond the scheme's limit of 2^38 chunks.
    """
    return _native.cobblestone_sealed_len(plaintext_length)


def plaintext_length(ciphertext_length: int) -> int:
    """Returns the plaintext length of a ciphertext of ``ciphertext_length`` bytes.

    Raises:
        DecryptionError: the length is not one a Cobblestone ciphertext can have.
    """
    return _native.cobblestone_opened_len(ciphertext_length)


def encrypt(
    input_key: Buffer,
    message: Buffer,
    context: Buffer,
    *,
    salt: bytes | None = None,
    threads: int = 0,
) -> bytes:
    """Encrypts ``message`` under a fresh per-message key derived from ``input_key``.

    Args:
        input_key: 32 uniformly random bytes.
        message: any C-contiguous buffer (bytes, bytearray, memoryview, mmap, numpy).
        context: bytes bound to the ciphertext; decryption needs the same bytes.
        salt: 24 bytes, **for tests and vectors only**; by default a fresh random salt.
            Reusing a salt with the same key and context repeats (key, nonce) pairs.
        threads: worker threads for large messages; 0 means one per core.

    Raises:
        ValueError: the key is not 32 bytes, the salt not 24, or the message too long.
    """
    out = _native.cobblestone_seal(bytes(input_key), _salt(salt), bytes(context), message, threads)
    assert out is not None
    return out


def encrypt_into(
    input_key: Buffer,
    message: Buffer,
    context: Buffer,
    out: Buffer,
    *,
    salt: bytes | None = None,
    threads: int = 0,
) -> None:
    """Like :func:`encrypt`, writing into ``out`` (exactly ``sealed_length(len(message))``).

    Raises:
        ValueError: bad key or salt size, or ``out`` has the wrong length, is read-only or
            shares memory with ``message`` (refused before anything is written).
    """
    _native.cobblestone_seal(bytes(input_key), _salt(salt), bytes(context), message, threads, out)


def decrypt(input_key: Buffer, ciphertext: Buffer, context: Buffer, *, threads: int = 0) -> bytes:
    """Decrypts and authenticates a whole message.

    Raises:
        DecryptionError: for every failure: wrong key (of any length), wrong context,
            tampering, truncation, trailing data.
    """
    out = _native.cobblestone_open(bytes(input_key), ciphertext, bytes(context), threads)
    assert out is not None
    return out


def decrypt_into(
    input_key: Buffer, ciphertext: Buffer, context: Buffer, out: Buffer, *, threads: int = 0
) -> None:
    """Like :func:`decrypt`, writing into ``out`` (exactly ``plaintext_length(len(ct))``).

    On failure ``out`` is zeroed before the exception propagates.

    Raises:
        DecryptionError: as :func:`decrypt`.
        ValueError: ``out`` has the wrong length, is read-only or shares memory with
            ``ciphertext`` (refused before anything is written; the input is untouched).
    """
    _native.cobblestone_open(bytes(input_key), ciphertext, bytes(context), threads, out)


class Encryptor:
    """Encrypts a message piece by piece with constant memory.

    ``update`` returns the ciphertext its input completes (the first call also returns
    the 56-byte prefix); ``finalize`` returns the final short chunk.

    Raises:
        ValueError: bad key or salt size; ``update``/``finalize`` after ``finalize``.
    """

    __slots__ = ("_sealer",)

    def __init__(self, input_key: Buffer, context: Buffer, *, salt: bytes | None = None) -> None:
        self._sealer = _native.StreamSealer(bytes(input_key), _salt(salt), bytes(context))

    def __repr__(self) -> str:
        return "<envelope.chunked.Encryptor>"

    def update(self, data: Buffer) -> bytes:
        """Feeds plaintext; returns the ciphertext now complete.

        Raises:
            ValueError: called after :meth:`finalize`.
        """
        return self._sealer.update(data)

    def finalize(self) -> bytes:
        """Ends the message; returns the rest of the ciphertext.

        Raises:
            ValueError: called a second time.
        """
        return self._sealer.finalize()


class Decryptor:
    """Decrypts a message piece by piece, releasing only authenticated plaintext.

    A chunk's plaintext is returned only once its tag verified *and* more ciphertext
    shows it is not the final chunk; ``finalize`` authenticates the final chunk and the
    message length. After any failure every further call fails too.

    Raises:
        DecryptionError: on the first failure and on every call after it.
        ValueError: use after a successful ``finalize``.
    """

    __slots__ = ("_opener",)

    def __init__(self, input_key: Buffer, context: Buffer) -> None:
        self._opener = _native.StreamOpener(bytes(input_key), bytes(context))

    def __repr__(self) -> str:
        return "<envelope.chunked.Decryptor>"

    def update(self, data: Buffer) -> bytes:
        """Feeds ciphertext; returns the plaintext now authenticated.

        Raises:
            DecryptionError: a chunk did not authenticate (now or earlier).
            ValueError: called after a successful :meth:`finalize`.
        """
        return self._opener.update(data)

    def finalize(self) -> bytes:
        """Ends the message; returns the last plaintext.

        Raises:
            DecryptionError: the final chunk or the message length did not authenticate.
            ValueError: called after a successful :meth:`finalize`.
        """
        return self._opener.finalize()
