"""Encrypted documents (``envelope.documents``) as ``envelope init`` / ``exec`` sources.

A source that is an envelope v1 message decrypts as before. One that is an encrypted
YAML, JSON or dotenv document decrypts to: its text (``form: raw``), the raw value at
``key: .path`` (one key per output file), or, for ``form: dotenv`` / ``json`` (and
``exec``), its first document as a JSON object whose top-level keys are the entries.
"""

from __future__ import annotations

import json
from typing import Any

from envelope._envelope import Envelope
from envelope._format.message import PREAMBLE_LEN
from envelope.documents._format import parse_path
from envelope.documents._plain import to_plain
from envelope.errors import ConfigError

__all__ = ["decrypt_source"]

MAGIC = b"\x89ENV"


def decrypt_source(env: Envelope, blob: bytes, secret: Any) -> bytes:
    """The plaintext of one configured secret's source.

    Raises:
        DecryptionError, KeyUnavailableError, KmsError: as Envelope.decrypt and
            envelope.documents.decrypt. ConfigError: ``key`` names no value.
    """
    path = getattr(secret, "key", None)
    if blob[:4] == MAGIC and len(blob) >= PREAMBLE_LEN:
        if path is not None:
            raise ConfigError(f"secret {secret.name}: 'key' selects a value of a document source")
        return env.decrypt(blob, secret.context)
    from envelope import documents  # noqa: PLC0415 - only for document sources

    with documents.open_document(
        blob, env, name=f"secret {secret.name}", context=secret.context
    ) as doc:
        if path is not None:
            value = to_plain(doc.parsed.docs[0])
            for _, item in parse_path(path):
                try:
                    value = value[item]
                except (KeyError, IndexError, TypeError):
                    raise ConfigError(f"secret {secret.name}: no value at {path}") from None
            if isinstance(value, dict | list):
                return json.dumps(value, sort_keys=True).encode()
            return (value if isinstance(value, str) else json.dumps(value)).encode()
        if secret.form == "raw":
            return doc.text().encode()
        return json.dumps(to_plain(doc.parsed.docs[0])).encode()
