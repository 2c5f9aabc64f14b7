"""The value-level format: paths, typed plaintexts, per-value keys and value tokens.

Byte-level specification: docs/format.md, section "Structured documents". Every
encrypted leaf becomes the token ``ENV[v1,<base64url(salt || ciphertext || tag)>]``:
a fresh 32-byte salt, AES-256-GCM under ``HKDF-SHA256(ikm=file key, salt, info)`` with
an all-zero nonce (each derived key seals exactly one plaintext), and the value's
encoded path as AAD.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import re
import struct
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from envelope.errors import DecryptionError

__all__ = [
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "MAX_VALUE_BYTES",
    "Path",
    "PathPart",
    "decode_plain",
    "derive_mac_key",
    "encode_path",
    "encode_plain",
    "format_path",
    "is_token",
    "open_value",
    "parse_path",
    "seal_value",
]

#: Files larger than this are refused before parsing (bytes).
MAX_DOCUMENT_BYTES = 8 * 1024 * 1024
#: Documents nested deeper than this (mappings and sequences) are refused.
MAX_DEPTH = 64
#: One leaf's plaintext at most (bytes).
MAX_VALUE_BYTES = 1024 * 1024

SALT_BYTES = 32
TAG_BYTES = 16
ZERO_NONCE = bytes(12)
INFO_VALUE_KEY = b"envelope.dev/doc v1 value key"
INFO_MAC_KEY = b"envelope.dev/doc v1 mac key"
TOKEN_PREFIX = "ENV[v1,"  # noqa: S105 - a format tag
_TOKEN = re.compile(r"ENV\[v1,([A-Za-z0-9_-]+)\]")

#: One step of a path: a document number ("doc", n), a mapping key ("key", k) or a
#: sequence index ("index", i). Mapping keys that are not strings keep their type.
PathPart = tuple[str, Any]
Path = tuple[PathPart, ...]

# Type codes of a typed plaintext (first byte), see docs/format.md.
T_PLAIN, T_SINGLE, T_DOUBLE, T_LITERAL, T_FOLDED = b"s", b"q", b"d", b"l", b"f"
T_INT, T_FLOAT, T_BOOL, T_NULL = b"i", b"r", b"b", b"n"
STRING_CODES = (T_PLAIN, T_SINGLE, T_DOUBLE, T_LITERAL, T_FOLDED)


def _u32(n: int) -> bytes:
    return struct.pack(">I", n)


def _key_text(key: Any) -> tuple[bytes, bytes]:
    """(tag, bytes) of a mapping key: strings as UTF-8; other scalars by a typed form."""
    if isinstance(key, str):
        return b"k", key.encode("utf-8", "surrogatepass")
    code, text = _typed(key)
    return b"K", code + text


def encode_path(path: Path) -> bytes:
    """The canonical bytes of a path (the value's AAD and its MAC entry)."""
    out = [struct.pack(">H", len(path))]
    for kind, item in path:
        if kind == "doc":
            out.append(b"D" + _u32(item))
        elif kind == "index":
            out.append(b"I" + _u32(item))
        else:
            tag, raw = _key_text(item)
            out.append(tag + _u32(len(raw)) + raw)
    return b"".join(out)


def format_path(path: Path) -> str:
    """A path as users write it (``.db.password``, ``.hosts[0]``, ``["a.b"]``); the
    document number is shown only when it is not the first."""
    out = []
    for kind, item in path:
        if kind == "doc":
            if item:
                out.append(f"(document {item})")
        elif kind == "index":
            out.append(f"[{item}]")
        elif isinstance(item, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", item):
            out.append(f".{item}")
        else:
            out.append("[" + _quote(str(item)) + "]")
    return "".join(out) or "."


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


_STEP = re.compile(r'\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]')


def parse_path(text: str) -> list[PathPart]:
    """Parses ``.a.b[0]["c.d"]`` into path steps (without the document number).

    Raises:
        ValueError: not a path.
    """
    steps: list[PathPart] = []
    pos = 0
    if text in (".", ""):
        return steps
    while pos < len(text):
        m = _STEP.match(text, pos)
        if m is None:
            raise ValueError(f'not a path: {text!r} (write .key.sub, .list[0] or ["a.b"])')
        if m.group(1) is not None:
            steps.append(("key", m.group(1)))
        elif m.group(2) is not None:
            steps.append(("index", int(m.group(2))))
        else:
            steps.append(("key", re.sub(r"\\(.)", r"\1", m.group(3))))
        pos = m.end()
    return steps


def _typed(value: Any) -> tuple[bytes, bytes]:
    if value is None:
        return T_NULL, b""
    if isinstance(value, bool):
        return T_BOOL, b"true" if value else b"false"
    if isinstance(value, int):
        return T_INT, str(int(value)).encode()
    if isinstance(value, float):
        f = float(value)
        if math.isnan(f):
            return T_FLOAT, b"nan"
        if math.isinf(f):
            return T_FLOAT, b"inf" if f > 0 else b"-inf"
        return T_FLOAT, repr(f).encode()
    if isinstance(value, str):
        return _string_code(value), value.encode("utf-8", "surrogatepass")
    raise TypeError(f"unsupported value type {type(value).__name__}")


def _string_code(value: str) -> bytes:
    """The scalar style of a string: round-trip YAML strings (and dotenv's) carry a
    ``style`` attribute (quote character, ``|`` or ``>``); a plain ``str`` is plain."""
    style = getattr(value, "style", None)
    return {"'": T_SINGLE, '"': T_DOUBLE, "|": T_LITERAL, ">": T_FOLDED}.get(style or "", T_PLAIN)


def encode_plain(value: Any) -> bytes:
    """A leaf as a typed plaintext: one type code then its text (docs/format.md).

    Raises:
        TypeError: a value of a type no format here writes (dates, binary, tags).
    """
    code, text = _typed(value)
    return code + text


def decode_plain(raw: bytes) -> tuple[bytes, Any]:
    """``(type code, Python value)`` of a typed plaintext; string styles are returned as
    the code with a plain ``str``, for the format to restore.

    Raises:
        DecryptionError: not a typed plaintext.
    """
    code, text = raw[:1], raw[1:]
    try:
        s = text.decode("utf-8")
        if code in STRING_CODES:
            return code, s
        if code == T_NULL and not s:
            return code, None
        if code == T_BOOL and s in ("true", "false"):
            return code, s == "true"
        if code == T_INT and re.fullmatch(r"-?\d+", s):
            return code, int(s)
        if code == T_FLOAT and re.fullmatch(r"-?(inf|nan|\d+(\.\d+)?(e[-+]?\d+)?)", s):
            return code, float(s)
    except UnicodeDecodeError:
        pass
    raise DecryptionError()


def _value_key(file_key: bytes | bytearray, salt: bytes) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=INFO_VALUE_KEY)
    return AESGCM(hkdf.derive(bytes(file_key)))


def derive_mac_key(file_key: bytes | bytearray) -> bytes:
    """The document MAC key (HKDF-SHA256 of the file key, no salt)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=INFO_MAC_KEY).derive(
        bytes(file_key)
    )


def seal_value(file_key: bytes | bytearray, path_bytes: bytes, plain: bytes) -> str:
    """Encrypts one typed plaintext into a value token, bound to its path."""
    salt = os.urandom(SALT_BYTES)
    sealed = _value_key(file_key, salt).encrypt(ZERO_NONCE, plain, path_bytes)
    return TOKEN_PREFIX + base64.urlsafe_b64encode(salt + sealed).rstrip(b"=").decode() + "]"


def is_token(value: Any) -> bool:
    """Whether ``value`` is a value token (by its shape; the MAC decides the rest)."""
    return isinstance(value, str) and _TOKEN.fullmatch(value) is not None


def open_value(file_key: bytes | bytearray, path_bytes: bytes, token: str) -> bytes:
    """The typed plaintext in ``token``.

    Raises:
        DecryptionError: not a token, or it does not authenticate at this path.
    """
    m = _TOKEN.fullmatch(token)
    if m is None:
        raise DecryptionError()
    body = m.group(1)
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise DecryptionError() from None
    if len(raw) < SALT_BYTES + TAG_BYTES + 1:
        raise DecryptionError()
    try:
        return _value_key(file_key, raw[:SALT_BYTES]).decrypt(
            ZERO_NONCE, raw[SALT_BYTES:], path_bytes
        )
    except InvalidTag:
        raise DecryptionError() from None


def depth_of_brackets(text: str, limit: int, opening: Sequence[str] = "[{") -> bool:
    """Whether the bracket nesting of JSON-like ``text`` (outside strings) stays within
    ``limit``: a linear scan run before any parser sees the text."""
    depth = 0
    in_string = escaped = False
    closing = {"[": "]", "{": "}"}
    ends = {closing[c] for c in opening}
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in opening:
            depth += 1
            if depth > limit:
                return False
        elif ch in ends:
            depth -= 1
    return True
