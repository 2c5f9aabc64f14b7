"""Environment variables and command-line flags as layers of settings (explicit wins)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from envelope.kms._vault_env import bao_variable

__all__ = [
    "ENV_TABLE",
    "SECRET_VARIABLES",
    "child_environment",
    "env_layer",
    "flag_hint",
    "merge",
    "split_patterns",
    "vault_address",
]

# (field path, environment variables - the first set one wins -, command-line flag)
ENV_TABLE: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("kms.kind", ("ENVELOPE_KMS",), "--kms"),
    ("kms.key", ("ENVELOPE_KMS_KEY",), "--kms-key"),
    ("kms.region", ("ENVELOPE_KMS_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"), "--kms-region"),
    ("kms.endpoint", ("ENVELOPE_KMS_ENDPOINT",), "--kms-endpoint"),
    ("kms.keyring", ("ENVELOPE_KEYRING",), "--keyring"),
    ("kms.passphrase_file", ("ENVELOPE_KEYRING_PASSPHRASE_FILE",), "--passphrase-file"),
    ("kms.allowed_keys", ("ENVELOPE_ALLOWED_KEYS",), "--allow-key"),
    ("kms.vault.mount", ("ENVELOPE_VAULT_MOUNT",), "--vault-mount"),
    ("kms.vault.auth.method", ("ENVELOPE_VAULT_AUTH",), "--vault-auth"),
    ("kms.vault.auth.role", ("ENVELOPE_VAULT_ROLE",), "--vault-role"),
    ("kms.vault.auth.jwt_file", ("ENVELOPE_VAULT_JWT_FILE",), "--vault-jwt-file"),
    ("kms.vault.auth.mount", ("ENVELOPE_VAULT_AUTH_MOUNT",), "--vault-auth-mount"),
    ("kms.vault.auth.token_file", ("ENVELOPE_VAULT_TOKEN_FILE",), "--vault-token-file"),
    ("kms.vault.auth.role_id", ("ENVELOPE_VAULT_ROLE_ID",), "--vault-role-id"),
    ("kms.vault.auth.secret_id_file", ("ENVELOPE_VAULT_SECRET_ID_FILE",), "--vault-secret-id-file"),
    (
        "kms.vault.ca_bundle",
        ("ENVELOPE_VAULT_CA_BUNDLE", "BAO_CACERT", "VAULT_CACERT"),
        "--vault-ca-bundle",
    ),
    (
        "kms.vault.client_cert",
        ("ENVELOPE_VAULT_CLIENT_CERT", "BAO_CLIENT_CERT", "VAULT_CLIENT_CERT"),
        "--vault-client-cert",
    ),
    (
        "kms.vault.client_key",
        ("ENVELOPE_VAULT_CLIENT_KEY", "BAO_CLIENT_KEY", "VAULT_CLIENT_KEY"),
        "--vault-client-key",
    ),
    (
        "kms.vault.namespace",
        ("ENVELOPE_VAULT_NAMESPACE", "BAO_NAMESPACE", "VAULT_NAMESPACE"),
        "--vault-namespace",
    ),
    (
        "kms.vault.ca_path",
        ("ENVELOPE_VAULT_CA_PATH", "BAO_CAPATH", "VAULT_CAPATH"),
        "--vault-ca-path",
    ),
    (
        "kms.vault.skip_verify",
        ("ENVELOPE_VAULT_SKIP_VERIFY", "BAO_SKIP_VERIFY", "VAULT_SKIP_VERIFY"),
        "--vault-skip-verify",
    ),
    (
        "kms.vault.tls_server_name",
        ("ENVELOPE_VAULT_TLS_SERVER_NAME", "BAO_TLS_SERVER_NAME", "VAULT_TLS_SERVER_NAME"),
        "--vault-tls-server-name",
    ),
    (
        "kms.vault.timeout",
        ("ENVELOPE_VAULT_TIMEOUT", "BAO_CLIENT_TIMEOUT", "VAULT_CLIENT_TIMEOUT"),
        "--vault-timeout",
    ),
    ("cluster_secret.file", ("ENVELOPE_CLUSTER_SECRET_FILE",), "--cluster-secret"),
    ("keystore.uri", ("ENVELOPE_KEYSTORE",), "--keystore"),
    ("keystore.endpoint", ("ENVELOPE_KEYSTORE_ENDPOINT",), "--keystore-endpoint"),
)
VAULT_ADDRESS = ("ENVELOPE_KMS_ENDPOINT", "BAO_ADDR", "VAULT_ADDR")
CLUSTER_SECRET_VALUE = "ENVELOPE_CLUSTER_SECRET"  # noqa: S105 - a variable name
#: Variables that hold key material itself (a cluster-secret part, a keyring
#: passphrase): envelope reads them and never hands them to a process it starts.
SECRET_VARIABLES = (CLUSTER_SECRET_VALUE, "ENVELOPE_KEYRING_PASSPHRASE")
_BY_PATH = {path: (names, flag) for path, names, flag in ENV_TABLE}


def child_environment(environ: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """The environment for a process envelope starts (``exec``, an on-change command):
    ``environ`` without :data:`SECRET_VARIABLES`, plus ``extra``."""
    return {k: v for k, v in environ.items() if k not in SECRET_VARIABLES} | dict(extra)


def _put(tree: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[leaf] = value


def _first(environ: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    """The first of ``names`` set to a non-empty value; a ``BAO_X``/``VAULT_X`` pair is
    read as the bao CLI reads it (:func:`~envelope.kms._vault_env.bao_variable`: a set
    ``BAO_X``, even empty, hides ``VAULT_X``)."""
    for name in names:
        if name.startswith("VAULT_") and f"BAO_{name[6:]}" in names:
            continue  # read with its BAO_ twin
        if name.startswith("BAO_"):
            if (found := bao_variable(environ, name[4:])) is not None:
                return found[1]
        elif environ.get(name):
            return environ[name]
    return None


def vault_address(environ: Mapping[str, str]) -> str | None:
    """The Vault address the environment gives (:data:`VAULT_ADDRESS`, as bao reads it)."""
    return _first(environ, VAULT_ADDRESS)


def env_layer(environ: Mapping[str, str], kind: str | None) -> dict[str, Any]:
    """The settings tree the environment gives, for a KMS of ``kind`` (None: from the env)."""
    tree: dict[str, Any] = {}
    for path, names, _flag in ENV_TABLE:
        if (value := _first(environ, names)) is not None:
            _put(tree, path, value)
    kind = kind or tree.get("kms", {}).get("kind", "local")
    if kind == "vault" and (address := _first(environ, VAULT_ADDRESS)):
        _put(tree, "kms.endpoint", address)
    cluster = tree.get("cluster_secret", {})
    if "file" not in cluster and environ.get(CLUSTER_SECRET_VALUE):
        _put(tree, "cluster_secret.env", CLUSTER_SECRET_VALUE)
    return tree


def _prune(tree: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, given in tree.items():
        value = _prune(given) if isinstance(given, Mapping) else given
        if value is not None and value != {}:
            out[key] = value
    return out


def _deep(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        below = out.get(key)
        out[key] = (
            _deep(below, value) if isinstance(value, Mapping) and isinstance(below, dict) else value
        )
    return out


def merge(explicit: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """``explicit`` (None values ignored) over the environment's settings."""
    top = _prune(explicit)
    tree = _deep(env_layer(environ, top.get("kms", {}).get("kind")), top)
    cluster = tree.get("cluster_secret")
    given = top.get("cluster_secret", {})
    if cluster is not None and "file" in given and "env" not in given:
        cluster.pop("env", None)  # an explicit file wins over $ENVELOPE_CLUSTER_SECRET
    if cluster is not None and "file" not in cluster and "env" not in cluster:
        del tree["cluster_secret"]  # --previous-cluster-secret alone: no current part
    store = tree.get("keystore")
    if store is not None:
        if "uri" not in store:
            del tree["keystore"]
        elif "region" not in store and (region := tree.get("kms", {}).get("region")):
            store["region"] = region
    return tree


def flag_hint(path: str) -> str:
    """`` (--flag, $ENV)`` for a field the command line or environment sets."""
    names, flag = _BY_PATH.get(path, ((), ""))
    given = [flag] if flag else []
    return f" ({', '.join([*given, *('$' + n for n in names)])})" if given else ""


def split_patterns(text: str) -> tuple[str, ...]:
    """Allow-list patterns from one string (``$ENVELOPE_ALLOWED_KEYS``): comma- or
    whitespace-separated."""
    return tuple(p for p in re.split(r"[\s,]+", text) if p)
