"""The Transit backend's batch operations: many data keys per ``batch_input`` request."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, Protocol

from envelope._format.context import Context
from envelope.errors import DecryptionError, KmsError
from envelope.kms._types import WrappedKey
from envelope.kms._vault_wire import MAX_BATCH

__all__ = ["TransitBatchMethods"]


class _Transit(Protocol):
    """What the batch methods use of :class:`~envelope.kms._vault.VaultTransit`."""

    _key: str

    @property
    def provider_id(self) -> str: ...

    @property
    def key_id(self) -> str: ...

    def _post(self, operation: str, path: str, payload: dict[str, Any]) -> dict[str, Any]: ...

    def _bind(self, context: Context, operation: str) -> dict[str, str]: ...

    def _check_slot(self, wrapped: WrappedKey) -> str: ...

    def rewrap(self, wrapped: WrappedKey, context: Context) -> WrappedKey: ...

    def _batch(
        self, operation: str, path: str, items: list[dict[str, Any]]
    ) -> list[dict[str, Any]]: ...


class TransitBatchMethods:
    """Mixed into VaultTransit."""

    __slots__ = ()

    def _batch(
        self: _Transit, operation: str, path: str, items: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Sends ``items`` as ``batch_input`` in requests of at most ``MAX_BATCH`` items
        (OpenBao refuses JSON bodies with too many strings)."""
        results: list[dict[str, Any]] = []
        for start in range(0, len(items), MAX_BATCH):
            chunk = items[start : start + MAX_BATCH]
            try:
                data = self._post(operation, path, {"batch_input": chunk})["data"]
            except (KmsError, DecryptionError) as exc:
                # Transit answers 400 with per-item results when some item fails.
                body = getattr(exc.__context__, "json", None)
                if not (isinstance(body, dict) and "batch_results" in (body.get("data") or {})):
                    raise
                data = body["data"]
            got = list(data["batch_results"])
            if len(got) != len(chunk):
                raise KmsError(f"Vault answered {len(got)} results for {len(chunk)} batch items")
            results += got
        return results

    def unwrap_many(
        self: _Transit, wrapped: Sequence[WrappedKey], context: Context
    ) -> list[bytearray | DecryptionError]:
        """Unwraps many data keys in one ``batch_input`` request (same context for all).

        Returns:
            Per item, the data key or the DecryptionError for that item.

        Raises:
            KeyUnavailableError: an item names another key.
            DecryptionError: an item's ciphertext is malformed (before any request).
            KmsError: as :meth:`unwrap`.
        """
        bind = self._bind(context, "decrypt")
        items = [{"ciphertext": self._check_slot(w), **bind} for w in wrapped]
        out: list[bytearray | DecryptionError] = []
        for r in self._batch("decrypt", f"decrypt/{self._key}", items):
            if r.get("error"):
                out.append(DecryptionError())
            else:
                out.append(bytearray(base64.b64decode(r["plaintext"])))
        return out

    def rewrap_many(
        self: _Transit, wrapped: Sequence[WrappedKey], context: Context
    ) -> list[WrappedKey | DecryptionError]:
        """Rewraps many data keys in one request (derived keys; others one by one).

        Raises:
            KeyUnavailableError: as :meth:`unwrap_many`.
            DecryptionError: as :meth:`unwrap_many`.
            KmsError: as :meth:`unwrap_many`.
        """
        bind = self._bind(context, "rewrap")
        if "context" not in bind:
            results: list[WrappedKey | DecryptionError] = []
            for w in wrapped:
                try:
                    results.append(self.rewrap(w, context))
                except DecryptionError as exc:
                    results.append(exc)
            return results
        items = [{"ciphertext": self._check_slot(w), **bind} for w in wrapped]
        out: list[WrappedKey | DecryptionError] = []
        for r in self._batch("rewrap", f"rewrap/{self._key}", items):
            if r.get("error"):
                out.append(DecryptionError())
            else:
                out.append(WrappedKey(self.provider_id, self.key_id, r["ciphertext"].encode()))
        return out
