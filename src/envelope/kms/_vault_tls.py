"""TLS to Vault / OpenBao as the ``bao`` CLI does it: a CA file or a directory of CA files,
a client certificate, skipping verification, and a TLS server name (SNI and the name the
certificate is checked against).

The settings go into one :class:`ssl.SSLContext` mounted on the hvac client's
``requests`` session, so requests' own CA choice (certifi, ``$REQUESTS_CA_BUNDLE``) does
not add to or replace them. With no TLS setting at all, requests' defaults apply.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envelope.errors import ConfigError

if TYPE_CHECKING:
    import ssl

__all__ = ["VaultTls", "hvac_client", "tls_session"]


@dataclass(frozen=True, slots=True)
class VaultTls:
    """How to check the server and prove who we are (all optional).

    ``ca_bundle`` wins over ``ca_path`` (as in bao: only one of them is used);
    ``skip_verify`` turns off checking the server's certificate and name.
    """

    ca_bundle: str | None = None
    ca_path: str | None = None
    client_cert: tuple[str, str] | None = None
    skip_verify: bool = False
    server_name: str | None = None

    def any(self) -> bool:
        """True when some setting differs from requests' defaults."""
        return bool(self.ca_bundle or self.ca_path or self.client_cert or self.skip_verify) or bool(
            self.server_name
        )


def _ca_path_pem(directory: str) -> str:
    """Every certificate in the files of ``directory`` (bao reads each file; names need
    not be OpenSSL hashes).

    Raises:
        ConfigError: the directory cannot be read, or a file in it holds no PEM certificate.
    """
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        raise ConfigError(
            f"cannot read the Vault CA directory {directory} (--vault-ca-path, $BAO_CAPATH, "
            f"$VAULT_CAPATH): {exc.strerror}"
        ) from None
    pems: list[str] = []
    for name in names:
        path = Path(directory) / name
        if path.is_dir():
            continue
        try:
            text = path.read_text(errors="replace")
        except OSError as exc:
            raise ConfigError(f"cannot read CA file {path}: {exc.strerror}") from None
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise ConfigError(
                f"{path} in the Vault CA directory holds no PEM certificate (bao refuses it too)"
            )
        pems.append(text)
    if not pems:
        raise ConfigError(f"the Vault CA directory {directory} holds no certificate")
    return "\n".join(pems)


def _context(tls: VaultTls) -> ssl.SSLContext:
    """The SSL context ``tls`` describes.

    Raises:
        ConfigError: a CA or client certificate file is missing or not PEM.
    """
    import ssl  # noqa: PLC0415 - only where TLS is set up: ~8 ms of every start otherwise

    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        if tls.ca_bundle:
            ctx.load_verify_locations(cafile=tls.ca_bundle)
        elif tls.ca_path:
            ctx.load_verify_locations(cadata=_ca_path_pem(tls.ca_path))
    except (OSError, ssl.SSLError) as exc:
        where = tls.ca_bundle or tls.ca_path
        raise ConfigError(
            f"cannot load the Vault CA certificates from {where} (--vault-ca-bundle, "
            f"$BAO_CACERT, $VAULT_CACERT): {getattr(exc, 'strerror', None) or exc}"
        ) from None
    if tls.client_cert:
        cert, key = tls.client_cert
        try:
            ctx.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"cannot load the Vault client certificate {cert} with key {key} "
                f"(--vault-client-cert/--vault-client-key, $BAO_CLIENT_CERT/$BAO_CLIENT_KEY): "
                f"{getattr(exc, 'strerror', None) or exc}"
            ) from None
    if tls.skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def tls_session(tls: VaultTls) -> Any:
    """A ``requests.Session`` whose HTTPS connections use ``tls`` (and only it).

    Raises:
        ConfigError: as :func:`_context`.
    """
    import requests  # noqa: PLC0415 - hvac's transport, installed with hvac
    from requests.adapters import HTTPAdapter  # noqa: PLC0415

    context = _context(tls)
    verify = not tls.skip_verify

    class _Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            kwargs["ssl_context"] = context
            if tls.server_name:
                kwargs["server_hostname"] = tls.server_name  # SNI and the name checked
            super().init_poolmanager(*args, **kwargs)

        def cert_verify(self, conn: Any, url: str, verify_arg: Any, cert: Any) -> None:
            # The context holds the CAs and the client certificate: nothing from requests.
            conn.cert_reqs = "CERT_REQUIRED" if verify else "CERT_NONE"
            conn.ca_certs = conn.ca_cert_dir = None
            conn.cert_file = conn.key_file = None

        def build_connection_pool_key_attributes(
            self, request: Any, verify_arg: Any, cert: Any = None
        ) -> tuple[dict[str, Any], dict[str, Any]]:
            host, pool = super().build_connection_pool_key_attributes(request, verify, None)
            for name in ("ca_certs", "ca_cert_dir", "cert_file", "key_file"):
                pool.pop(name, None)
            return host, pool

    session = requests.Session()
    session.mount("https://", _Adapter())
    return session


def hvac_client(
    hvac: Any, url: str, tls: VaultTls, *, namespace: str | None, timeout: float
) -> Any:
    """An ``hvac.Client`` for ``url`` that reads nothing from the environment itself (hvac
    would prefer ``VAULT_*`` and ``~/.vault-token``): verify, cert and token are given, and
    the TLS settings live in the session.

    Raises:
        ConfigError: as :func:`tls_session`.
    """
    return hvac.Client(
        url=url,
        token="",
        verify=True,
        cert=None,
        timeout=timeout,
        namespace=namespace or None,
        session=tls_session(tls) if tls.any() else None,
    )
