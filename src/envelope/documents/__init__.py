"""Encrypted configuration files for GitOps: value-level YAML, JSON, dotenv and
Kubernetes ``Secret`` manifests.

Keys, comments and order stay readable; every value becomes a token holding its own
AES-256-GCM ciphertext, bound to its path, under the file's data key (from the
:class:`~envelope.Envelope`: any of its KMS backends, a k-of-n threshold, the cluster
secret split). One metadata block records the wrapped data key and a MAC over every
path, value and the metadata. See docs/documents.md and docs/format.md.

>>> from envelope import Envelope, LocalKms
>>> from envelope import documents
>>> env = Envelope(LocalKms.ephemeral())
>>> text = documents.encrypt("db:\\n  password: hunter2  # rotate yearly\\n", env)
>>> "hunter2" in text
False
>>> print(documents.decrypt(text, env), end="")
db:
  password: hunter2  # rotate yearly
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from envelope._atomic import write_atomic
from envelope._envelope import Envelope
from envelope.documents._core import (
    FORMATS,
    Opened,
    detect_format,
    handler,
    has_meta,
    open_parsed,
    parse,
    rules_for,
    seal,
)
from envelope.documents._format import MAX_DEPTH, MAX_DOCUMENT_BYTES, MAX_VALUE_BYTES
from envelope.documents._parsed import DocumentSyntaxError, Parsed
from envelope.documents._plain import from_plain, to_plain
from envelope.documents._rules import ClearRules
from envelope.errors import FileAccessError

__all__ = [
    "FORMATS",
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "MAX_VALUE_BYTES",
    "ClearRules",
    "DocumentSyntaxError",
    "decrypt",
    "detect_format",
    "dump",
    "encrypt",
    "is_encrypted",
    "load",
    "load_all",
    "open_document",
]


def _fmt(fmt: str | None, name: str, text: str | None) -> str:
    """The format given, else detected (by extension, then content), else YAML."""
    found = fmt or detect_format(name, text) or "yaml"
    handler(found)
    return found


def encrypt(
    source: str | bytes | Mapping[str, Any] | list[Any],
    envelope: Envelope,
    *,
    format: str | None = None,
    name: str = "<document>",
    context: Mapping[str, str] | None = None,
    clear: ClearRules | None = None,
) -> str:
    """Encrypts a document value by value, under a fresh data key from ``envelope``.

    Args:
        source: the document text, or a Python mapping (written as ``format``, YAML by
            default).
        envelope: its backends, threshold and cluster secret wrap the data key.
        format: ``yaml``, ``json``, ``dotenv`` or ``secret`` (default: from ``name``'s
            extension or the content; Secret manifests are detected inside YAML).
        name: the file name, for detection and error messages.
        context: the encryption context recorded and bound to the data key.
        clear: which values stay clear (still covered by the MAC).

    Returns:
        The encrypted document text.

    Raises:
        DocumentSyntaxError: the source is not valid (file, line, column).
        FormatError: too large, too deep, an unsupported value.
        ConfigError: it already has an ``envelope`` key. KmsError: as Envelope.encrypt.
    """
    if isinstance(source, Mapping | list):
        fmt = format or detect_format(name) or "yaml"
        parsed = Parsed(handler(fmt), [from_plain(source, fmt)])
    else:
        probe = source if isinstance(source, str) else source[:4096].decode("utf-8", "replace")
        fmt = _fmt(format, name, probe)
        parsed = parse(source, fmt, name)
    rules = rules_for(parsed, fmt, clear)
    header, key = envelope.new_document_key(context)
    try:
        seal(parsed, name, key, header, rules)
    finally:
        key[:] = bytes(len(key))
    return parsed.handler.dump(parsed)


def open_document(
    text: str | bytes,
    envelope: Envelope,
    *,
    format: str | None = None,
    name: str = "<document>",
    context: Mapping[str, str] | None = None,
) -> Opened:
    """Decrypts a document and keeps its data key for re-sealing edits (``with`` it:
    the key is wiped on exit). See :class:`~envelope.documents._core.Opened`.

    Raises:
        As :func:`decrypt`.
    """
    probe = text if isinstance(text, str) else text[:4096].decode("utf-8", "replace")
    fmt = _fmt(format, name, probe)
    return open_parsed(parse(text, fmt, name), name, envelope, context)


def decrypt(
    text: str | bytes,
    envelope: Envelope,
    *,
    format: str | None = None,
    output_format: str | None = None,
    name: str = "<document>",
    context: Mapping[str, str] | None = None,
) -> str:
    """Decrypts a document to its text (comments and layout as encrypted).

    Args:
        output_format: write as another format (``json``, ``yaml``, ``dotenv`` for a flat
            mapping); comments are then lost.

    Raises:
        FormatError: not an encrypted document (or too large/deep).
        DocumentSyntaxError: not valid YAML/JSON/dotenv (file, line, column).
        DecryptionError: tampered, swapped, added or removed values, edited metadata,
            a wrong key or context: names the file, never a value.
        KeyUnavailableError, KmsError: as :meth:`Envelope.decrypt`.
    """
    with open_document(text, envelope, format=format, name=name, context=context) as doc:
        return doc.text(output_format)


def is_encrypted(text: str | bytes, *, format: str | None = None, name: str = "<document>") -> bool:
    """Whether ``text`` is an encrypted document (it parses and has the metadata block).

    Raises:
        FormatError, DocumentSyntaxError: as :func:`decrypt`.
    """
    probe = text if isinstance(text, str) else text[:4096].decode("utf-8", "replace")
    return has_meta(parse(text, _fmt(format, name, probe), name))


def load_all(
    path: str | os.PathLike[str], envelope: Envelope, *, context: Mapping[str, str] | None = None
) -> list[Any]:
    """Every document of an encrypted file as plain Python values.

    Raises:
        FileAccessError: the file cannot be read. Others as :func:`decrypt`.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise FileAccessError(f"cannot read {p}: {exc.strerror}") from None
    with open_document(raw, envelope, name=str(p), context=context) as doc:
        return [to_plain(d) for d in doc.parsed.docs]


def load(
    path: str | os.PathLike[str], envelope: Envelope, *, context: Mapping[str, str] | None = None
) -> Any:
    """The (first) document of an encrypted file as plain Python values.

    Raises:
        As :func:`load_all`.
    """
    return load_all(path, envelope, context=context)[0]


def dump(
    obj: Mapping[str, Any],
    path: str | os.PathLike[str],
    envelope: Envelope,
    *,
    format: str | None = None,
    context: Mapping[str, str] | None = None,
    clear: ClearRules | None = None,
    mode: int = 0o600,
) -> None:
    """Encrypts ``obj`` into the file ``path`` (atomically, ``mode``), in the format its
    extension names (YAML by default).

    Raises:
        As :func:`encrypt`; OSError when the file cannot be written.
    """
    text = encrypt(obj, envelope, format=format, name=str(path), context=context, clear=clear)
    write_atomic(path, text.encode(), mode=mode)
