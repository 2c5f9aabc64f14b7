"""Vault transport helpers: error text, network errors, and a per-request time bound."""

from __future__ import annotations

import re
import time
from typing import Any

from envelope import _sdk
from envelope.errors import KmsError

__all__ = [
    "UPDATE_PATH",
    "bound_request",
    "denied_error",
    "first_error",
    "is_network",
    "tls_error",
]

_SSL_REASON = re.compile(r"\[SSL: [A-Z0-9_]+\] (.+?) \(_ssl")

#: Where each Transit operation needs the 'update' capability (under the mount, before the
#: key name); every operation also reads ``keys/<key>`` once, for its ``derived`` flag.
UPDATE_PATH = {
    "datakey": "datakey/plaintext",
    "encrypt": "encrypt",
    "decrypt": "decrypt",
    "rewrap": "rewrap",
}

#: The shortest per-request timeout once a deadline is near or past (one quick try).
MIN_REQUEST_TIMEOUT = 0.05


def first_error(exc: Any) -> str:
    """The server's error messages, or the exception's text."""
    errors = getattr(exc, "errors", None)
    if errors:
        return "; ".join(str(e) for e in errors)
    return str(exc)


def is_network(exc: Exception) -> bool:
    """True for a connection failure or timeout of hvac's transport (requests)."""
    try:
        import requests  # noqa: PLC0415 - hvac's transport
    except ImportError:
        return False
    return isinstance(exc, (requests.ConnectionError, requests.Timeout))


def tls_error(exc: Exception, url: str, doing: str) -> KmsError | None:
    """The error for a failed TLS handshake (a certificate problem is not transient: no
    retry), naming the settings to check; None when ``exc`` is not one."""
    try:
        import requests  # noqa: PLC0415 - hvac's transport
    except ImportError:
        return None
    if not isinstance(exc, requests.exceptions.SSLError):
        return None
    found = _SSL_REASON.search(str(exc))
    reason = found.group(1).strip() if found else "TLS handshake failed"
    return KmsError(
        f"cannot reach Vault at {url} {doing}: TLS failed ({reason}); check the CA "
        "(--vault-ca-bundle, --vault-ca-path, $BAO_CACERT, $BAO_CAPATH), the client "
        "certificate (--vault-client-cert, --vault-client-key, $BAO_CLIENT_CERT, "
        "$BAO_CLIENT_KEY) and the server name (--vault-tls-server-name, $BAO_TLS_SERVER_NAME)"
    )


def bound_request(client: Any, base: float | None, give_up_at: float | None) -> None:
    """Caps the per-request timeout of ``client`` (an ``hvac.Client``) at what is left
    until ``give_up_at`` (monotonic seconds; None: ``base``, the client's own timeout)."""
    kwargs = getattr(getattr(client, "adapter", None), "_kwargs", None)
    if give_up_at is None or not isinstance(kwargs, dict):
        return
    left = max(MIN_REQUEST_TIMEOUT, give_up_at - time.monotonic())
    kwargs["timeout"] = min(base, left) if base else left


def token_policies(client: Any) -> list[str] | None:
    """The policies of ``client``'s token (``auth/token/lookup-self``); None when the
    server refuses the token itself, [] when that cannot be told."""
    hvac = _sdk.hvac()
    try:
        resp = client.adapter.get("/v1/auth/token/lookup-self")
    except hvac.exceptions.Forbidden:
        return None
    except Exception:  # only a hint for the message: any failure is "unknown"
        return []
    data = dict(resp).get("data") or {}
    return [str(p) for p in data.get("policies") or ()]


def denied_error(
    client: Any,
    *,
    where: str,
    mount: str,
    key: str,
    operation: str | None,
    refused: str,
    reason: str,
    fix_token: str,
) -> KmsError:
    """The error for a 403 on ``refused`` (``"<capability> <path>"``) during ``operation``
    (None: reading the key): whether the server refused the token itself (asked of it),
    and every capability the operation needs, per path."""
    needs = [f"'read' on {mount}/keys/{key}"]
    if operation in UPDATE_PATH:
        needs.append(f"'update' on {mount}/{UPDATE_PATH[operation]}/{key}")
    doing = f"{operation} on" if operation else "reading"
    head = (
        f"{where} denied {doing} transit key {mount}/{key} ({reason}; refused request: {refused})"
    )
    policies = token_policies(client)
    if policies is None:
        return KmsError(
            f"{head}: the server refused the token itself (expired, revoked, or from another "
            f"server or namespace): {fix_token}; its policy must allow {' and '.join(needs)}"
        )
    return KmsError(
        f"{head}: the token's policies ({', '.join(policies) or 'unknown'}) must allow "
        f"{' and '.join(needs)}"
    )
