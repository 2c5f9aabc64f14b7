"""How the ``bao`` CLI reads its environment, for the Vault / OpenBao client settings.

The one place that knows the rules (``envelope.settings`` builds its environment layer
with them, :class:`~envelope.kms.TokenAuth` finds a token with them):

- **BAO_* over VAULT_***: for each setting the ``BAO_`` variable is read first; when it is
  *set*, even to the empty string, the ``VAULT_`` one is not consulted (OpenBao 2.x's
  ``api.ReadBaoVariable``); an empty value then means "not set".
- **Booleans** (``*_SKIP_VERIFY``) as Go's ``strconv.ParseBool``: ``1 t T TRUE true True``
  and ``0 f F FALSE false False``; anything else is an error naming the variable.
- **Durations** (``*_CLIENT_TIMEOUT``) as ``parseutil.ParseDurationSecond``: a whole number
  of seconds (``30``) or a Go duration (``1m30s``, ``500ms``, ``2h``; ``d`` for days).
- **The token**: ``BAO_TOKEN`` / ``VAULT_TOKEN``, else the token helper's file: the path in
  ``BAO_TOKEN_PATH`` / ``VAULT_TOKEN_PATH``, else ``~/.vault-token`` (what ``bao login``
  writes; OpenBao kept Vault's file name). A token path that names a missing file gives no
  token (the CLI does not fall back to ``~/.vault-token`` then).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "FALSE_WORDS",
    "TRUE_WORDS",
    "bao_names",
    "bao_variable",
    "parse_bool",
    "parse_duration",
    "token_from_environment",
]

TRUE_WORDS = frozenset(("1", "t", "T", "TRUE", "true", "True"))
FALSE_WORDS = frozenset(("0", "f", "F", "FALSE", "false", "False"))
_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1.0}
_UNITS |= {"m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")


def bao_names(setting: str) -> tuple[str, str]:
    """``("BAO_<setting>", "VAULT_<setting>")``, in the order they are read."""
    return f"BAO_{setting}", f"VAULT_{setting}"


def bao_variable(environ: Mapping[str, str], setting: str) -> tuple[str, str] | None:
    """The variable that gives ``setting`` (``ADDR``, ``CACERT``, ...) and its value, as bao
    reads it: ``BAO_<setting>`` when set (even empty), else ``VAULT_<setting>``; None when
    the one that counts is unset or empty."""
    bao, vault = bao_names(setting)
    name = bao if bao in environ else vault
    value = environ.get(name, "")
    return (name, value) if value else None


def parse_bool(value: str) -> bool:
    """``value`` as Go's ``strconv.ParseBool`` (and so bao) reads it.

    Raises:
        ValueError: not one of the words Go accepts.
    """
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise ValueError(
        f"{value!r} is not a boolean: use true or false (bao also accepts 1/0, t/f, "
        "TRUE/FALSE, True/False)"
    )


def parse_duration(value: str) -> float:
    """``value`` in seconds: a whole number of seconds or a Go duration such as ``1m30s``
    (``d`` = 24 h), as bao reads ``BAO_CLIENT_TIMEOUT``.

    Raises:
        ValueError: neither.
    """
    text = value.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return float(int(text))
    if re.fullmatch(r"\d+d", text):
        return float(int(text[:-1]) * 86400)
    sign, body = (-1.0, text[1:]) if text.startswith("-") else (1.0, text.removeprefix("+"))
    parts = _PART.findall(body)
    if not body or "".join(n + u for n, u in parts) != body:
        raise ValueError(
            f"{value!r} is not a duration: give seconds (30) or a duration such as 1m30s or 500ms"
        )
    return sign * sum(float(n) * _UNITS[u] for n, u in parts)


def token_from_environment(environ: Mapping[str, str], home: Path) -> str | None:
    """The token the ``bao`` CLI would use, without asking the server: ``BAO_TOKEN`` /
    ``VAULT_TOKEN``, else the token file (``BAO_TOKEN_PATH`` / ``VAULT_TOKEN_PATH``, else
    ``home/.vault-token``), stripped of surrounding whitespace; None when there is none.

    Raises:
        OSError: the token file exists but cannot be read.
    """
    given = bao_variable(environ, "TOKEN")
    if given is not None:
        return given[1]
    path_given = bao_variable(environ, "TOKEN_PATH")
    path = Path(path_given[1]) if path_given else home / ".vault-token"
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        return None
    return token or None
