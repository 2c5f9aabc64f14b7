"""The sidecar's health rule, Prometheus text and on-change actions, without a pod."""

from __future__ import annotations

import json
import shlex
import signal
import sys
import time
from pathlib import Path

import pytest

from envelope.errors import ConfigError
from envelope.k8s._health import RefreshState, prometheus_text
from envelope.k8s._on_change import OnChange, find_processes, parse_signal


def test_health_follows_the_last_publish() -> None:
    state = RefreshState(interval=60, timeout=30)
    assert state.health() == (False, "no successful publish yet")
    state.published(changed=False)
    assert state.health()[0] is True
    state.failed("secret db: the KMS is unavailable")
    assert state.health() == (False, "the last refresh failed: secret db: the KMS is unavailable")
    state.published(changed=True)
    assert state.health()[0] is True
    assert state.last_success_at is not None
    state.last_success_at = time.monotonic() - 151  # older than 2 x 60 + 30
    healthy, reason = state.health()
    assert not healthy and "stale after 150s" in reason
    assert (state.publishes, state.failures, state.changes) == (3, 1, 1)


def test_prometheus_text_has_help_type_and_escaped_labels() -> None:
    state = RefreshState(interval=1, timeout=1)
    state.published(changed=False)
    state.action(True)
    state.action(False)
    state.action(False)
    text = prometheus_text(state)
    assert "# TYPE envelope_init_publishes_total counter\nenvelope_init_publishes_total 1\n" in text
    assert 'envelope_init_on_change_actions_total{outcome="failed"} 2' in text
    assert "# TYPE envelope_init_last_success_timestamp_seconds gauge" in text
    for line in text.splitlines():
        assert line.startswith("#") or len(line.rsplit(" ", 1)) == 2


def test_signal_names() -> None:
    assert parse_signal("SIGHUP") is signal.SIGHUP
    assert parse_signal("usr1") is signal.SIGUSR1
    assert parse_signal("15") is signal.SIGTERM
    with pytest.raises(ConfigError, match="not a signal name"):
        parse_signal("SIGFOO")


def test_a_command_that_hangs_is_killed_and_reported(tmp_path: Path) -> None:
    hang = shlex.join([sys.executable, "-c", "import time; time.sleep(120)"])
    [(action, ok, detail)] = OnChange(command=hang, timeout=0.5).run(tmp_path)
    assert (action, ok) == ("command", False)
    assert "did not finish within 0.5s" in detail


def test_a_missing_command_is_reported(tmp_path: Path) -> None:
    [(_, ok, detail)] = OnChange(command="/nonexistent/reload --now").run(tmp_path)
    assert not ok and detail.startswith("/nonexistent/reload:")


def test_a_bad_pid_file_is_reported_not_raised(tmp_path: Path) -> None:
    pid_file = tmp_path / "app.pid"
    pid_file.write_text("0")
    [(action, ok, detail)] = OnChange(signal=signal.SIGHUP, pid_file=pid_file).run(tmp_path)
    assert (action, ok) == ("signal", False) and "holds no process id" in detail
    pid_file.unlink()
    [(_, ok, detail)] = OnChange(signal=signal.SIGHUP, pid_file=pid_file).run(tmp_path)
    assert not ok and "cannot read --pid-file" in detail


def test_processes_are_found_by_comm_or_argv0(tmp_path: Path) -> None:
    for pid, comm, argv0 in [
        ("41", "nginx", b"nginx: master process"),
        ("42", "python3", b"/usr/local/bin/app-server\0--port\x008080"),
        ("43", "sh", b"/bin/sh"),
    ]:
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "comm").write_text(comm + "\n")
        (tmp_path / pid / "cmdline").write_bytes(argv0)
    (tmp_path / "self").mkdir()
    assert find_processes("nginx", tmp_path) == [41]
    assert find_processes("app-server", tmp_path) == [42]
    assert find_processes("redis", tmp_path) == []


def test_no_process_by_that_name_is_reported(tmp_path: Path) -> None:
    actions = OnChange(signal=signal.SIGHUP, process_name="no-such-app-xyz")
    [(_, ok, detail)] = actions.run(tmp_path)
    assert not ok and "shareProcessNamespace" in detail


def test_the_on_change_command_never_gets_key_material_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVELOPE_CLUSTER_SECRET", "cGFydA==")
    monkeypatch.setenv("ENVELOPE_KEYRING_PASSPHRASE", "hunter2")
    monkeypatch.setenv("APP_SETTING", "kept")
    seen = tmp_path / "env.json"
    dump = f"import json, os; open({str(seen)!r}, 'w').write(json.dumps(dict(os.environ)))"
    [(_, ok, _)] = OnChange(command=shlex.join([sys.executable, "-c", dump])).run(tmp_path)
    env = json.loads(seen.read_text())
    assert ok and env["APP_SETTING"] == "kept" and env["ENVELOPE_OUTPUT_DIR"] == str(tmp_path)
    assert "ENVELOPE_CLUSTER_SECRET" not in env and "ENVELOPE_KEYRING_PASSPHRASE" not in env
