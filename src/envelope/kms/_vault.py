"""HashiCorp Vault / OpenBao Transit backend: a service's KEK is a transit key.

hvac is imported here and nowhere else; install it with ``pip install 'envelope-kms[vault]'``.

- ``generate_data_key`` = ``transit/datakey/plaintext/<key>`` (256 bits), ``unwrap`` =
  ``transit/decrypt/<key>``, ``wrap`` = ``transit/encrypt/<key>``, ``rewrap`` =
  ``transit/rewrap/<key>``; ``unwrap_many``/``rewrap_many`` use ``batch_input``.
- **What is sent to Transit besides the ciphertext** (the context is always bound in the
  envelope header as well): the canonical encoding of the encryption context (format.md),
  base64, as ``context`` when the transit key is *derived* (key derivation binds it), and
  as ``associated_data`` (AES-GCM AAD) otherwise. The backend reads the key's ``derived``
  flag once, because Transit silently ignores ``context`` on a non-derived key.
- Rewrap of a derived key happens inside Vault (the data key never leaves it). Transit's
  rewrap does not accept ``associated_data``, so for a non-derived key ``rewrap`` is
  decrypt-then-encrypt through this process; create keys with ``derived=true`` to keep
  rewraps server-side.
- Key versions: Vault enforces ``min_decryption_version``; a ciphertext below it raises
  :class:`KeyUnavailableError` naming the version.
- Auth: see :mod:`envelope.kms._vault_auth` (token, AppRole, JWT, Kubernetes). An explicit
  ``client`` keeps its own token unless ``auth=`` is given (ambient ``$VAULT_TOKEN`` or
  ``~/.vault-token`` never replace it). Tokens are renewed by logging in again once
  ``RENEW_FRACTION`` (2/3) of their TTL has passed, and once more on a 403.
"""

from __future__ import annotations

import base64
import os
import random
import time
from typing import Any

from envelope import _sdk
from envelope._format.context import Context
from envelope.errors import ConfigError, DecryptionError, KeyUnavailableError, KmsError
from envelope.kms._types import DATA_KEY_BYTES, DataKey, WrappedKey
from envelope.kms._vault_auth import RENEW_FRACTION, LoginResult, TokenAuth, VaultAuth
from envelope.kms._vault_batch import TransitBatchMethods
from envelope.kms._vault_env import bao_variable
from envelope.kms._vault_http import (
    bound_request,
    denied_error,
    first_error,
    is_network,
    tls_error,
)
from envelope.kms._vault_tls import VaultTls, hvac_client
from envelope.kms._vault_wire import (
    b64,
    ciphertext_version,
    split_key_id,
    transit_binding,
)

__all__ = [
    "RENEW_FRACTION",
    "VaultTransit",
    "ciphertext_version",
    "split_key_id",
    "transit_binding",
]


class VaultTransit(TransitBatchMethods):
    """A Transit key as this service's KEK.

    Args:
        key_name: the transit key.
        mount: where the transit engine is mounted.
        client: an ``hvac.Client`` to use (its URL, TLS, namespace and token apply: without
            ``auth`` its token is used as given, never one from the environment).
        url: the server (default ``$BAO_ADDR``, else ``$VAULT_ADDR``, as bao reads them).
        auth: how to log in (default: ``client``'s token if it has one, else
            :class:`TokenAuth` from the environment).
        namespace: a Vault Enterprise / OpenBao namespace (sent as ``X-Vault-Namespace``).
        ca_bundle: CA certificates to verify the server with (PEM file); wins over
            ``ca_path``.
        ca_path: a directory of PEM CA files (every file is read, as bao does).
        client_cert: ``(certificate, private key)`` PEM files for mTLS.
        skip_verify: do not check the server's certificate (as ``$BAO_SKIP_VERIFY``).
        tls_server_name: the name sent as SNI and checked in the server's certificate.
        timeout: seconds per HTTP request.

    Only ``url`` falls back to the environment here; the TLS settings, the namespace and
    the timeout come from :mod:`envelope.settings` (which reads ``BAO_*``/``VAULT_*`` as
    bao does) or from these arguments. The token is read at login by :class:`TokenAuth`.
        deadline: seconds to keep retrying an unreachable, sealed or failing server.

    Raises:
        ConfigError: hvac is not installed, or no server URL is known.
    """

    provider_id = "vault-transit"

    def __init__(
        self,
        key_name: str,
        *,
        mount: str = "transit",
        client: Any = None,
        url: str | None = None,
        auth: VaultAuth | None = None,
        namespace: str | None = None,
        ca_bundle: str | os.PathLike[str] | None = None,
        ca_path: str | os.PathLike[str] | None = None,
        client_cert: tuple[str, str] | None = None,
        skip_verify: bool = False,
        tls_server_name: str | None = None,
        timeout: float = 10.0,
        deadline: float = 30.0,
    ) -> None:
        if client is None:
            if not url and (found := bao_variable(os.environ, "ADDR")):
                url = found[1]
            if not url:
                raise ConfigError(
                    "no Vault address: pass url= or set $BAO_ADDR or $VAULT_ADDR",
                    cli="no Vault address: pass --kms-endpoint URL or set $BAO_ADDR or $VAULT_ADDR",
                )
            tls = VaultTls(
                ca_bundle=str(ca_bundle) if ca_bundle else None,
                ca_path=str(ca_path) if ca_path else None,
                client_cert=client_cert,
                skip_verify=skip_verify,
                server_name=tls_server_name,
            )
            client = hvac_client(_sdk.hvac(), url, tls, namespace=namespace, timeout=timeout)
        self._client = client
        given = getattr(client, "token", None) if auth is None else None
        self._auth = auth or TokenAuth(given if isinstance(given, str) and given else None)
        self._login: LoginResult | None = None
        self._give_up_at: float | None = None
        self._timeout = timeout
        self._key = key_name
        self._mount = mount.strip("/")
        self._deadline = deadline
        self._derived: bool | None = None
        # The settings tree this backend pickles as (set by envelope.settings.build_kms).
        self._origin: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"VaultTransit(key_id={self.key_id!r}, url={self._url()!r}, auth={self._auth!r})"

    def _url(self) -> str:
        return str(getattr(self._client, "url", "?"))

    # -- transport, auth and errors ---------------------------------------------------

    def stop_retrying_at(self, when: float | None) -> None:
        """Bounds every later call by the monotonic time ``when``: no retry starts and no
        request waits past it (None: each call retries for ``deadline`` seconds)."""
        self._give_up_at = when

    def _ensure_login(self, *, force: bool = False) -> None:
        if not force and self._login is not None and not self._login.due(time.monotonic()):
            return
        hvac = _sdk.hvac()
        bound_request(self._client, self._timeout, self._give_up_at)
        try:
            self._login = self._auth.login(self._client)
        except ConfigError:
            raise
        except hvac.exceptions.VaultError as exc:
            raise KmsError(
                f"Vault at {self._url()} refused the {self._auth.method} login "
                f"({first_error(exc)}); check the role, its bound claims and the auth mount"
            ) from None
        except Exception as exc:
            if tls := tls_error(exc, self._url(), "to log in"):
                raise tls from None
            if is_network(exc):
                raise KmsError(f"cannot reach Vault at {self._url()} to log in: {exc}") from None
            raise
        self._client.token = self._login.token

    def _post(self, operation: str, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        hvac = _sdk.hvac()
        started = time.monotonic()
        attempt, relogged = 0, False
        while True:
            attempt += 1
            try:
                self._ensure_login()
                bound_request(self._client, self._timeout, self._give_up_at)
                resp = self._client.adapter.post(f"/v1/{self._mount}/{path}", json=payload)
                return dict(resp)
            except hvac.exceptions.Forbidden as exc:
                if not relogged and not isinstance(self._auth, TokenAuth):
                    relogged = True
                    self._ensure_login(force=True)  # an expired or revoked token
                    continue
                raise self._denied(operation, f"update {self._mount}/{path}", exc) from None
            except hvac.exceptions.InvalidRequest as exc:
                raise self._invalid(exc, operation) from None
            except hvac.exceptions.InvalidPath:
                missing = f"Vault has no transit engine at {self._mount}/ on {self._url()}"
                raise KmsError(
                    f"{missing}: check mount=", cli=f"{missing}: check --vault-mount"
                ) from None
            except (
                hvac.exceptions.VaultDown,
                hvac.exceptions.InternalServerError,
                hvac.exceptions.BadGateway,
            ) as exc:
                reason = "sealed" if isinstance(exc, hvac.exceptions.VaultDown) else "failing"
                if not self._backoff(started, attempt):
                    raise KmsError(
                        f"Vault at {self._url()} is {reason} ({first_error(exc)}); "
                        f"{operation} on {self.key_id} gave up after {attempt} attempts"
                    ) from None
            except Exception as exc:
                if tls := tls_error(exc, self._url(), f"for {operation} on {self.key_id}"):
                    raise tls from None
                if not is_network(exc):
                    raise
                if not self._backoff(started, attempt):
                    raise KmsError(
                        f"cannot reach Vault at {self._url()} for {operation} on {self.key_id} "
                        f"after {attempt} attempts: check the address, TLS settings and "
                        "network policy"
                    ) from None

    def _backoff(self, started: float, attempt: int) -> bool:
        """Sleeps before the next attempt (exponential, full jitter); False past the deadline."""
        delay = random.uniform(0, min(2.0, 0.05 * 2**attempt))  # noqa: S311 - jitter, not crypto
        limit = started + self._deadline
        if self._give_up_at is not None:
            limit = min(limit, self._give_up_at)
        if time.monotonic() + delay > limit:
            return False
        time.sleep(delay)
        return True

    def _invalid(self, exc: Any, operation: str) -> Exception:
        message = first_error(exc)
        if "authentication failed" in message or "invalid ciphertext" in message:
            return DecryptionError()
        if "disallowed by policy" in message or "too old" in message:
            return KeyUnavailableError(
                f"the data key is wrapped with a version of transit key {self.key_id} below its "
                "min_decryption_version; rewrap it (envelope rewrap) before raising that version"
            )
        if "key not found" in message:
            return KmsError(f"transit key {self.key_id} does not exist on {self._url()}")
        return KmsError(f"Vault refused {operation} on transit key {self.key_id}: {message}")

    # -- key facts --------------------------------------------------------------------

    def _denied(self, operation: str | None, refused: str, exc: Any) -> KmsError:
        return denied_error(
            self._client,
            where=f"Vault at {self._url()}",
            mount=self._mount,
            key=self._key,
            operation=operation,
            refused=refused,
            reason=first_error(exc),
            fix_token=(
                "set a valid token ($BAO_TOKEN, $VAULT_TOKEN, --vault-token-file)"
                if isinstance(self._auth, TokenAuth)
                else f"check the {self._auth.method} role's token policies"
            ),
        )

    def key_info(self, *, operation: str | None = None) -> dict[str, Any]:
        """The transit key's configuration (``transit/keys/<key>``), read before the first
        ``operation`` to learn whether the key is derived.

        Raises:
            KmsError: unreachable, denied, or no such key.
        """
        hvac = _sdk.hvac()
        self._ensure_login()
        bound_request(self._client, self._timeout, self._give_up_at)
        try:
            resp = self._client.adapter.get(f"/v1/{self._mount}/keys/{self._key}")
        except hvac.exceptions.InvalidPath:
            raise KmsError(f"transit key {self.key_id} does not exist on {self._url()}") from None
        except hvac.exceptions.Forbidden as exc:
            refused = f"read {self._mount}/keys/{self._key}"
            raise self._denied(operation, refused, exc) from None
        except hvac.exceptions.VaultDown:
            raise KmsError(f"Vault at {self._url()} is sealed") from None
        except Exception as exc:
            if tls := tls_error(exc, self._url(), f"to read transit key {self.key_id}"):
                raise tls from None
            if is_network(exc):
                raise KmsError(f"cannot reach Vault at {self._url()}: {exc}") from None
            raise
        return dict(resp["data"])

    def _bind(self, context: Context, operation: str) -> dict[str, str]:
        if self._derived is None:
            self._derived = bool(self.key_info(operation=operation).get("derived"))
        return transit_binding(context, derived=self._derived)

    # -- KmsBackend -------------------------------------------------------------------

    @property
    def key_id(self) -> str:
        """``<mount>/<key name>``."""
        return f"{self._mount}/{self._key}"

    def matches(self, key_id: str) -> bool:
        """True for this transit key."""
        return key_id == self.key_id

    def _check_slot(self, wrapped: WrappedKey) -> str:
        if wrapped.provider != self.provider_id or not self.matches(wrapped.key_id):
            raise KeyUnavailableError(
                f"the data key is wrapped by {wrapped.provider} key {wrapped.key_id!r}, "
                f"not by transit key {self.key_id}"
            )
        try:
            ciphertext = wrapped.blob.decode("ascii")
        except UnicodeDecodeError:
            raise DecryptionError() from None
        if ciphertext_version(ciphertext.encode()) is None:
            raise DecryptionError()
        return ciphertext

    def generate_data_key(self, context: Context) -> DataKey:
        """``transit/datakey/plaintext/<key>`` with 256 bits.

        Raises:
            KmsError: Vault refused or could not be reached.
        """
        data = self._post(
            "datakey",
            f"datakey/plaintext/{self._key}",
            {"bits": 256, **self._bind(context, "datakey")},
        )["data"]
        plaintext = bytearray(base64.b64decode(data["plaintext"]))
        return DataKey(
            plaintext, WrappedKey(self.provider_id, self.key_id, data["ciphertext"].encode())
        )

    def wrap(self, plaintext: bytes | bytearray, context: Context) -> WrappedKey:
        """``transit/encrypt/<key>``.

        Raises:
            ValueError: ``plaintext`` is not 32 bytes.
            KmsError: as :meth:`generate_data_key`.
        """
        if len(plaintext) != DATA_KEY_BYTES:
            raise ValueError("a data key is 32 bytes")
        data = self._post(
            "encrypt",
            f"encrypt/{self._key}",
            {"plaintext": b64(plaintext), **self._bind(context, "encrypt")},
        )["data"]
        return WrappedKey(self.provider_id, self.key_id, data["ciphertext"].encode())

    def unwrap(self, wrapped: WrappedKey, context: Context) -> bytearray:
        """``transit/decrypt/<key>``.

        Raises:
            KeyUnavailableError: another key, or a version below min_decryption_version.
            DecryptionError: the ciphertext or the context is wrong.
            KmsError: denied, sealed, unreachable.
        """
        ciphertext = self._check_slot(wrapped)
        bind = self._bind(context, "decrypt")
        data = self._post("decrypt", f"decrypt/{self._key}", {"ciphertext": ciphertext, **bind})[
            "data"
        ]
        plaintext = bytearray(base64.b64decode(data["plaintext"]))
        if len(plaintext) != DATA_KEY_BYTES:
            raise DecryptionError()
        return plaintext

    def rewrap(self, wrapped: WrappedKey, context: Context) -> WrappedKey:
        """``transit/rewrap/<key>`` for a derived key (inside Vault); decrypt-then-encrypt
        for a non-derived key (Transit's rewrap cannot carry associated data).

        Raises:
            KeyUnavailableError: as :meth:`unwrap`.
            DecryptionError: as :meth:`unwrap`.
            KmsError: as :meth:`unwrap`.
        """
        ciphertext = self._check_slot(wrapped)
        bind = self._bind(context, "rewrap")
        if "context" in bind:
            data = self._post("rewrap", f"rewrap/{self._key}", {"ciphertext": ciphertext, **bind})[
                "data"
            ]
            return WrappedKey(self.provider_id, self.key_id, data["ciphertext"].encode())
        plaintext = self.unwrap(wrapped, context)
        try:
            return self.wrap(plaintext, context)
        finally:
            plaintext[:] = bytes(len(plaintext))

    def health(self) -> None:
        """Checks the server is reachable and unsealed, the login works, and the key exists.

        Raises:
            KmsError: otherwise, saying which.
        """
        self.key_info()
