"""How a decrypted secret becomes a file or environment variables: ``raw`` bytes, a
``dotenv`` file, or (selected keys of) a ``json`` document. Errors never quote values."""

from __future__ import annotations

import json
import re
from typing import Any

from envelope.errors import ConfigError

__all__ = ["entries", "parse_dotenv", "render"]

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def _unquote(raw: str, name: str, line_no: int) -> str:
    if raw.startswith('"'):
        if len(raw) < 2 or not raw.endswith('"'):
            raise ConfigError(f"secret {name}: unterminated quote on dotenv line {line_no}")
        body = raw[1:-1]
        return re.sub(
            r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)), body
        )
    if raw.startswith("'"):
        if len(raw) < 2 or not raw.endswith("'"):
            raise ConfigError(f"secret {name}: unterminated quote on dotenv line {line_no}")
        return raw[1:-1]
    return re.split(r"\s+#", raw, maxsplit=1)[0]


def parse_dotenv(text: str, name: str) -> dict[str, str]:
    """Parses ``KEY=value`` lines (``export``, quotes and comments allowed).

    Raises:
        ConfigError: a line is not ``KEY=value`` (names the line, not its content).
    """
    out: dict[str, str] = {}
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            raise ConfigError(f"secret {name}: dotenv line {no} is not KEY=value")
        out[m.group(1)] = _unquote(m.group(2), name, no)
    return out


def _mapping(plaintext: bytes, name: str, form: str) -> dict[str, Any]:
    try:
        text = plaintext.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"secret {name}: form {form!r} needs UTF-8 text; use form: raw") from None
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: nested too deeply
            raise ConfigError(f"secret {name}: not a valid JSON document") from None
        if not isinstance(doc, dict):
            raise ConfigError(f"secret {name}: the JSON document must be an object")
        return doc
    if form == "json":
        raise ConfigError(
            f"secret {name}: form 'json' needs a JSON object; use form: raw or dotenv"
        )
    return dict(parse_dotenv(text, name))


def entries(plaintext: bytes, name: str, form: str, keys: list[str] | None) -> dict[str, Any]:
    """The key/value entries of a dotenv or json secret, restricted to ``keys``.

    Raises:
        ConfigError: not parseable in that form, or a selected key is missing.
    """
    doc = _mapping(plaintext, name, form)
    if keys is None:
        return doc
    missing = [k for k in keys if k not in doc]
    if missing:
        raise ConfigError(
            f"secret {name}: key(s) {', '.join(missing)} not found in the decrypted document"
        )
    return {k: doc[k] for k in keys}


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)) or value is None:
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def render(plaintext: bytes, name: str, form: str, keys: list[str] | None) -> bytes:
    """The file content for a secret in ``form``.

    Raises:
        ConfigError: as :func:`entries`, or a dotenv key that is not a valid name.
    """
    if form == "raw":
        return plaintext
    doc = entries(plaintext, name, form, keys)
    if form == "json":
        return (json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n").encode()
    lines = []
    for key, value in doc.items():
        if not _KEY.match(key):
            raise ConfigError(f"secret {name}: {key!r} is not a valid dotenv name")
        escaped = _scalar(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        lines.append(f'{key}="{escaped}"\n')
    return "".join(lines).encode()
