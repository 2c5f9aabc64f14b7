"""The KMS probe behind ``Status``: cached health and the current KEK version.

kube-apiserver polls ``Status`` often; each answer must say whether the KMS really
answers (``healthz``) and name the KEK new writes use (``key_id``, including its
version, so a rotation makes the apiserver's KMS v2 staleness check re-encrypt). The
probe makes at most one call per backend per ``interval`` seconds; between probes the
last result is served. Concurrent callers share one probe (single flight).

Per backend, one probe is:

- local keyring: a ``stat`` of the keyring file; if it changed (``envelope keyring
  rotate`` in another process), the backends are rebuilt from their settings, so the
  new KEK version is used for new writes and reported in ``key_id``;
- AWS KMS: one DescribeKey (key enabled; ``CurrentKeyMaterialId`` as the version where
  AWS reports it);
- Vault / OpenBao Transit: one read of the key (``latest_version``);
- any other backend: ``health()``, with no version.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from envelope.errors import ConfigError, EnvelopeError, KmsError
from envelope.kms import AwsKms, KmsBackend, LocalKms, VaultTransit

__all__ = ["KEY_ID_MAX_BYTES", "Health", "KekMonitor", "compose_key_id", "kek_version"]

#: kube-apiserver rejects key ids longer than this (KMS v2 ``KeyIDMaxSize``).
KEY_ID_MAX_BYTES = 1024
#: healthz texts are cut to this length (they end up in the apiserver's /healthz).
HEALTHZ_MAX_CHARS = 512

Backends = tuple[KmsBackend, ...]


def kek_version(backend: KmsBackend) -> str:
    """The version of ``backend``'s KEK that new wraps use, with at most one KMS call;
    ``""`` when the backend does not expose one.

    Raises:
        KmsError: the KMS did not answer, or the key is not usable.
    """
    if isinstance(backend, LocalKms):
        return str(backend.current_version)
    if isinstance(backend, VaultTransit):
        return str(backend.key_info().get("latest_version", ""))
    if isinstance(backend, AwsKms):
        meta = backend.key_metadata()
        if meta.get("KeyState") != "Enabled" or not meta.get("Enabled", True):
            raise KmsError(f"AWS KMS key {backend.key_id} is {meta.get('KeyState')}; enable it")
        return str(meta.get("CurrentKeyMaterialId") or "")
    backend.health()
    return ""


def compose_key_id(
    versions: Sequence[tuple[KmsBackend, str]], cluster_id: str | None, threshold: int | None
) -> str:
    """The ``key_id`` reported to kube-apiserver: every custodian's provider, KEK id and
    version, the cluster-secret part id and the threshold; hashed if over 1 kB.

    >>> compose_key_id([], None, None)
    'envelope'
    """
    parts = [f"{b.provider_id}:{_safe_id(b)}" + (f"@v{v}" if v else "") for b, v in versions]
    if threshold is not None:
        parts.append(f"threshold:{threshold}-of-{len(versions)}")
    if cluster_id:
        parts.append(f"cluster:{cluster_id}")
    key_id = "+".join(["envelope", *parts])
    if len(key_id.encode()) > KEY_ID_MAX_BYTES:
        key_id = "envelope-sha256:" + hashlib.sha256(key_id.encode()).hexdigest()
    return key_id


@dataclass(frozen=True)
class Health:
    """One probe's outcome."""

    healthz: str  # "ok", or why not
    key_id: str
    checked_at: float

    @property
    def ok(self) -> bool:
        """True when every backend answered."""
        return self.healthz == "ok"


def _keyring_files(backends: Backends) -> tuple[tuple[str, int, int, int] | None, ...]:
    out: list[tuple[str, int, int, int] | None] = []
    for b in backends:
        if isinstance(b, LocalKms) and b.path is not None:
            try:
                st = os.stat(b.path)
            except OSError:
                out.append(None)
                continue
            out.append((str(b.path), st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


class KekMonitor:
    """Probes the backends at most once per ``interval`` and tracks the current KEK.

    Args:
        build: returns the configured backends (called once now, and again when a local
            keyring file changes on disk).
        interval: seconds a probe result is served before the next probe.
        on_change: called with the backends and the new ``key_id`` whenever either changes
            (the service installs them for new Encrypt calls).
        cluster_id: the cluster-secret part id, part of ``key_id``.
        threshold: the k of a k-of-n split, part of ``key_id``.
        on_probe: called with True/False after each probe (metrics).
        clock: a monotonic clock (tests inject one).

    Raises:
        ConfigError, KmsError: ``build`` failed at start (a bad configuration is fatal
            at start; later failures only turn ``healthz`` red).
        ValueError: ``interval`` is not positive.
    """

    def __init__(
        self,
        build: Callable[[], Sequence[KmsBackend]],
        *,
        interval: float,
        on_change: Callable[[Backends, str], None],
        cluster_id: str | None = None,
        threshold: int | None = None,
        on_probe: Callable[[bool], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval <= 0:
            raise ValueError("the probe interval must be positive")
        self.interval = interval
        self._build = build
        self._on_change = on_change
        self._on_probe = on_probe
        self._cluster_id = cluster_id
        self._threshold = threshold
        self._clock = clock
        self._lock = threading.Lock()
        self._probe_started = float("-inf")
        self._backends: Backends = tuple(build())
        if not self._backends:
            raise ConfigError("the KMS plugin needs at least one KMS backend")
        self._files = _keyring_files(self._backends)
        self._versions = ["" for _ in self._backends]
        self._health = Health("not probed yet", self._key_id(), float("-inf"))
        self._on_change(self._backends, self._health.key_id)

    @property
    def backends(self) -> Backends:
        """The backends in use."""
        return self._backends

    def _key_id(self) -> str:
        return compose_key_id(
            list(zip(self._backends, self._versions, strict=True)),
            self._cluster_id,
            self._threshold,
        )

    def fresh(self) -> bool:
        """True while the last probe result is served without probing."""
        return self._clock() - self._health.checked_at < self.interval

    def current(self) -> Health:
        """The last probe's result if younger than ``interval``, else a fresh probe.

        While another caller's probe is running, this returns the last result at once,
        or, once that probe has run for ``interval`` without an answer, a healthz saying
        the KMS is not answering (a hung KMS never blocks Status callers).
        """
        health = self._health
        now = self._clock()
        if now - health.checked_at < self.interval:
            return health
        if not self._lock.acquire(blocking=False):
            waited = now - self._probe_started
            return self.unanswered(waited) if waited >= self.interval else health
        try:
            health = self._health
            if self._clock() - health.checked_at < self.interval:
                return health  # another caller probed just before this one
            return self._probe()
        finally:
            self._lock.release()

    def unanswered(self, waited: float) -> Health:
        """A healthz saying the probe has not answered within ``waited`` seconds (for a
        caller that stops waiting for it), with the last known key id."""
        health = self._health
        return Health(
            f"the KMS has not answered the health probe for {waited:.1f} s",
            health.key_id,
            health.checked_at,
        )

    def _probe(self) -> Health:
        started = self._clock()
        self._probe_started = started
        problems: list[str] = []
        rebuilt_now = False
        if _keyring_files(self._backends) != self._files:
            try:
                rebuilt = tuple(self._build())
            except EnvelopeError as exc:
                problems.append(f"cannot reload the local keyring: {exc}")
            else:
                self._backends, self._files = rebuilt, _keyring_files(rebuilt)
                self._versions = ["" for _ in rebuilt]
                rebuilt_now = True
        old_key_id = self._health.key_id
        for i, backend in enumerate(self._backends):
            try:
                self._versions[i] = kek_version(backend)
            except EnvelopeError as exc:
                problems.append(f"{backend.provider_id} key {_safe_id(backend)}: {exc}")
        healthz = "ok" if not problems else "; ".join(problems)[:HEALTHZ_MAX_CHARS]
        # A failed probe keeps the last known versions: key_id only moves on evidence.
        health = Health(healthz, self._key_id(), started)
        self._health = health
        if self._on_probe is not None:
            self._on_probe(health.ok)
        if health.key_id != old_key_id or rebuilt_now:
            self._on_change(self._backends, health.key_id)
        return health

    def refresh(self) -> Health:
        """Probes now, whatever the age of the last result (start-up, tests)."""
        with self._lock:
            return self._probe()


def _safe_id(backend: KmsBackend) -> str:
    try:
        return backend.key_id
    except EnvelopeError:  # AwsKms resolves its ARN with a KMS call
        return "(unresolved)"
