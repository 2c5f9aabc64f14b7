"""The ``v2.KeyManagementService`` handlers: Status, Encrypt, Decrypt.

Encrypt seals the apiserver's DEK seed as one envelope message (a fresh data key from
the configured backends, split with the node's cluster-secret part when one is given).
The message's encryption context is ``{"purpose": "kubernetes-kms-v2", "key-id":
sha256(key_id)[:16]}``: stable across Encrypt and Decrypt (the apiserver stores the
``key_id`` it got from Encrypt and sends it back on Decrypt), unlike the request uid,
which is per call. The annotations say what decryption needs and nothing secret:

- ``version.envelope.dev``: ``1``, this plugin's ciphertext format;
- ``providers.envelope.dev``: the message's key slots, ``provider:key_id`` joined by ``,``;
- ``cluster-secret.envelope.dev``: the cluster-secret part id, when split.

Decrypt checks sizes before parsing anything, recomputes the annotations from the
message header and requires an exact match, then decrypts with the context bound to the
request's ``key_id``. Every failure is a gRPC status; none returns a wrong plaintext.

Decrypted seeds are cached (``DataKeyCache``: ``cache_ttl`` seconds, ``cache_entries``
entries, zeroed on eviction), keyed by the SHA-256 of the exact ciphertext and the
key_id, and filled by Encrypt as well as Decrypt, so a seed seen recently keeps
decrypting while the KMS is down, and a cache hit
is answered on the gRPC thread without touching the KMS. Encrypt has no cache: while
the KMS is down it fails with ``UNAVAILABLE``. Calls that may reach a remote KMS run on
a separate pool so that ``request_timeout`` (or the caller's deadline) bounds them.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import grpc

from envelope._envelope import Envelope
from envelope._format.inspect import MessageInfo, inspect
from envelope._keys.cache import DataKeyCache
from envelope._keys.cluster import ClusterSecret
from envelope.errors import (
    DecryptionError,
    EnvelopeError,
    FormatError,
    KeyUnavailableError,
    KmsError,
)
from envelope.kms import KmsBackend, LocalKms
from envelope.plugin._health import KEY_ID_MAX_BYTES, Health, KekMonitor
from envelope.plugin._metrics import Metrics
from envelope.plugin._proto import api_pb2, api_pb2_grpc

__all__ = [
    "ANNOTATIONS_MAX_BYTES",
    "CIPHERTEXT_MAX_BYTES",
    "FORMAT_VERSION",
    "PLAINTEXT_MAX_BYTES",
    "KmsService",
]

log = logging.getLogger("envelope.plugin")
T = TypeVar("T")

API_VERSION = "v2"
FORMAT_VERSION = b"1"
#: kube-apiserver's limit on Encrypt's ciphertext (``encryptedDEKSourceMaxSize``).
CIPHERTEXT_MAX_BYTES = 1024
#: kube-apiserver's limit on annotation keys + values (exclusive).
ANNOTATIONS_MAX_BYTES = 32 * 1024
#: The apiserver sends a 32-byte DEK seed; anything much larger is not from it.
PLAINTEXT_MAX_BYTES = 256
UID_LOG_MAX_CHARS = 128
CONTEXT_PURPOSE = "kubernetes-kms-v2"
A_VERSION = "version.envelope.dev"
A_PROVIDERS = "providers.envelope.dev"
A_CLUSTER = "cluster-secret.envelope.dev"


class _Abort(Exception):
    """A handler's failure, mapped to one gRPC status by ``_call``."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


@dataclass(frozen=True)
class _Keys:
    """What Encrypt uses, swapped as one object when the KEK changes."""

    envelope: Envelope
    key_id: str


def _context(key_id: str) -> dict[str, str]:
    digest = hashlib.sha256(key_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return {"purpose": CONTEXT_PURPOSE, "key-id": digest}


def annotations_for(info: MessageInfo) -> dict[str, bytes]:
    """The annotations that go with a message (from its public header only)."""
    out = {
        A_VERSION: FORMAT_VERSION,
        A_PROVIDERS: ",".join(f"{w.provider}:{w.key_id}" for w in info.wrapped_keys).encode(),
    }
    if info.cluster_secret_id:
        out[A_CLUSTER] = info.cluster_secret_id.encode()
    return out


def _fail(code: grpc.StatusCode, details: str) -> NoReturn:
    raise _Abort(code, details)


class _Miss(Exception):
    """Not in the Decrypt cache (raised instead of calling the KMS inline)."""


def _miss() -> tuple[dict[str, bytes], bytearray]:
    raise _Miss


class KmsService(api_pb2_grpc.KeyManagementServiceServicer):
    """The KMS v2 service over envelope's backends.

    Args:
        build: returns the configured backends (again when a local keyring changes).
        cluster_secret: the node-local cluster-secret part(s), or None.
        threshold: k for a k-of-n split across the backends, or None.
        probe_interval: seconds between KMS health probes (``Status`` is cached).
        cache_ttl: seconds an unwrapped DEK seed stays usable for Decrypt.
        cache_entries: unwrapped DEK seeds held at most.
        metrics: where RPCs and probes are counted.
        request_timeout: seconds a call may take (or the client's deadline, if sooner);
            then it fails with DEADLINE_EXCEEDED while the KMS call finishes in the
            background (bounded by the backend's own timeouts).
        kms_threads: threads that run calls which may reach a remote KMS.

    Raises:
        ConfigError, KmsError: the backends cannot be built.
        ValueError: a non-positive interval, TTL or size.
    """

    def __init__(
        self,
        build: Callable[[], Sequence[KmsBackend]],
        *,
        cluster_secret: ClusterSecret | None = None,
        threshold: int | None = None,
        probe_interval: float = 10.0,
        cache_ttl: float = 3600.0,
        cache_entries: int = 4096,
        metrics: Metrics | None = None,
        request_timeout: float = 10.0,
        kms_threads: int = 32,
    ) -> None:
        if request_timeout <= 0 or kms_threads <= 0:
            raise ValueError("request_timeout and kms_threads must be positive")
        self.metrics = metrics or Metrics()
        self._request_timeout = request_timeout
        self._kms_pool = ThreadPoolExecutor(kms_threads, thread_name_prefix="kms-call")
        self._inline = False
        self._cluster = cluster_secret
        self._threshold = threshold
        self._cache = DataKeyCache(max_age=cache_ttl, max_entries=cache_entries)
        self._keys: _Keys | None = None
        self.monitor = KekMonitor(
            build,
            interval=probe_interval,
            on_change=self._install,
            cluster_id=cluster_secret.ids[0] if cluster_secret else None,
            threshold=threshold,
            on_probe=self.metrics.probe,
        )

    def _install(self, backends: tuple[KmsBackend, ...], key_id: str) -> None:
        previous = self._keys
        if previous is None or previous.envelope.kms is not backends[0]:
            envelope = Envelope(list(backends), self._cluster, threshold=self._threshold)
            keys = _Keys(envelope, key_id)
        else:
            keys = _Keys(previous.envelope, key_id)
        self._keys = keys
        # Local keyrings never block: their calls run on the gRPC thread, skipping a hop.
        self._inline = all(isinstance(b, LocalKms) for b in backends)
        if previous is not None and previous.key_id != key_id:
            log.info("current KEK changed", extra={"fields": {"key_id": key_id}})

    @property
    def key_id(self) -> str:
        """The key id new Encrypt calls report."""
        assert self._keys is not None
        return self._keys.key_id

    # -- the RPCs ---------------------------------------------------------------------

    def Status(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Version, KMS health and the current key id. Never fails because of the KMS:
        a probe that outlasts the deadline answers a healthz saying so."""
        return self._call("Status", None, context, self._status)

    def Encrypt(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Seals the DEK seed; see the module docstring."""
        return self._call("Encrypt", request.uid, context, lambda t: self._encrypt(request, t))

    def Decrypt(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Opens a ciphertext from Encrypt; see the module docstring."""
        return self._call("Decrypt", request.uid, context, lambda t: self._decrypt(request, t))

    # -- implementations --------------------------------------------------------------

    def _on_kms(self, run: Callable[[], T], timeout: float) -> T:
        """Runs ``run`` (which may call a remote KMS) within ``timeout`` seconds.

        Raises:
            _Abort: DEADLINE_EXCEEDED; anything ``run`` raises.
        """
        if self._inline:
            return run()
        future = self._kms_pool.submit(run)
        try:
            return future.result(timeout)
        except FutureTimeout:
            _fail(
                grpc.StatusCode.DEADLINE_EXCEEDED, f"the KMS did not answer within {timeout:.1f} s"
            )

    def _status(self, timeout: float) -> Any:
        if self.monitor.fresh():
            health: Health = self.monitor.current()
        else:
            try:
                health = self._on_kms(self.monitor.current, timeout)
            except _Abort:  # the probe outlasted the deadline: it goes on in the background
                health = self.monitor.unanswered(timeout)
        return api_pb2.StatusResponse(
            version=API_VERSION, healthz=health.healthz, key_id=health.key_id
        )

    def _encrypt(self, request: Any, timeout: float) -> Any:
        plaintext = request.plaintext
        if not 0 < len(plaintext) <= PLAINTEXT_MAX_BYTES:
            _fail(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"plaintext must be 1 to {PLAINTEXT_MAX_BYTES} bytes, got {len(plaintext)}",
            )
        keys = self._keys
        assert keys is not None
        try:
            ciphertext = self._on_kms(
                lambda: keys.envelope.encrypt(plaintext, context=_context(keys.key_id)), timeout
            )
        except KmsError as exc:
            _fail(grpc.StatusCode.UNAVAILABLE, f"the KMS cannot wrap a new key: {exc}")
        if len(ciphertext) > CIPHERTEXT_MAX_BYTES:
            _fail(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"the sealed DEK seed is {len(ciphertext)} bytes, over kube-apiserver's "
                f"{CIPHERTEXT_MAX_BYTES}-byte limit: configure fewer custodians",
            )
        annotations = annotations_for(inspect(ciphertext))
        # Prime the Decrypt cache: the apiserver reads back what it just wrote, and after
        # a restart during a KMS outage it needs at least its current seed.
        entry = (hashlib.sha256(ciphertext).digest(), keys.key_id)
        self._cache.for_decryption_with(entry, lambda: (annotations, bytearray(plaintext)))
        return api_pb2.EncryptResponse(
            ciphertext=ciphertext, key_id=keys.key_id, annotations=annotations
        )

    @staticmethod
    def _expected_annotations(ciphertext: bytes, given: dict[str, bytes]) -> dict[str, bytes]:
        """The annotations ``ciphertext``'s header implies; checked before any KMS call.

        Raises:
            _Abort: INVALID_ARGUMENT if it is not a message, or ``given`` differs.
        """
        try:
            info = inspect(ciphertext)
        except (FormatError, DecryptionError):
            _fail(grpc.StatusCode.INVALID_ARGUMENT, "ciphertext is not an envelope message")
        expected = annotations_for(info)
        if given != expected:
            _fail(grpc.StatusCode.INVALID_ARGUMENT, "annotations do not match the ciphertext")
        return expected

    def _decrypt(self, request: Any, timeout: float) -> Any:
        ciphertext = request.ciphertext
        key_id: str = request.key_id
        annotations: Mapping[str, bytes] = request.annotations
        if not 0 < len(ciphertext) <= CIPHERTEXT_MAX_BYTES:
            _fail(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"ciphertext must be 1 to {CIPHERTEXT_MAX_BYTES} bytes, got {len(ciphertext)}",
            )
        if not key_id or len(key_id.encode("utf-8", "surrogatepass")) > KEY_ID_MAX_BYTES:
            _fail(grpc.StatusCode.INVALID_ARGUMENT, f"key_id must be 1 to {KEY_ID_MAX_BYTES} bytes")
        size = sum(len(k.encode("utf-8", "surrogatepass")) + len(v) for k, v in annotations.items())
        if size >= ANNOTATIONS_MAX_BYTES:
            _fail(grpc.StatusCode.INVALID_ARGUMENT, "annotations exceed 32 kB")
        version = annotations.get(A_VERSION)
        if version != FORMAT_VERSION:
            _fail(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"annotation {A_VERSION} is missing or names a format this plugin does not read",
            )
        given = dict(annotations)
        keys = self._keys
        assert keys is not None
        # Cache entry: the exact ciphertext and key_id a previous Decrypt succeeded on,
        # with the annotations that ciphertext implies (a hit needs no header parse).
        entry = (hashlib.sha256(ciphertext).digest(), key_id)
        expected: dict[str, bytes]
        try:
            try:
                expected, seed = self._cache.for_decryption_with(entry, _miss)  # no KMS call
            except _Miss:
                expected = self._expected_annotations(ciphertext, given)

                def unwrap() -> tuple[dict[str, bytes], bytearray]:
                    seed = keys.envelope.decrypt(ciphertext, context=_context(key_id))
                    return expected, bytearray(seed)

                expected, seed = self._on_kms(
                    lambda: self._cache.for_decryption_with(entry, unwrap), timeout
                )
        except KeyUnavailableError as exc:
            _fail(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except DecryptionError:
            _fail(
                grpc.StatusCode.INVALID_ARGUMENT,
                "ciphertext does not decrypt: tampered, or not sealed for this key_id",
            )
        except KmsError as exc:
            _fail(grpc.StatusCode.UNAVAILABLE, f"the KMS cannot unwrap the key: {exc}")
        if given != expected:
            seed[:] = bytes(len(seed))
            _fail(grpc.StatusCode.INVALID_ARGUMENT, "annotations do not match the ciphertext")
        try:
            return api_pb2.DecryptResponse(plaintext=bytes(seed))
        finally:
            seed[:] = bytes(len(seed))

    # -- the common wrapper -----------------------------------------------------------

    def _call(
        self,
        method: str,
        uid: str | None,
        context: grpc.ServicerContext,
        run: Callable[[float], Any],
    ) -> Any:
        started = time.perf_counter()
        code, details = grpc.StatusCode.OK, ""
        try:
            timeout = self._request_timeout
            remaining = context.time_remaining()
            if remaining is not None:
                timeout = min(timeout, remaining)
            if timeout <= 0:
                _fail(grpc.StatusCode.DEADLINE_EXCEEDED, "the request deadline passed")
            return run(timeout)
        except _Abort as exc:
            code, details = exc.code, exc.details
        except (ValueError, TypeError) as exc:
            code, details = grpc.StatusCode.INVALID_ARGUMENT, str(exc)
        except EnvelopeError as exc:
            code, details = grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}"
        except Exception:  # a bug: log it (no request bytes), answer INTERNAL
            log.exception("unexpected error", extra={"fields": {"method": method}})
            code, details = grpc.StatusCode.INTERNAL, "internal error (see the plugin's log)"
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.observe(method, code.name, elapsed)
            if method != "Status" or code != grpc.StatusCode.OK:
                fields: dict[str, object] = {
                    "method": method,
                    "code": code.name,
                    "ms": round(elapsed * 1000, 3),
                }
                if uid is not None:
                    fields["uid"] = uid[:UID_LOG_MAX_CHARS]
                if details:
                    fields["error"] = details
                log.log(
                    logging.INFO if code == grpc.StatusCode.OK else logging.WARNING,
                    "rpc",
                    extra={"fields": fields},
                )
        context.abort(code, details)
