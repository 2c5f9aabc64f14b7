"""An independent decoder for envelope v1, written from docs/format.md alone.

It imports nothing from envelope: only ``cryptography`` (HKDF, AES-GCM), ``hashlib``
and ``struct``. If it decrypts the known-answer vectors, the spec is complete.
"""

from __future__ import annotations

import hashlib
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

CHUNK, TAG = 16384, 16


class Parsed:
    def __init__(self, message: bytes) -> None:
        assert message[:4] == b"\x89ENV" and message[4] == 1
        (hlen,) = struct.unpack(">I", message[5:9])
        h = message[9 : 9 + hlen]
        self.body = message[9 + hlen :]
        pos = 0

        def take(n: int) -> bytes:
            nonlocal pos
            out = h[pos : pos + n]
            assert len(out) == n
            pos += n
            return out

        def u8() -> int:
            return take(1)[0]

        def u16() -> int:
            return int(struct.unpack(">H", take(2))[0])

        (self.suite,) = struct.unpack(">H", take(2))
        self.context: list[tuple[str, str]] = []
        for _ in range(u16()):
            k = take(u16()).decode()
            v = take(u16()).decode()
            self.context.append((k, v))
        self.split_id = take(u8()).decode() if u8() == 1 else None
        bound_end = pos
        self.bound = h[:bound_end]
        self.slots = []
        for _ in range(u8()):
            provider = take(u8()).decode()
            key_id = take(u16()).decode()
            wrapped = take(u16())
            self.slots.append((provider, key_id, wrapped))
        assert pos == len(h)

    def encoded_context(self) -> bytes:
        out = struct.pack(">H", len(self.context))
        for k, v in self.context:
            out += struct.pack(">H", len(k.encode())) + k.encode()
            out += struct.pack(">H", len(v.encode())) + v.encode()
        return out

    def body_context(self) -> bytes:
        return hashlib.sha256(b"envelope.dev/v1 header\x00" + b"\x89ENV\x01" + self.bound).digest()


def local_unwrap(
    keks: dict[int, bytes], keyring_id: str, blob: bytes, encoded_context: bytes
) -> bytes:
    assert blob[0] == 1
    (version,) = struct.unpack(">I", blob[1:5])
    aad = (
        b"envelope.dev/v1 local-kms wrap\x00"
        + keyring_id.encode()
        + b"\x00"
        + blob[1:5]
        + encoded_context
    )
    return AESGCM(keks[version]).decrypt(blob[5:17], blob[17:], aad)


def input_key(data_key: bytes, part: bytes | None) -> bytes:
    if part is None:
        ikm, info = data_key, b"envelope.dev/v1 input key: kms part"
    else:
        ikm, info = data_key + part, b"envelope.dev/v1 input key: kms part || cluster part"
    return HKDF(hashes.SHA512(), 32, salt=None, info=info).derive(ikm)


def cobblestone_decrypt(key: bytes, ct: bytes, context: bytes) -> bytes:
    salt, commitment, body = ct[:24], ct[24:56], ct[56:]
    info = b"c2sp.org/chunked-encryption@v1+AEAD_AES_256_GCM\x00" + salt + context
    okm = HKDFExpand(hashes.SHA512(), 32 + 12 + 32, info).derive(key)
    aead_key, base_nonce, expected = okm[:32], okm[32:44], okm[44:]
    assert commitment == expected
    aead = AESGCM(aead_key)
    out = b""
    index = 0
    while True:
        piece = body[: CHUNK + TAG]
        final = len(body) < CHUNK + TAG
        nonce = (int.from_bytes(base_nonce, "big") ^ index).to_bytes(12, "big")
        out += aead.decrypt(nonce, piece, None)
        body = body[len(piece) :]
        index += 1
        if final:
            assert not body
            return out


class ParsedBatchHeader:
    """A batch header, parsed from docs/format.md ("Record batches") alone."""

    def __init__(self, blob: bytes) -> None:
        assert blob[:4] == b"\x89ENB" and blob[4] == 1
        (hlen,) = struct.unpack(">I", blob[5:9])
        h = blob[9:]
        assert len(h) == hlen
        pos = 2  # suite
        suite = struct.unpack(">H", h[:2])[0]
        assert suite in (0x0101, 0x0102)  # 0x0102: bound to a group of sub-batches
        (n_ctx,) = struct.unpack(">H", h[pos : pos + 2])
        pos += 2
        self.context: list[tuple[str, str]] = []
        for _ in range(n_ctx):
            (kl,) = struct.unpack(">H", h[pos : pos + 2])
            k = h[pos + 2 : pos + 2 + kl].decode()
            pos += 2 + kl
            (vl,) = struct.unpack(">H", h[pos : pos + 2])
            v = h[pos + 2 : pos + 2 + vl].decode()
            pos += 2 + vl
            self.context.append((k, v))
        if h[pos] == 1:
            pos += 2 + h[pos + 1]
        else:
            pos += 1
        (self.count,) = struct.unpack(">Q", h[pos : pos + 8])
        assert self.count <= 1 << 32
        pos += 8
        self.group, self.part, self.parts = None, 0, 1
        if suite == 0x0102:
            self.group = h[pos : pos + 16]
            self.part, self.parts = struct.unpack(">II", h[pos + 16 : pos + 24])
            assert self.part < self.parts
            pos += 24
        self.bound = h[:pos]
        self.salt, self.commitment = h[pos : pos + 24], h[pos + 24 : pos + 56]
        pos += 56
        self.slots = []
        n_slots = h[pos]
        pos += 1
        for _ in range(n_slots):
            plen = h[pos]
            provider = h[pos + 1 : pos + 1 + plen].decode()
            pos += 1 + plen
            (klen,) = struct.unpack(">H", h[pos : pos + 2])
            key_id = h[pos + 2 : pos + 2 + klen].decode()
            pos += 2 + klen
            (wlen,) = struct.unpack(">H", h[pos : pos + 2])
            wrapped = h[pos + 2 : pos + 2 + wlen]
            pos += 2 + wlen
            self.slots.append((provider, key_id, wrapped))
        assert pos == len(h)

    def encoded_context(self) -> bytes:
        out = struct.pack(">H", len(self.context))
        for k, v in self.context:
            out += struct.pack(">H", len(k.encode())) + k.encode()
            out += struct.pack(">H", len(v.encode())) + v.encode()
        return out

    def digest(self) -> bytes:
        return hashlib.sha256(b"envelope.dev/v1 batch header\x00\x89ENB\x01" + self.bound).digest()


def batch_open_record(
    input_key_: bytes, header: ParsedBatchHeader, record: bytes, aad: bytes
) -> bytes:
    info = b"envelope.dev/v1 record batch+AEAD_AES_256_GCM\x00" + header.salt + header.digest()
    okm = HKDFExpand(hashes.SHA512(), 76, info).derive(input_key_)
    assert okm[44:] == header.commitment
    index = int.from_bytes(record[:4], "big")
    assert index < header.count
    nonce = (int.from_bytes(okm[32:44], "big") ^ index).to_bytes(12, "big")
    return AESGCM(okm[:32]).decrypt(nonce, record[4:], aad)
