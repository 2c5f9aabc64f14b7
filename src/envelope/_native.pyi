"""Type stubs of the Rust extension (rust/python). Hazmat: use envelope.chunked instead."""

from typing_extensions import Buffer

CHUNK_LEN: int
SEALED_CHUNK_LEN: int
PREFIX_LEN: int
SALT_LEN: int
TAG_LEN: int

def aes256gcm_seal(key: bytes, nonce: bytes, aad: bytes, plaintext: bytes) -> bytes: ...
def aes256gcm_open(key: bytes, nonce: bytes, aad: bytes, sealed: bytes) -> bytes: ...
def cobblestone_sealed_len(plaintext_len: int) -> int: ...
def cobblestone_opened_len(sealed_len: int) -> int: ...
def cobblestone_seal(
    input_key: bytes,
    salt: bytes,
    context: bytes,
    message: Buffer,
    threads: int = 0,
    out: Buffer | None = None,
    prefix: bytes = b"",
) -> bytes | None: ...
def cobblestone_open(
    input_key: bytes,
    ciphertext: Buffer,
    context: bytes,
    threads: int = 0,
    out: Buffer | None = None,
) -> bytes | None: ...

class StreamSealer:
    def __init__(self, input_key: bytes, salt: bytes, context: bytes) -> None: ...
    def update(self, data: Buffer) -> bytes: ...
    def finalize(self) -> bytes: ...

class StreamOpener:
    def __init__(self, input_key: bytes, context: bytes) -> None: ...
    def update(self, data: Buffer) -> bytes: ...
    def finalize(self) -> bytes: ...
