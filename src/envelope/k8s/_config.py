"""The ``envelope init`` / ``envelope exec`` configuration file (YAML or JSON).

Validated by pydantic; every error names the field and says how to fix it. Example:

```yaml
version: 1
kms:
  kind: vault                      # local | aws | vault
  key: billing                     # AWS key id/ARN/alias, or the transit key name
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
    context: {service: billing}
```
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any, Literal

from envelope.errors import ConfigError

try:
    import yaml
    from pydantic import (
        BaseModel,
        ConfigDict,
        Field,
        ValidationError,
        field_validator,
        model_validator,
    )
except ImportError as exc:  # pragma: no cover - exercised by the extra's absence
    raise ConfigError(
        f"envelope init/exec need the k8s extra ({exc.name} is missing): "
        "pip install 'envelope-kms[k8s]'"
    ) from None

__all__ = ["InitConfig", "load_config"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105 - a path


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VaultAuthConfig(_Strict):
    method: Literal["kubernetes", "jwt", "approle", "token"] = "kubernetes"
    role: str | None = None
    mount: str | None = None
    jwt_file: str = SERVICE_ACCOUNT_TOKEN
    token_file: str | None = None
    role_id: str | None = None
    secret_id_file: str | None = None

    def problem(self) -> str | None:
        """What is missing for this method, if anything."""
        if self.method in ("kubernetes", "jwt") and not self.role:
            return (
                f"vault.auth.method {self.method!r} needs vault.auth.role: "
                "the Vault role bound to this service account"
            )
        if self.method == "approle" and not (self.role_id and self.secret_id_file):
            return (
                "vault.auth.method 'approle' needs vault.auth.role_id and vault.auth.secret_id_file"
            )
        return None


class VaultConfig(_Strict):
    mount: str = "transit"
    auth: VaultAuthConfig = Field(default_factory=VaultAuthConfig)
    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    namespace: str | None = None

    @model_validator(mode="after")
    def _mtls(self) -> VaultConfig:
        if bool(self.client_cert) != bool(self.client_key):
            raise ValueError("mTLS needs both 'client_cert' and 'client_key'")
        return self


class KmsConfig(_Strict):
    kind: Literal["local", "aws", "vault"]
    key: str | None = None
    region: str | None = None
    endpoint: str | None = None
    keyring: str | None = None
    passphrase_file: str | None = None
    vault: VaultConfig = Field(default_factory=VaultConfig)

    @model_validator(mode="after")
    def _key(self) -> KmsConfig:
        if self.kind in ("aws", "vault") and not self.key:
            what = "the KMS key id, ARN or alias" if self.kind == "aws" else "the transit key name"
            raise ValueError(f"kind {self.kind!r} needs 'key': {what}")
        if self.kind == "vault" and (problem := self.vault.auth.problem()):
            raise ValueError(problem)
        return self


class ClusterSecretConfig(_Strict):
    file: str
    previous: list[str] = Field(default_factory=list)


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
    context: dict[str, str] | None = None

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


class InitConfig(_Strict):
    version: Literal[1] = 1
    kms: KmsConfig
    cluster_secret: ClusterSecretConfig | None = None
    keystore: str | None = None
    s3_endpoint: str | None = None
    output: OutputConfig | None = None
    secrets: list[SecretConfig] = Field(min_length=1)
    timeout: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _unique(self) -> InitConfig:
        names = [s.name for s in self.secrets]
        if len(set(names)) != len(names):
            raise ValueError("secret names must be unique")
        targets = [s.target or s.name for s in self.secrets]
        if len(set(targets)) != len(targets):
            raise ValueError("secret targets (file names) must be unique")
        return self


def _fields_of(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names allowed at ``loc`` (for "did you mean" hints)."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        candidates = [a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not candidates:
            inner = [
                a
                for arg in args
                for a in getattr(arg, "__args__", ())
                if isinstance(a, type) and issubclass(a, BaseModel)
            ]
            candidates = inner
        current = candidates[0] if candidates else None
    return list(getattr(current, "model_fields", {}).keys()) if current is not None else []


def describe_errors(exc: ValidationError, source: str) -> str:
    """One line per problem: the field's path, what is wrong and how to fix it."""
    lines = [f"invalid envelope config {source}:"]
    for err in exc.errors():
        loc = tuple(err["loc"])
        path = ".".join(str(p) for p in loc) or "(top level)"
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            allowed = _fields_of(InitConfig, loc)
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; allowed: {', '.join(allowed)}"
            msg = f"unknown field '{loc[-1]}'{hint}"
        elif err["type"] == "missing":
            msg = "this field is required"
        lines.append(f"  {path}: {msg}")
    return "\n".join(lines)


def parse_config(text: str, source: str = "<config>") -> InitConfig:
    """Parses YAML or JSON text.

    Raises:
        ConfigError: not YAML/JSON, or invalid (the message names every bad field).
    """
    try:
        data = yaml.safe_load(text) if not source.endswith(".json") else json.loads(text)
    except (yaml.YAMLError, ValueError) as exc:
        raise ConfigError(f"envelope config {source} is not valid YAML/JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"envelope config {source} must be a mapping at the top level")
    try:
        return InitConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, source)) from None


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
