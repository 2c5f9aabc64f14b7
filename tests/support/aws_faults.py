"""Faults the moto server cannot produce, injected into one boto3 client's requests.

moto does not refuse a disabled key, and never throttles; a botocore ``before-send``
hook answers chosen requests with the error a real KMS would send, before they leave.
Everything else still goes over HTTP to the moto server.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.awsrequest import AWSResponse


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def kms_error(code: str, message: str, status: int = 400) -> AWSResponse:
    body = json.dumps({"__type": code, "message": message}).encode()
    return AWSResponse(
        "https://kms.invalid/", status, {"Content-Type": "application/x-amz-json-1.1"}, _Raw(body)
    )


def inject(client: Any, should_fail: Callable[[str], AWSResponse | None]) -> list[str]:
    """Answers requests for which ``should_fail(operation)`` returns a response.
    Returns the list of operations attempted (including retries)."""
    seen: list[str] = []

    def hook(request: Any, **_: Any) -> AWSResponse | None:
        target = request.headers.get("X-Amz-Target", b"")
        op = (target.decode() if isinstance(target, bytes) else target).rsplit(".", 1)[-1]
        seen.append(op)
        return should_fail(op)

    client.meta.events.register("before-send.kms", hook)
    return seen
