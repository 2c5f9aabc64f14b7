"""Vault transport helpers: error text, network errors, and a per-request time bound."""

from __future__ import annotations

import time
from typing import Any

__all__ = ["bound_request", "first_error", "is_network"]

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


def bound_request(client: Any, base: float | None, give_up_at: float | None) -> None:
    """Caps the per-request timeout of ``client`` (an ``hvac.Client``) at what is left
    until ``give_up_at`` (monotonic seconds; None: ``base``, the client's own timeout)."""
    kwargs = getattr(getattr(client, "adapter", None), "_kwargs", None)
    if give_up_at is None or not isinstance(kwargs, dict):
        return
    left = max(MIN_REQUEST_TIMEOUT, give_up_at - time.monotonic())
    kwargs["timeout"] = min(base, left) if base else left
