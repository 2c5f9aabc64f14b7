"""envelope._telemetry: structured log records that never hold a secret, silence by
default, and OpenTelemetry spans and metrics (the SDK's in-memory exporters)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from envelope import (
    ClusterSecret,
    DataKeyCache,
    DecryptionError,
    Envelope,
    KmsError,
    LocalKms,
    _telemetry,
)
from envelope._format.context import Context
from envelope._format.message import encode_header, parse_header
from envelope.kms._types import DataKey, WrappedKey
from tests.support.log_capture import Capture, capture_envelope_logs, forms, record_text

SECRET = b"the-database-password-7f3a9c"


class SpyKms(LocalKms):
    """The local keyring, keeping every data key and wrapped key it handed out (to look
    for them in the logs), and failing its unwraps on demand (a KMS outage)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[bytes] = []
        self.down = False

    def generate_data_key(self, context: Context) -> DataKey:
        key = super().generate_data_key(context)
        self.seen += [bytes(key.plaintext), key.wrapped.blob]
        return key

    def unwrap(self, wrapped: WrappedKey, context: Context) -> bytearray:
        if self.down:
            raise KmsError("local keyring unreachable (test outage); retry later")
        return super().unwrap(wrapped, context)


@pytest.fixture
def kms() -> SpyKms:
    base = LocalKms.ephemeral()
    return SpyKms(base.key_id, base._keys, base._created, path=None, passphrase=None)


@pytest.fixture
def captured() -> Iterator[Capture]:
    with capture_envelope_logs() as handler:
        yield handler


def test_log_records_never_hold_key_material_plaintext_or_wrapped_keys(
    kms: SpyKms, captured: Capture
) -> None:
    cluster = ClusterSecret.generate()
    env = Envelope(kms, cluster)
    cached = Envelope(kms, cluster, cache=DataKeyCache())
    blob = env.encrypt(SECRET, {"service": "billing"})
    assert env.decrypt(blob, {"service": "billing"}) == SECRET
    assert cached.decrypt(cached.encrypt(SECRET), None) == SECRET
    batch = env.encrypt_batch([SECRET, SECRET + b"2"], context={"column": "pw"})
    assert env.decrypt_batch(batch, context={"column": "pw"}) == [SECRET, SECRET + b"2"]
    header, offset = parse_header(blob)
    slot = header.slots[0]
    forged = bytearray(slot.wrapped)
    forged[-1] ^= 1
    tampered = encode_header(
        header.__class__(
            header.suite,
            header.context,
            header.split,
            (slot.__class__(slot.provider, slot.key_id, bytes(forged)),),
        )
    ) + bytes(blob[offset:])
    with pytest.raises(DecryptionError):
        env.decrypt(tampered, {"service": "billing"})
    kms.down = True
    with pytest.raises(KmsError):
        env.decrypt(blob, {"service": "billing"})

    secrets = [*kms.seen, SECRET, bytes(forged), bytes(cluster.current.material)]
    secrets += [bytes(k) for k in kms._keys.values()]
    assert len(kms.seen) >= 6  # three data keys and their wrapped forms
    assert len(captured.records) >= 8
    for record in captured.records:
        text = record_text(record)
        for secret in secrets:
            for form in forms(secret):
                assert form not in text, (record.getMessage(), form)


def test_kms_calls_are_logged_with_structured_fields(kms: SpyKms, captured: Capture) -> None:
    env = Envelope(kms)
    blob = env.encrypt(b"x")
    env.decrypt(blob)
    kms.down = True
    with pytest.raises(KmsError):
        env.decrypt(blob)
    calls = [r for r in captured.records if r.name == "envelope.kms"]
    assert [(r.operation, r.outcome, r.levelno) for r in calls] == [  # type: ignore[attr-defined]
        ("generate", "ok", logging.DEBUG),
        ("unwrap", "ok", logging.DEBUG),
        ("unwrap", "error", logging.WARNING),
    ]
    for r in calls:
        assert r.backend == "local"  # type: ignore[attr-defined]
        assert r.key_id == kms.key_id  # type: ignore[attr-defined]
        assert isinstance(r.ms, float) and r.ms >= 0  # type: ignore[attr-defined]
    assert "test outage" in calls[-1].reason  # type: ignore[attr-defined]


def test_batches_log_records_and_bytes(kms: SpyKms, captured: Capture) -> None:
    env = Envelope(kms)
    batch = env.encrypt_batch([b"abc", b"defgh"])
    env.decrypt_batch(batch)
    data = [
        (r.operation, r.records, r.bytes) for r in captured.records if r.name == "envelope.data"
    ]  # type: ignore[attr-defined]
    assert data == [("encrypt_batch", 2, 8), ("decrypt_batch", 2, 8)]


def test_the_library_is_silent_by_default(kms: SpyKms, capfd: pytest.CaptureFixture[str]) -> None:
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("envelope").handlers)
    env = Envelope(kms)
    blob = env.encrypt(b"x")
    kms.down = True
    with pytest.raises(KmsError):
        env.decrypt(blob)  # a WARNING record: without the NullHandler, lastResort prints it
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_kms_call_counts_are_kept_in_process(kms: SpyKms) -> None:
    before = _telemetry.kms_call_counts().get(("local", "unwrap", "error"), (0, 0.0))[0]
    env = Envelope(kms)
    blob = env.encrypt(b"x")
    kms.down = True
    with pytest.raises(KmsError):
        env.decrypt(blob)
    assert _telemetry.kms_call_counts()[("local", "unwrap", "error")][0] == before + 1


# -- OpenTelemetry ------------------------------------------------------------------------


@pytest.fixture
def otel() -> Iterator[tuple[InMemorySpanExporter, InMemoryMetricReader]]:
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    meter_provider = MeterProvider(metric_readers=[reader])
    _telemetry.configure(tracer_provider, meter_provider)
    try:
        yield spans, reader
    finally:
        _telemetry.configure()
        meter_provider.shutdown()
        tracer_provider.shutdown()


def points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    data = reader.get_metrics_data()
    assert data is not None
    out: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                out[metric.name] = [
                    (dict(p.attributes or {}), getattr(p, "value", getattr(p, "count", None)))
                    for p in metric.data.data_points
                ]
    return out


def value(series: list[tuple[dict[str, Any], Any]], **attrs: str) -> Any:
    found = [v for a, v in series if all(a.get(k) == x for k, x in attrs.items())]
    assert len(found) == 1, (series, attrs)
    return found[0]


def test_spans_around_kms_calls_and_cache_fills(
    kms: SpyKms, otel: tuple[InMemorySpanExporter, InMemoryMetricReader]
) -> None:
    spans, _ = otel
    env = Envelope(kms, cache=DataKeyCache())
    blob = env.encrypt(b"a")
    env.encrypt(b"b")  # a hit: no new span
    Envelope(kms).decrypt(blob)
    kms.down = True
    with pytest.raises(KmsError):
        Envelope(kms).decrypt(blob)
    finished = spans.get_finished_spans()
    assert [s.name for s in finished] == [
        "envelope.kms.generate",
        "envelope.cache.fill",
        "envelope.kms.unwrap",
        "envelope.kms.unwrap",
    ]
    generate, fill, ok, failed = finished
    assert generate.parent is not None and generate.parent.span_id == fill.context.span_id
    assert generate.attributes == {
        "envelope.kms.backend": "local",
        "envelope.kms.operation": "generate",
        "envelope.kms.outcome": "ok",
        "envelope.kms.key_id": kms.key_id,
    }
    assert fill.attributes == {"envelope.cache.side": "encrypt"}
    assert ok.status.status_code == StatusCode.UNSET
    assert failed.status.status_code == StatusCode.ERROR
    assert failed.attributes is not None
    assert failed.attributes["envelope.kms.outcome"] == "error"


def test_metrics_of_kms_calls_cache_and_bytes(
    kms: SpyKms, otel: tuple[InMemorySpanExporter, InMemoryMetricReader]
) -> None:
    _, reader = otel
    cache = DataKeyCache(max_messages=2)
    env = Envelope(kms, cache=cache)
    blobs = [env.encrypt(b"12345") for _ in range(3)]  # miss, hit, then used up: miss
    for b in blobs:
        env.decrypt(b)  # two data keys: miss, miss, hit
    env.encrypt_batch([b"ab", b"cde"])
    kms.down = True
    with pytest.raises(KmsError):
        Envelope(kms).decrypt(blobs[0])
    m = points(reader)
    calls = m["envelope.kms.calls"]
    assert value(calls, **{"envelope.kms.operation": "generate"}) == 3
    assert value(calls, **{"envelope.kms.operation": "unwrap", "envelope.kms.outcome": "ok"}) == 2
    assert value(calls, **{"envelope.kms.outcome": "error"}) == 1
    assert value(m["envelope.kms.duration"], **{"envelope.kms.operation": "generate"}) == 3
    assert value(m["envelope.cache.hits"], **{"envelope.cache.side": "encrypt"}) == 1
    # two message-prefix windows and the batch's data key (an entry of its own)
    assert value(m["envelope.cache.misses"], **{"envelope.cache.side": "encrypt"}) == 3
    assert value(m["envelope.cache.hits"], **{"envelope.cache.side": "decrypt"}) == 1
    assert value(m["envelope.cache.misses"], **{"envelope.cache.side": "decrypt"}) == 2
    assert value(m["envelope.cache.evictions"], **{"envelope.cache.side": "encrypt"}) == 1
    assert value(m["envelope.bytes"], **{"envelope.operation": "encrypt"}) == 15
    assert value(m["envelope.bytes"], **{"envelope.operation": "decrypt"}) == 15
    assert value(m["envelope.records"], **{"envelope.operation": "encrypt"}) == 3
    assert value(m["envelope.records"], **{"envelope.operation": "encrypt_batch"}) == 2
    assert value(m["envelope.bytes"], **{"envelope.operation": "encrypt_batch"}) == 5


GLOBAL_PROVIDERS = """
import envelope  # imported first: the providers are set after, as an app often does
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

reader, spans = InMemoryMetricReader(), InMemorySpanExporter()
tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
trace.set_tracer_provider(tracer_provider)
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
env = envelope.Envelope(envelope.LocalKms.ephemeral(), cache=envelope.DataKeyCache())
env.decrypt(env.encrypt(b"x"))
print(sorted({s.name for s in spans.get_finished_spans()}))
data = reader.get_metrics_data()
print(sorted({m.name for r in data.resource_metrics for s in r.scope_metrics for m in s.metrics}))
"""


def test_global_providers_set_after_import_receive_everything(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", GLOBAL_PROVIDERS],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    span_names, metric_names = done.stdout.splitlines()
    assert span_names == str(
        ["envelope.cache.fill", "envelope.kms.generate", "envelope.kms.unwrap"]
    )
    assert metric_names == str(
        [
            "envelope.bytes",
            "envelope.cache.misses",
            "envelope.kms.calls",
            "envelope.kms.duration",
            "envelope.records",
        ]
    )


def test_batch_sealer_batches_are_counted(
    kms: SpyKms, otel: tuple[InMemorySpanExporter, InMemoryMetricReader]
) -> None:
    from envelope._batch.sealer import BatchSealer

    _, reader = otel
    env = Envelope(kms)
    with BatchSealer.fresh(env._keys, (), 0) as sealer:
        sealer.seal([b"abcd", b"ef", b"g"])
    m = points(reader)
    assert value(m["envelope.records"], **{"envelope.operation": "encrypt_batch"}) == 3
    assert value(m["envelope.bytes"], **{"envelope.operation": "encrypt_batch"}) == 7


def test_async_inline_messages_are_counted(
    kms: SpyKms, otel: tuple[InMemorySpanExporter, InMemoryMetricReader]
) -> None:
    import asyncio

    from envelope.aio import AsyncEnvelope

    _, reader = otel

    async def main() -> None:
        async with AsyncEnvelope(kms, cache=DataKeyCache()) as env:
            blobs = [await env.encrypt(b"abcdef") for _ in range(3)]  # a fill, then inline
            for blob in blobs:
                assert await env.decrypt(blob) == b"abcdef"

    asyncio.run(main())
    m = points(reader)
    assert value(m["envelope.records"], **{"envelope.operation": "encrypt"}) == 3
    assert value(m["envelope.bytes"], **{"envelope.operation": "decrypt"}) == 18
    # The inline (non-blocking) probes count their hits too.
    hits = value(m["envelope.cache.hits"], **{"envelope.cache.side": "encrypt"})
    assert hits == 2


CLI_PROBE = """
import atexit, sys
from envelope import _telemetry
atexit.register(lambda: print("opentelemetry.trace" in sys.modules, _telemetry.active))
from envelope.cli import main
main(sys.argv[1:])
"""


@pytest.mark.parametrize(("otel_env", "reports"), [({}, False), ({"OTEL_SERVICE_NAME": "x"}, True)])
def test_the_command_reports_to_opentelemetry_only_when_an_otel_variable_is_set(
    tmp_path: Path, otel_env: dict[str, str], reports: bool
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")} | otel_env
    env["ENVELOPE_KEYRING"] = str(tmp_path / "keyring.json")
    (tmp_path / "in").write_text("hello\n")
    for argv in (["keyring", "init"], ["encrypt", "in", "-o", "out", "--no-split"]):
        done = subprocess.run(
            [sys.executable, "-c", CLI_PROBE, *argv],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    # The encrypt made a KMS call: with reporting on, that imported the API.
    assert done.stdout.split() == [str(reports), str(reports)]


def test_record_byte_counts_are_skipped_while_only_the_no_op_api_listens() -> None:
    _telemetry.configure()  # the global providers: the API's defaults in this process
    assert _telemetry.enabled() and not _telemetry.measuring()


def test_record_byte_counts_are_made_for_a_real_meter_provider(
    otel: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    assert _telemetry.measuring()


def test_kms_calls_start_no_span_while_only_the_no_op_api_listens(
    kms: SpyKms, monkeypatch: pytest.MonkeyPatch
) -> None:
    _telemetry.configure()  # the global providers: the API's defaults in this process
    otel = _telemetry._current()
    assert otel is not None and not otel.tracing()
    started: list[str] = []
    real = otel.tracer.start_span

    def spy(name: str, *args: Any, **kwargs: Any) -> Any:
        started.append(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(otel.tracer, "start_span", spy)
    Envelope(kms).decrypt(Envelope(kms).encrypt(b"x"))
    assert started == []  # a span nobody can receive is not made (a KMS call's cost)
    given = TracerProvider()
    _telemetry.configure(given, None)  # a provider of the application's: spans again
    try:
        otel = _telemetry._current()
        assert otel is not None and otel.tracing()
    finally:
        _telemetry.configure()
        given.shutdown()
