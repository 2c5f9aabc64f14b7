"""Type stubs of the Rust extension (rust/python). Hazmat: use envelope.chunked instead."""

from typing import Final, Self, final

from typing_extensions import Buffer

__all__ = [
    "CHUNK_LEN",
    "MAX_BATCH_RECORDS",
    "PREFIX_LEN",
    "RECORD_OVERHEAD",
    "SALT_LEN",
    "SEALED_CHUNK_LEN",
    "TAG_LEN",
    "BatchCipher",
    "FreshKeyMessages",
    "KeyWrap",
    "MessageOpener",
    "MessageSealer",
    "StreamOpener",
    "StreamSealer",
    "__version__",
    "aes256gcm_open",
    "aes256gcm_seal",
    "cobblestone_open",
    "cobblestone_opened_len",
    "cobblestone_seal",
    "cobblestone_sealed_len",
    "fresh_key_counts",
    "hkdf_sha512_into",
]

__version__: Final[str]
CHUNK_LEN: int
SEALED_CHUNK_LEN: int
PREFIX_LEN: int
SALT_LEN: int
TAG_LEN: int

def aes256gcm_seal(key: bytes, nonce: bytes, aad: bytes, plaintext: bytes) -> bytes: ...
def aes256gcm_open(key: bytes, nonce: bytes, aad: bytes, sealed: bytes) -> bytes: ...
def hkdf_sha512_into(ikm: Buffer, info: bytes, out: Buffer) -> None: ...
def cobblestone_sealed_len(plaintext_len: int) -> int: ...
def cobblestone_opened_len(sealed_len: int) -> int: ...
def cobblestone_seal(
    input_key: bytes,
    salt: bytes | None,
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
def fresh_key_counts() -> tuple[int, int]: ...

@final
class KeyWrap:
    def __new__(cls, kek: Buffer, head: bytes) -> Self: ...
    @property
    def wrapped_len(self) -> int: ...
    def wrap(self, data_key: Buffer, aad: bytes) -> bytes: ...
    def unwrap_into(self, wrapped: bytes, aad: bytes, out: Buffer) -> None: ...

@final
class FreshKeyMessages:
    def __new__(
        cls,
        wrap: KeyWrap,
        wrap_aad: bytes,
        head: bytes,
        tail: bytes,
        context: bytes,
        label: bytes,
        cluster_part: Buffer | None = None,
    ) -> Self: ...
    @property
    def header_len(self) -> int: ...
    def seal(self, message: Buffer, threads: int = 0) -> bytes: ...
    def open(self, message: Buffer, threads: int = 0) -> bytes | None: ...

@final
class MessageSealer:
    def __new__(cls, input_key: bytes, context: bytes, prefix: bytes) -> Self: ...
    def seal(self, message: Buffer, salt: bytes | None = None, threads: int = 0) -> bytes: ...

@final
class MessageOpener:
    def __new__(cls, input_key: bytes, context: bytes) -> Self: ...
    def open(self, message: Buffer, offset: int, threads: int = 0) -> bytes: ...

@final
class StreamSealer:
    def __new__(cls, input_key: bytes, salt: bytes, context: bytes) -> Self: ...
    def update(self, data: Buffer) -> bytes: ...
    def seal_chunks(self, data: Buffer, out: Buffer, threads: int = 0) -> None: ...
    def finalize(self) -> bytes: ...

@final
class StreamOpener:
    def __new__(cls, input_key: bytes, context: bytes) -> Self: ...
    def update(self, data: Buffer) -> bytes: ...
    def open_chunks(self, data: Buffer, out: Buffer, threads: int = 0) -> None: ...
    def finalize(self) -> bytes: ...

RECORD_OVERHEAD: int
MAX_BATCH_RECORDS: int

@final
class BatchCipher:
    @staticmethod
    def derive(input_key: bytes, salt: bytes, context: bytes) -> tuple[BatchCipher, bytes]: ...
    @staticmethod
    def verify(input_key: bytes, salt: bytes, commitment: bytes, context: bytes) -> BatchCipher: ...
    def seal(
        self,
        records: list[Buffer] | Buffer,
        offsets: Buffer | None = None,
        aad: list[Buffer] | Buffer | None = None,
        aad_offsets: Buffer | None = None,
        threads: int = 0,
    ) -> list[bytes] | tuple[bytes, bytes]: ...
    def open(
        self,
        records: list[Buffer] | Buffer,
        offsets: Buffer | None = None,
        aad: list[Buffer] | Buffer | None = None,
        aad_offsets: Buffer | None = None,
        threads: int = 0,
    ) -> tuple[list[bytes] | tuple[bytes, bytes], bytes, int]: ...
    def open_record(self, record: bytes, aad: bytes = b"") -> tuple[int, bytes]: ...
