"""The one settings model: which KMS and how to reach it, the cluster secret, the key store.

Every front end is a thin view of it: the CLI's flags, ``envelope init``'s YAML config
(:mod:`envelope.k8s`), and code. Validation and its messages live here only: every error
names the field (and, from the command line, its flag and environment variable), says how
to fix it and suggests the right name for a misspelt key.

>>> from envelope.settings import Settings, build_kms
>>> s = Settings.resolve({"kms": {"kind": "vault", "key": "billing"}}, environ={})
>>> s.kms.vault.auth.method
'token'

Environment variables are defaults under explicit values (:meth:`Settings.resolve`:
an explicit value always wins; when several variables are listed, the first set wins):

==============================  ==========================================  =====================
field                           environment variables                       flag
==============================  ==========================================  =====================
kms.kind                        ENVELOPE_KMS (default ``local``)            --kms
kms.key                         ENVELOPE_KMS_KEY                            --kms-key
kms.region                      ENVELOPE_KMS_REGION, AWS_REGION,            --kms-region
                                AWS_DEFAULT_REGION
kms.endpoint                    ENVELOPE_KMS_ENDPOINT; for ``vault`` also   --kms-endpoint
                                BAO_ADDR, VAULT_ADDR (BAO_* wins, as bao)
kms.keyring                     ENVELOPE_KEYRING                            --keyring
kms.passphrase_file             ENVELOPE_KEYRING_PASSPHRASE_FILE            --passphrase-file
kms.allowed_keys                ENVELOPE_ALLOWED_KEYS (comma- or space-     --allow-key
                                separated glob patterns; decrypting only)   (repeatable)
(keyring passphrase itself)     ENVELOPE_KEYRING_PASSPHRASE (file wins)
kms.vault.mount                 ENVELOPE_VAULT_MOUNT                        --vault-mount
kms.vault.auth.method           ENVELOPE_VAULT_AUTH                         --vault-auth
kms.vault.auth.role             ENVELOPE_VAULT_ROLE                         --vault-role
kms.vault.auth.jwt_file         ENVELOPE_VAULT_JWT_FILE                     --vault-jwt-file
kms.vault.auth.mount            ENVELOPE_VAULT_AUTH_MOUNT                   --vault-auth-mount
kms.vault.auth.token_file       ENVELOPE_VAULT_TOKEN_FILE                   --vault-token-file
kms.vault.auth.role_id          ENVELOPE_VAULT_ROLE_ID                      --vault-role-id
kms.vault.auth.secret_id_file   ENVELOPE_VAULT_SECRET_ID_FILE               --vault-secret-id-file
kms.vault.ca_bundle             ENVELOPE_VAULT_CA_BUNDLE,                   --vault-ca-bundle
                                BAO_CACERT, VAULT_CACERT
kms.vault.client_cert           ENVELOPE_VAULT_CLIENT_CERT,                 --vault-client-cert
                                BAO_CLIENT_CERT, VAULT_CLIENT_CERT
kms.vault.client_key            ENVELOPE_VAULT_CLIENT_KEY,                  --vault-client-key
                                BAO_CLIENT_KEY, VAULT_CLIENT_KEY
kms.vault.namespace             ENVELOPE_VAULT_NAMESPACE,                   --vault-namespace
                                BAO_NAMESPACE, VAULT_NAMESPACE
kms.vault.ca_path               ENVELOPE_VAULT_CA_PATH,                     --vault-ca-path
                                BAO_CAPATH, VAULT_CAPATH
kms.vault.skip_verify           ENVELOPE_VAULT_SKIP_VERIFY,                 --vault-skip-verify
                                BAO_SKIP_VERIFY, VAULT_SKIP_VERIFY
kms.vault.tls_server_name       ENVELOPE_VAULT_TLS_SERVER_NAME,             --vault-tls-server-name
                                BAO_TLS_SERVER_NAME, VAULT_TLS_SERVER_NAME
kms.vault.timeout               ENVELOPE_VAULT_TIMEOUT,                     --vault-timeout
                                BAO_CLIENT_TIMEOUT, VAULT_CLIENT_TIMEOUT
cluster_secret.file             ENVELOPE_CLUSTER_SECRET_FILE                --cluster-secret
cluster_secret.env              ENVELOPE_CLUSTER_SECRET (holds the part)
keystore.uri                    ENVELOPE_KEYSTORE                           --keystore
keystore.endpoint               ENVELOPE_KEYSTORE_ENDPOINT                  --keystore-endpoint
keystore.region                 (kms.region)                                (--kms-region)
==============================  ==========================================  =====================

Without ``kms.key``, a decrypting front end (``Settings.resolve(..., decrypt_only=True)``)
uses the key each message's slot names if ``kms.allowed_keys`` allows it; the KMS kind,
endpoint, region, mount and auth still come only from these settings
(:mod:`envelope.settings._discovery`).

``BAO_*``/``VAULT_*`` pairs are read as the ``bao`` CLI reads them
(:mod:`envelope.kms._vault_env`): a set ``BAO_X``, even empty, hides ``VAULT_X``;
``*_SKIP_VERIFY`` takes Go's booleans (``1 t T TRUE true True`` / ``0 f F FALSE false
False``), ``*_CLIENT_TIMEOUT`` seconds or a Go duration (``1m30s``).

The Vault token itself is read at login, never kept in settings: ``token_file``, else
``BAO_TOKEN``, ``VAULT_TOKEN``, the file at ``BAO_TOKEN_PATH``/``VAULT_TOKEN_PATH``, else
``~/.vault-token`` (what ``bao login`` writes). AWS credentials come from boto3's usual
chain.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from envelope._lazy import lazy_getattr
from envelope.settings._env import ENV_TABLE
from envelope.settings._kinds import KMS_KINDS, VAULT_AUTH_METHODS

if TYPE_CHECKING:
    from envelope.settings._build import (
        build_keystore,
        build_kms,
        keyring_passphrase,
        kms_from_mapping,
        load_cluster_secret,
    )
    from envelope.settings._errors import config_error
    from envelope.settings._model import (
        SERVICE_ACCOUNT_TOKEN,
        ClusterSecretSettings,
        KeyStoreSettings,
        KmsSettings,
        Settings,
        VaultAuthSettings,
        VaultSettings,
    )
    from envelope.settings._schema import ValidationError

# Imported on first use: a command that needs no settings does not build the models.
_LAZY = {
    "ValidationError": "_schema",
    **dict.fromkeys(
        (
            "build_keystore",
            "build_kms",
            "keyring_passphrase",
            "kms_from_mapping",
            "load_cluster_secret",
        ),
        "_build",
    ),
    "config_error": "_errors",
    **dict.fromkeys(
        (
            "SERVICE_ACCOUNT_TOKEN",
            "ClusterSecretSettings",
            "KeyStoreSettings",
            "KmsSettings",
            "Settings",
            "VaultAuthSettings",
            "VaultSettings",
        ),
        "_model",
    ),
}

__getattr__ = lazy_getattr(__name__, _LAZY, globals())


__all__ = [
    "ENV_TABLE",
    "KMS_KINDS",
    "SERVICE_ACCOUNT_TOKEN",
    "VAULT_AUTH_METHODS",
    "ClusterSecretSettings",
    "KeyStoreSettings",
    "KmsSettings",
    "Settings",
    "ValidationError",
    "VaultAuthSettings",
    "VaultSettings",
    "build_keystore",
    "build_kms",
    "config_error",
    "keyring_passphrase",
    "kms_from_mapping",
    "load_cluster_secret",
]
