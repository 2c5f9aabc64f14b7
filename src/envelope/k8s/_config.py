"""The ``envelope init`` / ``envelope exec`` configuration file (YAML or JSON).

Validated by pydantic; every error names the field and says how to fix it. Example:

```yaml
version: 1
kms:
  kind: vault                      # local | aws | vault
  key: billing                     # AWS key id/ARN/alias, or the transit key name
  # allowed_keys: [billing-*]      # instead of key: each secret's own key, if it matches
  endpoint: https://vault.vault.svc:8200
  vault:
    auth: {method: kubernetes, role: billing}
    ca_bundle: /etc/envelope/vault-ca.pem
cluster_secret:
  file: /var/run/secrets/envelope/part
output:
  directory: /run/secrets/app      # an emptyDir with medium: Memory
  uid: 1000
  gid: 1000
  mode: "0400"
secrets:
  - name: database
    source: {file: /etc/envelope/sealed/database.env.enc}
    target: database.env
    form: dotenv                   # raw | dotenv | json
    context: {service: billing}    # required: the context the message must carry
```

Each secret's ``context`` is required (``{}`` for none), or inherited from a top-level
``context:`` declared once for every secret that gives none: decryption only accepts
a message whose context equals it exactly (no Unicode normalisation).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from envelope.errors import ConfigError
from envelope.settings import (
    ClusterSecretSettings,
    KeyStoreSettings,
    KmsSettings,
    config_error,
)

try:
    import yaml
except ImportError:  # pragma: no cover - exercised by the extra's absence
    raise ConfigError(
        "envelope init/exec need the k8s extra (PyYAML is missing): pip install 'envelope-kms[k8s]'"
    ) from None

__all__ = ["InitConfig", "load_config"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(_Strict):
    file: str | None = None
    s3: str | None = None
    inline: str | None = None

    @model_validator(mode="after")
    def _one(self) -> SourceConfig:
        given = [k for k in ("file", "s3", "inline") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'file', 's3' or 'inline' (base64)")
        if self.s3 is not None and not re.match(r"^s3://[^/]+/.+", self.s3):
            raise ValueError("'s3' must look like s3://bucket/key")
        return self


class SecretConfig(_Strict):
    name: str
    source: SourceConfig
    target: str | None = None
    form: Literal["raw", "dotenv", "json"] = "raw"
    keys: list[str] | None = None
    key: str | None = None  # one value of an encrypted document source, e.g. .db.password
    env: str | None = None
    context: dict[str, str]

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("use 1-63 letters, digits, '.', '_' or '-'")
        return v

    @field_validator("target")
    @classmethod
    def _target(cls, v: str | None) -> str | None:
        if v is not None and (not _NAME.match(v) or v.startswith("..")):
            raise ValueError("a plain file name (no '/', not starting with '..')")
        return v

    @field_validator("env")
    @classmethod
    def _env(cls, v: str | None) -> str | None:
        if v is not None and not _ENV.match(v):
            raise ValueError("an environment variable name ([A-Za-z_][A-Za-z0-9_]*)")
        return v

    @model_validator(mode="after")
    def _keys(self) -> SecretConfig:
        if self.keys is not None and self.form == "raw":
            raise ValueError(
                "'keys' selects entries of a dotenv or json secret; not for form 'raw'"
            )
        return self


class OutputConfig(_Strict):
    directory: str
    uid: int | None = Field(default=None, ge=0)
    gid: int | None = Field(default=None, ge=0)
    mode: int = 0o400

    @field_validator("mode", mode="before")
    @classmethod
    def _mode(cls, v: Any) -> int:
        if isinstance(v, str):
            if not re.match(r"^0?[0-7]{3}$", v):
                raise ValueError('an octal file mode such as "0400"')
            v = int(v, 8)
        if not isinstance(v, int) or v & ~0o777 or v & 0o022:
            raise ValueError(
                'a file mode such as "0400" or "0440" (never writable by group/others)'
            )
        return v


def _defaults(data: dict[str, Any]) -> dict[str, Any]:
    """The file format's own defaults: Vault auth ``kubernetes``; ``keystore`` as a URI;
    a secret without ``context`` inherits the top-level ``context``."""
    kms = data.get("kms")
    if isinstance(kms, dict) and kms.get("kind") == "vault":
        vault = kms.get("vault", {})
        auth = vault.get("auth", {}) if isinstance(vault, dict) else None
        if isinstance(auth, dict) and "method" not in auth:
            data = {
                **data,
                "kms": {**kms, "vault": {**vault, "auth": {**auth, "method": "kubernetes"}}},
            }
    default = data.get("context")
    listed = data.get("secrets")
    if default is not None and isinstance(listed, list):
        data = {
            **data,
            "secrets": [
                {**s, "context": default} if isinstance(s, dict) and "context" not in s else s
                for s in listed
            ],
        }
    store = data.get("keystore")
    if isinstance(store, str):
        region = kms.get("region") if isinstance(kms, dict) else None
        data = {
            **data,
            "keystore": {"uri": store, "endpoint": data.get("s3_endpoint"), "region": region},
        }
    return data


class InitConfig(_Strict):
    version: Literal[1] = 1
    kms: KmsSettings
    cluster_secret: ClusterSecretSettings | None = None
    keystore: KeyStoreSettings | None = None
    s3_endpoint: str | None = None
    output: OutputConfig | None = None
    secrets: list[SecretConfig] = Field(min_length=1)
    timeout: float = Field(default=60.0, gt=0)
    context: dict[str, str] | None = None
    accept_unsplit: bool = False  # migration: also secrets sealed without the cluster part

    @model_validator(mode="before")
    @classmethod
    def _file_defaults(cls, data: Any) -> Any:
        return _defaults(data) if isinstance(data, dict) else data

    @model_validator(mode="after")
    def _unique(self) -> InitConfig:
        names = [s.name for s in self.secrets]
        if len(set(names)) != len(names):
            raise ValueError("secret names must be unique")
        targets = [s.target or s.name for s in self.secrets]
        if len(set(targets)) != len(targets):
            raise ValueError("secret targets (file names) must be unique")
        return self


def parse_config(text: str, source: str = "<config>") -> InitConfig:
    """Parses YAML or JSON text.

    Raises:
        ConfigError: not YAML/JSON, or invalid (the message names every bad field).
    """
    try:
        data = yaml.safe_load(text) if not source.endswith(".json") else json.loads(text)
    except (yaml.YAMLError, ValueError) as exc:
        raise ConfigError(f"envelope config {source} is not valid YAML/JSON: {exc}") from None
    except RecursionError:
        raise ConfigError(f"envelope config {source} is nested too deeply") from None
    if not isinstance(data, dict):
        raise ConfigError(f"envelope config {source} must be a mapping at the top level")
    try:
        return InitConfig.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc, InitConfig, f"config {source}") from None


def load_config(path: str | Path) -> InitConfig:
    """Loads and validates a config file.

    Raises:
        ConfigError: unreadable or invalid.
    """
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read envelope config {path}: {exc.strerror}") from None
    return parse_config(text, str(path))
