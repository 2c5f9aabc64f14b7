"""How a pod proves who it is to Vault / OpenBao: a token, AppRole, or its service-account
JWT (the ``jwt`` or ``kubernetes`` auth methods). Used by :class:`VaultTransit`."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envelope.errors import ConfigError
from envelope.kms._vault_env import token_from_environment

__all__ = [
    "RENEW_FRACTION",
    "SERVICE_ACCOUNT_TOKEN",
    "AppRoleAuth",
    "JwtAuth",
    "KubernetesAuth",
    "LoginResult",
    "TokenAuth",
    "VaultAuth",
]

#: Where Kubernetes mounts a pod's service-account token.
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105 - a path


#: Log in again once this fraction of a token's TTL has passed (Vault Agent renews at 2/3
#: too), so a slow or failing login still has a third of the TTL to succeed.
RENEW_FRACTION = 2 / 3


@dataclass(frozen=True, slots=True)
class LoginResult:
    """A Vault token, when it expires and when to log in again (monotonic seconds; None =
    never). Without ``renew_at`` the token is renewed one second before ``expires_at``."""

    token: str = field(repr=False)
    expires_at: float | None
    renew_at: float | None = None

    @classmethod
    def issued(cls, token: str, ttl: float | None) -> LoginResult:
        """A token issued now for ``ttl`` seconds (0 or None: it never expires), renewed
        after :data:`RENEW_FRACTION` of the TTL."""
        if not ttl:
            return cls(token, None)
        now = time.monotonic()
        return cls(token, now + ttl, now + RENEW_FRACTION * ttl)

    def due(self, now: float) -> bool:
        """True once it is time to log in again."""
        if self.renew_at is not None:
            return now >= self.renew_at
        return self.expires_at is not None and now >= self.expires_at - 1.0


def _read(path: str | os.PathLike[str], what: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} at {path}: {exc.strerror}") from None


class VaultAuth:
    """Base class: ``login(client)`` returns a token for ``client``'s server."""

    #: Name used in error messages.
    method = "token"

    def login(self, client: Any) -> LoginResult:
        """Logs in to ``client``'s server.

        Args:
            client: an ``hvac.Client``.

        Returns:
            The token and when it expires.

        Raises:
            ConfigError: a credential file (token, secret id, JWT) cannot be read, or no
                credential is configured.
            NotImplementedError: on this base class.
            Exception: whatever hvac / requests raise for the login request;
                :class:`~envelope.kms.VaultTransit` maps it to
                :class:`~envelope.errors.KmsError`.
        """
        raise NotImplementedError

    @staticmethod
    def _result(resp: dict[str, Any]) -> LoginResult:
        auth = resp["auth"]
        return LoginResult.issued(str(auth["client_token"]), int(auth.get("lease_duration") or 0))


class TokenAuth(VaultAuth):
    """A static token: ``token``, else the file ``token_file``, else what the ``bao`` CLI
    would use (:func:`~envelope.kms._vault_env.token_from_environment`: ``$BAO_TOKEN``,
    ``$VAULT_TOKEN``, the file at ``$BAO_TOKEN_PATH`` / ``$VAULT_TOKEN_PATH``, else
    ``~/.vault-token``), read at login.

    Raises:
        ConfigError: (at login) no token anywhere.
    """

    method = "token"

    def __init__(
        self, token: str | None = None, *, token_file: str | os.PathLike[str] | None = None
    ) -> None:
        self._token = token
        self._file = token_file

    def __repr__(self) -> str:
        return f"TokenAuth(token_file={str(self._file) if self._file else None!r})"

    def login(self, client: Any) -> LoginResult:
        """Returns the first token found (no request to the server).

        Raises:
            ConfigError: the token file cannot be read, or no token is found anywhere.
        """
        token = self._token
        if token is None and self._file is not None:
            token = _read(self._file, "Vault token file")
        if not token:
            try:
                token = token_from_environment(os.environ, Path.home())
            except OSError as exc:
                raise ConfigError(
                    f"cannot read the Vault token file {exc.filename}: {exc.strerror}"
                ) from None
        if not token:
            raise ConfigError(
                "no Vault token: set $BAO_TOKEN or $VAULT_TOKEN (or log in with bao: "
                "~/.vault-token, $BAO_TOKEN_PATH), give a token file (--vault-token-file, "
                "$ENVELOPE_VAULT_TOKEN_FILE), or use AppRole / JWT / Kubernetes auth "
                "(--vault-auth, $ENVELOPE_VAULT_AUTH)"
            )
        return LoginResult(token, None)


class AppRoleAuth(VaultAuth):
    """AppRole: ``role_id`` and a ``secret_id`` (or the file holding it).

    Raises:
        ConfigError: neither ``secret_id`` nor ``secret_id_file`` is given; (at login) the
            ``secret_id_file`` cannot be read.
    """

    method = "approle"

    def __init__(
        self,
        role_id: str,
        secret_id: str | None = None,
        *,
        secret_id_file: str | os.PathLike[str] | None = None,
        mount: str = "approle",
    ) -> None:
        if secret_id is None and secret_id_file is None:
            raise ConfigError("AppRole auth needs secret_id or secret_id_file")
        self._role_id = role_id
        self._secret_id = secret_id
        self._file = secret_id_file
        self.mount = mount

    def __repr__(self) -> str:
        return f"AppRoleAuth(role_id={self._role_id!r}, mount={self.mount!r})"

    def login(self, client: Any) -> LoginResult:
        """Logs in with the role id and secret id (read from its file each time).

        Raises:
            ConfigError: the secret id file cannot be read.
            Exception: what hvac raises for a refused or failed login (mapped to
                :class:`~envelope.errors.KmsError` by :class:`~envelope.kms.VaultTransit`).
        """
        secret = (
            self._secret_id
            if self._secret_id is not None
            else _read(self._file or "", "AppRole secret_id file")
        )
        resp = client.adapter.post(
            f"/v1/auth/{self.mount}/login", json={"role_id": self._role_id, "secret_id": secret}
        )
        return self._result(resp)


class JwtAuth(VaultAuth):
    """The pod's service-account JWT against a ``jwt`` auth method bound to ``role``.

    The token file is read at every login, so a rotated (projected) token is picked up.

    Raises:
        ConfigError: (at login) the token file cannot be read.
    """

    method = "jwt"

    def __init__(
        self,
        role: str,
        *,
        jwt_file: str | os.PathLike[str] = SERVICE_ACCOUNT_TOKEN,
        mount: str = "jwt",
    ) -> None:
        self.role = role
        self._file = jwt_file
        self.mount = mount

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(role={self.role!r}, mount={self.mount!r}, jwt_file={str(self._file)!r})"

    def login(self, client: Any) -> LoginResult:
        """Logs in with the JWT read from ``jwt_file`` now.

        Raises:
            ConfigError: the token file cannot be read.
            Exception: what hvac raises for a refused or failed login (mapped to
                :class:`~envelope.errors.KmsError` by :class:`~envelope.kms.VaultTransit`).
        """
        jwt = _read(self._file, "service-account token")
        resp = client.adapter.post(
            f"/v1/auth/{self.mount}/login", json={"role": self.role, "jwt": jwt}
        )
        return self._result(resp)


class KubernetesAuth(JwtAuth):
    """The ``kubernetes`` auth method: same login shape as JWT, Vault checks the token with
    the cluster's TokenReview API.

    Raises:
        ConfigError: (at login) the token file cannot be read.
    """

    method = "kubernetes"

    def __init__(
        self,
        role: str,
        *,
        jwt_file: str | os.PathLike[str] = SERVICE_ACCOUNT_TOKEN,
        mount: str = "kubernetes",
    ) -> None:
        super().__init__(role, jwt_file=jwt_file, mount=mount)
