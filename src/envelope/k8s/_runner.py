"""``envelope init`` and ``envelope exec``: decrypt a service's secrets as its pod starts.

Exit codes (:class:`envelope._exitcodes.ExitCode`): OK every secret decrypted and published
(init) / the command was executed (exec); DECRYPT a secret did not decrypt; CONFIG invalid
config, missing file, key or cluster part, bad form; KMS the KMS (or S3) stayed unavailable
until the deadline (--timeout); IO the output could not be written; DISK the output
directory is not memory-backed (and --allow-disk was not given).

Nothing is published unless every secret decrypted; log lines never contain values.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import random
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from envelope._envelope import Envelope
from envelope._exitcodes import ExitCode
from envelope._keys.discovery import DiscoveredKeys
from envelope.errors import (
    ConfigError,
    DecryptionError,
    EnvelopeError,
    KeyUnavailableError,
    KmsError,
)
from envelope.k8s._config import InitConfig, SecretConfig, load_config
from envelope.k8s._documents import decrypt_source
from envelope.k8s._forms import entries, render
from envelope.k8s._publish import check_memory_backed, publish
from envelope.k8s._refresh import Published, Refresh, digest, run_refresh
from envelope.keystore._s3 import read_s3_object
from envelope.kms._vault import VaultTransit
from envelope.settings import build_keystore, build_kms, load_cluster_secret
from envelope.settings._env import child_environment

__all__ = ["Log", "Refresh", "run_exec", "run_init"]

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Log:
    """Log lines on stderr: ``text`` for people, ``json`` (one object a line) for collectors."""

    def __init__(self, fmt: str = "text", stream: TextIO | None = None) -> None:
        self._json = fmt == "json"
        self._stream = stream or sys.stderr

    def __call__(self, level: str, event: str, **fields: Any) -> None:
        if self._json:
            record = {
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "level": level,
                "event": event,
                **fields,
            }
            line = json.dumps(record, sort_keys=False)
        else:
            extra = " ".join(f"{k}={v}" for k, v in fields.items())
            line = f"envelope: {level}: {event}" + (f" ({extra})" if extra else "")
        print(line, file=self._stream, flush=True)


@dataclass
class Failure:
    secret: str
    code: int
    message: str


@dataclass
class Result:
    plaintexts: dict[str, bytes] = field(default_factory=dict, repr=False)
    failures: list[Failure] = field(default_factory=list)


def _stop_retrying_at(backend: object, give_up_at: float | None) -> None:
    if isinstance(backend, VaultTransit):
        backend.stop_retrying_at(give_up_at)


def build_envelope(
    cfg: InitConfig, *, deadline: float, give_up_at: float | None = None
) -> Envelope:
    """The Envelope the config describes; a Vault backend stops retrying at ``give_up_at``
    (monotonic seconds), the one deadline of the whole run.

    Raises:
        ConfigError: the KMS, cluster secret or key store cannot be set up.
    """
    vault = cfg.kms.vault.model_copy(update={"deadline": max(1.0, min(10.0, deadline))})
    kms = build_kms(cfg.kms.model_copy(update={"vault": vault}))
    if isinstance(kms, VaultTransit):
        kms.stop_retrying_at(give_up_at)
    elif isinstance(kms, DiscoveredKeys):  # kms.allowed_keys: each key a message names
        kms.configure_each(lambda b: _stop_retrying_at(b, give_up_at))
    cluster = load_cluster_secret(cfg.cluster_secret) if cfg.cluster_secret else None
    keystore = build_keystore(cfg.keystore) if cfg.keystore else None
    return Envelope(kms, cluster, keystore=keystore, accept_unsplit=cfg.accept_unsplit)


def _fetch(secret: SecretConfig, cfg: InitConfig) -> bytes:
    src = secret.source
    if src.inline is not None:
        try:
            return base64.b64decode(src.inline, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"secret {secret.name}: source.inline is not base64") from None
    if src.file is not None:
        try:
            return Path(src.file).read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"secret {secret.name}: cannot read {src.file}: {exc.strerror}"
            ) from None
    assert src.s3 is not None
    try:
        return read_s3_object(src.s3, endpoint_url=cfg.s3_endpoint, region=cfg.kms.region)
    except (ConfigError, KmsError) as exc:
        raise type(exc)(f"secret {secret.name}: {exc}") from None


def decrypt_all(
    cfg: InitConfig, timeout: float, log: Log, *, sleep: Callable[[float], None] = time.sleep
) -> Result:
    """Decrypts every secret, retrying KMS/network failures with backoff until ``timeout``:
    one deadline shared by every secret, every retry and every request."""
    deadline = time.monotonic() + timeout
    result = Result()
    try:
        env = build_envelope(cfg, deadline=timeout, give_up_at=deadline)
    except ConfigError as exc:
        result.failures.append(Failure("*", ExitCode.CONFIG, str(exc)))
        return result
    pending = list(cfg.secrets)
    attempt = 0
    while pending:
        attempt += 1
        retry: list[tuple[SecretConfig, str]] = []
        for s in pending:
            try:
                result.plaintexts[s.name] = decrypt_source(env, _fetch(s, cfg), s)
                log("info", "secret.decrypted", secret=s.name, attempt=attempt)
            except KeyUnavailableError as exc:
                result.failures.append(Failure(s.name, ExitCode.CONFIG, str(exc)))
            except DecryptionError as exc:
                result.failures.append(Failure(s.name, ExitCode.DECRYPT, str(exc)))
            except ConfigError as exc:
                result.failures.append(Failure(s.name, ExitCode.CONFIG, str(exc)))
            except KmsError as exc:
                retry.append((s, str(exc)))
        if not retry:
            break
        delay = random.uniform(0.5, 1.0) * min(8.0, 0.25 * 2**attempt)  # noqa: S311 - jitter
        if time.monotonic() + delay > deadline:
            for s, message in retry:
                result.failures.append(
                    Failure(s.name, ExitCode.KMS, f"{message} (gave up after {timeout:g}s)")
                )
            break
        for s, message in retry:
            log("warning", "secret.retry", secret=s.name, attempt=attempt, reason=message)
        sleep(delay)
        pending = [s for s, _ in retry]
    return result


def _report(result: Result, log: Log) -> int:
    for f in result.failures:
        log("error", "secret.failed", secret=f.secret, reason=f.message)
    return max(f.code for f in result.failures) if result.failures else ExitCode.OK


def _render_all(cfg: InitConfig, result: Result) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for s in cfg.secrets:
        if s.name in result.plaintexts:
            try:
                files[s.target or s.name] = render(
                    result.plaintexts[s.name], s.name, s.form, s.keys
                )
            except ConfigError as exc:
                result.failures.append(Failure(s.name, ExitCode.CONFIG, str(exc)))
    return files


def _publish_once(cfg: InitConfig, out_dir: Path, timeout: float, log: Log) -> Published:
    assert cfg.output is not None
    result = decrypt_all(cfg, timeout, log)
    files = _render_all(cfg, result)
    if result.failures:
        log("error", "init.failed", published=0, failed=len(result.failures))
        first = result.failures[0]
        reason = f"secret {first.secret}: {first.message}"
        if len(result.failures) > 1:
            reason += f" (and {len(result.failures) - 1} more)"
        return Published(_report(result, log), reason=reason)
    try:
        publish(out_dir, files, mode=cfg.output.mode, uid=cfg.output.uid, gid=cfg.output.gid)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        log("error", "output.failed", directory=str(out_dir), reason=reason)
        return Published(ExitCode.IO, reason=f"cannot write {out_dir}: {reason}")
    log("info", "init.done", published=len(files), directory=str(out_dir))
    return Published(ExitCode.OK, digest(files))


def run_init(
    config_path: str,
    *,
    timeout: float | None = None,
    allow_disk: bool = False,
    log_format: str = "text",
    refresh: float | Refresh | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Runs ``envelope init``; returns the exit code.

    With ``refresh`` (seconds, or a :class:`Refresh`) it keeps running after the first
    publish (a native sidecar), decrypting and publishing again every interval so
    rotated secrets reach the app; a failed refresh is logged and the last good set
    stays. A :class:`Refresh` may also serve ``/healthz`` and ``/metrics``
    (:mod:`envelope.k8s._health`) and run on-change actions after a republish that
    changed the files (:mod:`envelope.k8s._on_change`).
    """
    log = Log(log_format)
    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        log("error", "config.invalid", reason=str(exc))
        return ExitCode.CONFIG
    if cfg.output is None:
        log("error", "config.invalid", reason="envelope init needs 'output': {directory: ...}")
        return ExitCode.CONFIG
    out_dir = Path(cfg.output.directory)
    try:
        if not out_dir.is_dir():
            raise ConfigError(f"output directory {out_dir} does not exist: mount the volume there")
        fs = check_memory_backed(out_dir, allow_disk=allow_disk)
    except ConfigError as exc:
        log("error", "output.refused", directory=str(out_dir), reason=str(exc))
        return ExitCode.DISK if "refusing" in str(exc) else ExitCode.CONFIG
    log(
        "info",
        "init.start",
        secrets=len(cfg.secrets),
        directory=str(out_dir),
        filesystem=fs or "unknown",
    )
    budget = timeout or cfg.timeout
    settings = Refresh(refresh) if isinstance(refresh, (int, float)) else refresh
    if settings is None:
        return _publish_once(cfg, out_dir, budget, log).code
    return run_refresh(
        settings, budget, out_dir, log, lambda: _publish_once(cfg, out_dir, budget, log), sleep
    )


def exec_environment(cfg: InitConfig, result: Result) -> dict[str, str]:
    """Environment variables from the decrypted secrets (dotenv/json keys; raw via ``env``)."""
    out: dict[str, str] = {}
    for s in cfg.secrets:
        plaintext = result.plaintexts[s.name]
        if s.form == "raw":
            if not s.env:
                raise ConfigError(f"secret {s.name}: form raw needs 'env: NAME' for envelope exec")
            try:
                out[s.env] = plaintext.decode("utf-8")
            except UnicodeDecodeError:
                raise ConfigError(
                    f"secret {s.name}: not UTF-8 text, cannot be an environment variable"
                ) from None
            continue
        for key, value in entries(plaintext, s.name, s.form, s.keys).items():
            if not ENV_NAME.match(key):
                raise ConfigError(
                    f"secret {s.name}: {key!r} is not a valid environment variable name"
                )
            out[key] = value if isinstance(value, str) else json.dumps(value)
    return out


def run_exec(
    config_path: str, command: list[str], *, timeout: float | None = None, log_format: str = "text"
) -> int:
    """Runs ``envelope exec``: on success this process becomes ``command``."""
    log = Log(log_format)
    if not command:
        log(
            "error",
            "exec.usage",
            reason="give the command after --: envelope exec --config F -- CMD ARGS",
        )
        return ExitCode.USAGE
    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        log("error", "config.invalid", reason=str(exc))
        return ExitCode.CONFIG
    result = decrypt_all(cfg, timeout or cfg.timeout, log)
    if result.failures:
        return _report(result, log)
    try:
        env = exec_environment(cfg, result)
    except (ConfigError, EnvelopeError) as exc:
        log("error", "exec.failed", reason=str(exc))
        return ExitCode.CONFIG
    log("info", "exec.start", command=os.path.basename(command[0]), variables=len(env))
    try:
        os.execvpe(command[0], command, child_environment(os.environ, env))  # noqa: S606 - exec
    except OSError as exc:
        log("error", "exec.failed", command=command[0], reason=exc.strerror or str(exc))
        return 127
    return ExitCode.OK  # pragma: no cover - execvpe does not return
