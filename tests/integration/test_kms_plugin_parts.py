"""Pieces of the KMS plugin that need no server: key ids, metrics text, socket paths."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from envelope.errors import ConfigError
from envelope.kms import LocalKms
from envelope.plugin._health import KEY_ID_MAX_BYTES, KekMonitor, compose_key_id
from envelope.plugin._metrics import Metrics
from envelope.plugin._server import parse_owner, socket_path


def test_key_id_names_every_custodian_version_threshold_and_part() -> None:
    a, b = LocalKms.ephemeral(), LocalKms.ephemeral()
    key_id = compose_key_id([(a, "3"), (b, "")], "cs-00ff", 1)
    parts = [f"local:{a.key_id}@v3", f"local:{b.key_id}", "threshold:1-of-2", "cluster:cs-00ff"]
    assert key_id == "+".join(["envelope", *parts])


def test_an_over_long_key_id_is_hashed_below_the_apiserver_limit() -> None:
    backends = [(LocalKms.ephemeral(), "1") for _ in range(60)]
    key_id = compose_key_id(backends, None, None)
    assert re.fullmatch(r"envelope-sha256:[0-9a-f]{64}", key_id)
    assert len(key_id) <= KEY_ID_MAX_BYTES
    assert compose_key_id(backends, None, None) == key_id  # stable


def test_probe_result_is_served_until_the_interval_passes() -> None:
    now = [0.0]
    changes: list[str] = []
    kms = LocalKms.ephemeral()
    monitor = KekMonitor(
        lambda: [kms], interval=10.0, on_change=lambda b, k: changes.append(k), clock=lambda: now[0]
    )
    first = monitor.current()
    assert first.ok and first.key_id.endswith("@v1")
    kms.rotate()
    now[0] = 9.9
    assert monitor.current() is first  # cached: the rotation is not seen yet
    now[0] = 10.0
    second = monitor.current()
    assert second.key_id.endswith("@v2") and changes[-1] == second.key_id


def test_metrics_exposition() -> None:
    m = Metrics()
    m.observe("Encrypt", "OK", 0.0004)
    m.observe("Encrypt", "UNAVAILABLE", 2.0)
    m.probe(False)
    text = m.render()
    assert 'envelope_kms_plugin_calls_total{method="Encrypt"} 2' in text
    assert 'envelope_kms_plugin_errors_total{method="Encrypt",code="UNAVAILABLE"} 1' in text
    assert 'envelope_kms_plugin_latency_seconds_bucket{method="Encrypt",le="0.0005"} 1' in text
    assert 'envelope_kms_plugin_latency_seconds_bucket{method="Encrypt",le="2.5"} 2' in text
    assert 'envelope_kms_plugin_latency_seconds_bucket{method="Encrypt",le="+Inf"} 2' in text
    assert "envelope_kms_plugin_kms_healthy 0" in text
    for line in text.splitlines():  # every sample line: name{labels} value
        assert line.startswith("#") or re.fullmatch(r"[a-z_]+(\{[^}]*\})? [0-9.e+-]+", line)


def test_listen_addresses_and_owners() -> None:
    assert socket_path("unix:///run/k/s.sock") == Path("/run/k/s.sock")
    for bad in ("tcp://127.0.0.1:80", "unix://relative.sock", "/run/k/s.sock"):
        with pytest.raises(ConfigError):
            socket_path(bad)
    assert parse_owner("0:0") == (0, 0)
    assert parse_owner("root") == (0, -1)
    with pytest.raises(ConfigError):
        parse_owner("no-such-user-here")
