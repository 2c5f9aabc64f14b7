"""Logs, metrics and traces of KMS calls, the data-key cache and the bytes processed.

Logs go to the ``envelope`` logger and its children (``envelope.kms``,
``envelope.cache``, ``envelope.data``), silent by default (a ``NullHandler``, as pyca
and boto do): an application that configures logging sees them. Each record carries
structured fields in ``extra`` (``backend``, ``key_id``, ``operation``, ``outcome``,
``ms``, ``bytes``, ``records``, ``side``, ``reason``); never key material, plaintext,
wrapped keys or tokens.

With ``opentelemetry-api`` installed (extra ``otel``), KMS calls and cache fills are
spans and the counters below are OpenTelemetry metrics, reported through whatever
tracer and meter providers the application sets (none set: the API's no-ops). Without
it, every hook is one global read and a branch. KMS call counts are also kept here in
process (:func:`kms_call_counts`), for ``envelope init --refresh``'s ``/metrics``.

Metrics (docs/operations.md): ``envelope.kms.calls`` and ``envelope.kms.duration`` (s)
by ``envelope.kms.backend``, ``envelope.kms.operation``, ``envelope.kms.outcome``;
``envelope.cache.hits``, ``.misses``, ``.evictions`` by ``envelope.cache.side``;
``envelope.bytes`` and ``envelope.records`` by ``envelope.operation``.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from envelope.errors import DecryptionError, KmsError

__all__ = [
    "KmsCall",
    "cache_evicted",
    "cache_fill",
    "cache_hit",
    "cache_miss",
    "cached_message",
    "configure",
    "count_native_calls",
    "disable",
    "enabled",
    "kms_call",
    "kms_call_counts",
    "measuring",
    "native_kms_calls_unseen",
    "processed",
]

logger = logging.getLogger("envelope")
logger.addHandler(logging.NullHandler())
_kms_log = logging.getLogger("envelope.kms")
_cache_log = logging.getLogger("envelope.cache")
data_log = logging.getLogger("envelope.data")


#: None until first use; then whether opentelemetry-api (the otel extra) is installed.
#: Neither the API (~40 ms) nor the search for it (~4 ms) happens at import: every
#: ``envelope`` command would pay for them.
_available: bool | None = None


def _api_installed() -> bool:
    global _available  # noqa: PLW0603 - looked up once
    if _available is None:
        _available = importlib.util.find_spec("opentelemetry") is not None
    return _available


_SCOPE = "envelope"
_SIDES = {s: {"envelope.cache.side": s} for s in ("encrypt", "decrypt")}
_OPERATIONS = {
    op: {"envelope.operation": op}
    for op in ("encrypt", "decrypt", "encrypt_batch", "decrypt_batch")
}


class _Otel:
    """The tracer and instruments, made from one pair of providers."""

    def __init__(self, tracer_provider: Any, meter_provider: Any) -> None:
        _otel_trace = importlib.import_module("opentelemetry.trace")
        _otel_metrics = importlib.import_module("opentelemetry.metrics")
        self._metrics_api = _otel_metrics
        self._given_meter = meter_provider is not None
        # Where the API keeps the global meter provider (None: we were given one).
        self._global_state = (
            None
            if self._given_meter
            else importlib.import_module("opentelemetry.metrics._internal")
        )
        proxy = getattr(
            importlib.import_module("opentelemetry.metrics._internal"), "_ProxyMeterProvider", None
        )
        self._idle = tuple(t for t in (_otel_metrics.NoOpMeterProvider, proxy) if t is not None)
        # Where the API keeps the global tracer provider (None: we were given one).
        self._trace_state = None if tracer_provider is not None else _otel_trace
        tracer = (tracer_provider or _otel_trace.get_tracer_provider()).get_tracer(_SCOPE)
        meter = (meter_provider or _otel_metrics.get_meter_provider()).get_meter(_SCOPE)
        self.tracer = tracer
        self.error = _otel_trace.StatusCode.ERROR
        self.client = _otel_trace.SpanKind.CLIENT
        self.kms_calls = meter.create_counter("envelope.kms.calls", "{call}", "KMS calls")
        self.kms_duration = meter.create_histogram(
            "envelope.kms.duration", "s", "Duration of KMS calls"
        )
        self.hits = meter.create_counter("envelope.cache.hits", "{hit}", "Data-key cache hits")
        self.misses = meter.create_counter(
            "envelope.cache.misses", "{miss}", "Data-key cache misses (each one KMS fill)"
        )
        self.evictions = meter.create_counter(
            "envelope.cache.evictions", "{entry}", "Data-key cache entries evicted"
        )
        self.bytes = meter.create_counter("envelope.bytes", "By", "Plaintext bytes processed")
        self.records = meter.create_counter(
            "envelope.records", "{record}", "Messages and batch records processed"
        )

    def counting(self) -> bool:
        """False while no count can be received: our meter came from the API's global
        proxy and no meter provider has been set since, so the proxy would drop the
        count (once one is set the proxy forwards, and this is True again). One
        attribute read, for the per-message hooks; an API without that attribute
        counts always."""
        state = self._global_state
        return state is None or getattr(state, "_METER_PROVIDER", state) is not None

    def tracing(self) -> bool:
        """False while no span can be received: our tracer came from the API's global
        proxy and no tracer provider has been set since, so every span would be a
        non-recording no-op (once one is set, this is True again). As
        :meth:`counting`: one attribute read, for the per-KMS-call hook."""
        state = self._trace_state
        return state is None or getattr(state, "_TRACER_PROVIDER", state) is not None

    def reports_metrics(self) -> bool:
        """True unless the meter provider is the API's no-op default (no SDK set): then
        a count that costs a pass over the records is not worth making."""
        if self._given_meter:
            return True
        return not isinstance(self._metrics_api.get_meter_provider(), self._idle)


_otel: _Otel | None = None  # made on first use (see _api_installed)
_otel_lock = threading.Lock()

#: False once OpenTelemetry is known not to be reported to (not installed, or
#: :func:`disable`): hot paths test it before calling a hook, so that without
#: opentelemetry a cached message pays one attribute read per hook. True until the
#: first hook has looked.
active: bool = True


def _current() -> _Otel | None:
    """The tracer and instruments, made (and the API imported) on first use."""
    global _otel, active  # noqa: PLW0603 - made once, on first use
    if _otel is None and active:
        with _otel_lock:
            if _otel is None and active:
                if _api_installed():
                    _otel = _Otel(None, None)
                else:
                    active = False
    return _otel


def configure(tracer_provider: Any = None, meter_provider: Any = None) -> None:
    """Reports to these OpenTelemetry providers (None: the global ones, the default).

    Does nothing without opentelemetry-api.
    """
    global _otel, active  # noqa: PLW0603 - the one switch of this module
    if _api_installed():
        _otel = _Otel(tracer_provider, meter_provider)
        active = True


def disable() -> None:
    """Stops reporting to OpenTelemetry (logs and in-process KMS counts go on). The
    ``envelope`` command calls it unless an ``OTEL_*`` variable is set."""
    global _otel, active
    _otel, active = None, False


def enabled() -> bool:
    """True when spans and metrics are reported (opentelemetry-api is installed and
    reporting was not disabled)."""
    return active and _api_installed()


# -- KMS calls ----------------------------------------------------------------------------

_counts_lock = threading.Lock()
_counts: dict[tuple[str, str, str], list[float]] = {}


def kms_call_counts() -> dict[tuple[str, str, str], tuple[int, float]]:
    """KMS calls of this process so far: (backend, operation, outcome) -> (calls,
    total seconds)."""
    with _counts_lock:
        out = {k: (int(v[0]), v[1]) for k, v in _counts.items()}
    for source in _native_sources:
        for (backend, operation), n in source().items():
            if n:
                calls, seconds = out.get((backend, operation, "ok"), (0, 0.0))
                out[backend, operation, "ok"] = (calls + n, seconds)
    return out


def _outcome(exc: BaseException | None) -> str:
    if exc is None:
        return "ok"
    if isinstance(exc, DecryptionError):
        return "invalid"  # the KMS refused the wrapped key (tampered, wrong key)
    return "error"


class KmsCall:
    """One KMS call under way (the context manager :func:`kms_call` returns); the caller
    may set ``key_id`` once the result names it."""

    __slots__ = ("_span", "_start", "backend", "key_id", "operation")

    def __init__(self, backend: str, operation: str, key_id: str | None = None) -> None:
        self.backend = backend
        self.operation = operation
        self.key_id = key_id
        self._span: Any = None
        self._start = 0.0

    def __enter__(self) -> KmsCall:
        otel = _otel if _otel is not None else _current()
        if otel is not None and otel.tracing():  # a leaf span, not made current (cheaper)
            self._span = otel.tracer.start_span(
                f"envelope.kms.{self.operation}",
                kind=otel.client,
                attributes={
                    "envelope.kms.backend": self.backend,
                    "envelope.kms.operation": self.operation,
                },
            )
        self._start = time.perf_counter()
        return self

    def __exit__(self, kind: object, error: BaseException | None, tb: object) -> None:
        seconds = time.perf_counter() - self._start
        outcome = "ok" if error is None else _outcome(error)
        key = (self.backend, self.operation, outcome)
        with _counts_lock:
            entry = _counts.get(key)
            if entry is None:
                entry = _counts[key] = [0.0, 0.0]
            entry[0] += 1
            entry[1] += seconds
        if error is None:
            if _kms_log.isEnabledFor(logging.DEBUG):
                self._log(logging.DEBUG, outcome, seconds, None)
        else:
            serious = not isinstance(error, (KmsError, DecryptionError))
            self._log(logging.ERROR if serious else logging.WARNING, outcome, seconds, error)
        span, otel = self._span, (_otel if _otel is not None else _current())
        if span is not None and otel is not None:
            span.set_attribute("envelope.kms.outcome", outcome)
            if self.key_id is not None:
                span.set_attribute("envelope.kms.key_id", self.key_id)
            if error is not None:
                span.set_status(otel.error, type(error).__name__)
            span.end()
        if otel is not None and otel.counting():
            attrs = {
                "envelope.kms.backend": self.backend,
                "envelope.kms.operation": self.operation,
                "envelope.kms.outcome": outcome,
            }
            otel.kms_calls.add(1, attrs)
            otel.kms_duration.record(seconds, attrs)

    def _log(self, level: int, outcome: str, seconds: float, error: BaseException | None) -> None:
        fields: dict[str, object] = {
            "backend": self.backend,
            "key_id": self.key_id or "",
            "operation": self.operation,
            "outcome": outcome,
            "ms": round(seconds * 1000, 3),
        }
        if error is not None:
            fields["reason"] = _reason(error)
        _kms_log.log(
            level,
            "kms %s %s: %s (%.1f ms%s)",
            self.backend,
            self.operation,
            outcome,
            seconds * 1000,
            f"; {fields['reason']}" if error is not None else "",
            extra=fields,
        )


#: ``kms_call(backend, operation, key_id=None)``: times, counts, logs and traces one
#: KMS call (``generate``, ``wrap``, ``unwrap``, ``rewrap``) of the backend whose
#: provider id is ``backend``: use as ``with``; an exception raised inside passes
#: through unchanged. The class itself: no wrapper call per KMS call.
kms_call = KmsCall


def native_kms_calls_unseen() -> bool:
    """True when a KMS call made inside a native call (the local keyring's one-call
    message path) loses nothing :func:`kms_call` would report: no span would be
    recorded and ``envelope.kms`` does not log at DEBUG. Else callers take the path
    that wraps the call in :func:`kms_call`."""
    otel = _otel if _otel is not None else _current()
    return (otel is None or not otel.tracing()) and not _kms_log.isEnabledFor(logging.DEBUG)


def count_native_calls(source: Callable[[], dict[tuple[str, str], int]]) -> None:
    """Adds ``source`` to :func:`kms_call_counts`: it returns the successful KMS calls,
    by (backend, operation), that native code made and counted itself (the local
    keyring's one-call messages), which are not timed (they take well under a
    microsecond)."""
    _native_sources.append(source)


_native_sources: list[Callable[[], dict[tuple[str, str], int]]] = []


def _reason(error: BaseException) -> str:
    """What failed, in the words of envelope's own errors (which carry no key material);
    for any other exception only its type."""
    if isinstance(error, KmsError):
        return str(error)[:500]
    if isinstance(error, DecryptionError):
        return "the KMS refused the wrapped key"
    return type(error).__name__


# -- the data-key cache ---------------------------------------------------------------


def cache_hit(side: str) -> None:
    """One cache hit on ``side`` (``encrypt`` or ``decrypt``)."""
    otel = _current()
    if otel is not None and otel.counting():
        otel.hits.add(1, _SIDES[side])


def cached_message(side: str, nbytes: int) -> None:
    """One message of ``nbytes`` plaintext bytes served from the cache on ``side``
    (``encrypt`` or ``decrypt``): :func:`cache_hit` and :func:`processed` in one hook,
    for the per-message fast path."""
    otel = _otel if _otel is not None else _current()
    if otel is not None and otel.counting():
        otel.hits.add(1, _SIDES[side])
        attrs = _OPERATIONS[side]
        otel.bytes.add(nbytes, attrs)
        otel.records.add(1, attrs)


def cache_miss(side: str) -> None:
    """One cache miss (a fill follows)."""
    otel = _current()
    if otel is not None:
        otel.misses.add(1, _SIDES[side])


def cache_evicted(side: str) -> None:
    """One entry evicted (expired, used up, displaced or cleared)."""
    otel = _current()
    if otel is not None:
        otel.evictions.add(1, _SIDES[side])


class _CacheFill:
    __slots__ = ("_scope", "_side", "_start")

    def __init__(self, side: str) -> None:
        self._side = side
        self._scope: Any = None
        self._start = 0.0

    def __enter__(self) -> None:
        otel = _current()
        if otel is not None:  # current: the fill's KMS calls are its children
            self._scope = otel.tracer.start_as_current_span(
                "envelope.cache.fill", attributes=_SIDES[self._side], record_exception=False
            )
            self._scope.__enter__()
        self._start = time.perf_counter()

    def __exit__(self, kind: object, error: BaseException | None, tb: object) -> None:
        if _cache_log.isEnabledFor(logging.DEBUG):
            ms = (time.perf_counter() - self._start) * 1000
            outcome = "ok" if error is None else "error"
            _cache_log.debug(
                "cache fill (%s): %s (%.1f ms)",
                self._side,
                outcome,
                ms,
                extra={"side": self._side, "outcome": outcome, "ms": round(ms, 3)},
            )
        if self._scope is not None:
            self._scope.__exit__(None, None, None)


def cache_fill(side: str) -> _CacheFill:
    """A cache fill (the KMS call(s) behind a miss on ``side``): a span and a debug log
    line; use as ``with``, an exception raised inside passes through unchanged."""
    return _CacheFill(side)


# -- data processed -------------------------------------------------------------------


def measuring() -> bool:
    """True when :func:`processed` reports anywhere (an OpenTelemetry meter provider that
    is not the API's no-op default, or ``envelope.data`` at DEBUG): callers whose byte
    count costs a pass over the records compute it only then."""
    otel = _current() if active else None
    return (otel is not None and otel.reports_metrics()) or data_log.isEnabledFor(logging.DEBUG)


def processed(operation: str, nbytes: int, records: int = 1) -> None:
    """``records`` messages or batch records of ``nbytes`` plaintext bytes in all went
    through ``operation`` (``encrypt``, ``decrypt``, ``encrypt_batch``,
    ``decrypt_batch``)."""
    otel = _otel if _otel is not None else _current()
    if otel is not None and otel.counting():
        attrs = _OPERATIONS[operation]
        otel.bytes.add(nbytes, attrs)
        otel.records.add(records, attrs)
