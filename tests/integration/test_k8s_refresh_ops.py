"""`envelope init --refresh` as an operated sidecar: /healthz and /metrics over real HTTP,
an on-change command that really runs, and a real app process that really gets SIGHUP
(by pid file, and by name through /proc as in a shared process namespace)."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.test_k8s_init import Pod

# The "app": records each SIGHUP in a file, and says it is ready by writing its pid.
APP = """
import os, signal, sys, time
from pathlib import Path
log, pid_file = Path(sys.argv[1]), Path(sys.argv[2])
def hup(signum, frame):
    with log.open("a") as f:
        f.write("SIGHUP\\n")
signal.signal(signal.SIGHUP, hup)
pid_file.write_text(str(os.getpid()))
while True:
    signal.pause()
"""

# The on-change command: writes the directory it was told about into a marker file.
MARKER = "import os, sys; open(sys.argv[1], 'a').write(os.environ['ENVELOPE_OUTPUT_DIR'] + '\\n')"


@pytest.fixture
def pod(tmp_path: Path) -> Pod:
    return Pod(tmp_path)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Sidecar:
    """`envelope init --refresh` in a subprocess, its JSON log read on a thread."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "envelope", "init", "--log-format", "json", *args],
            stderr=subprocess.PIPE,
        )
        self.events: list[dict[str, object]] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                with self._lock:
                    self.events.append(event)

    def seen(self, event: str) -> list[dict[str, object]]:
        with self._lock:
            return [e for e in self.events if e.get("event") == event]

    def port(self) -> int:
        wait_for(lambda: bool(self.seen("metrics.listening")), "metrics.listening")
        return int(str(self.seen("metrics.listening")[0]["port"]))

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        assert self.proc.stderr is not None
        self.proc.stderr.close()


@contextlib.contextmanager
def sidecar(args: list[str]) -> Iterator[Sidecar]:
    s = Sidecar(args)
    try:
        yield s
    finally:
        s.close()


@contextlib.contextmanager
def app(
    tmp: Path, executable: str = sys.executable
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    log, pid_file = tmp / "hups.log", tmp / "app.pid"
    proc = subprocess.Popen([executable, "-c", APP, str(log), str(pid_file)])
    try:
        wait_for(pid_file.exists, "the app's pid file")
        yield proc, log
    finally:
        proc.kill()
        proc.wait(timeout=10)


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode()


def metric(text: str, name: str) -> float:
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")]
    assert len(values) == 1, (name, text)
    return values[0]


def test_healthz_metrics_on_change_and_sighup_by_pid_file(pod: Pod, tmp_path: Path) -> None:
    marker = tmp_path / "changed.txt"
    config = pod.write_config(pod.config())
    with app(tmp_path) as (app_proc, hups):
        args = [
            "--config", config, "--allow-disk", "--refresh", "0.2",
            "--metrics-port", "0",
            "--on-change", shlex.join([sys.executable, "-c", MARKER, str(marker)]),
            "--signal", "SIGHUP", "--pid-file", str(tmp_path / "app.pid"),
        ]  # fmt: skip
        with sidecar(args) as s:
            port = s.port()
            wait_for(lambda: get(port, "/healthz")[0] == 200, "healthz 200")
            # Republishes of an unchanged set run no action.
            wait_for(lambda: len(s.seen("init.done")) >= 3, "two unchanged refreshes")
            assert not marker.exists() and not hups.exists()

            code, body = get(port, "/metrics")
            assert code == 200
            assert metric(body, "envelope_init_publishes_total") >= 3
            assert metric(body, "envelope_init_refresh_failures_total") == 0
            assert metric(body, "envelope_init_last_success_timestamp_seconds") > 0
            assert metric(body, "envelope_init_healthy") == 1
            unwraps = 'envelope_kms_calls_total{backend="local",operation="unwrap",outcome="ok"}'
            assert metric(body, unwraps) >= 9  # three secrets, three publishes
            assert "# TYPE envelope_kms_calls_total counter" in body

            pod.seal("tls-key", b"ROTATED KEY", {"service": "billing"})
            wait_for(lambda: marker.exists() and hups.exists(), "the on-change actions")
            assert marker.read_text().splitlines()[0] == str(pod.out)
            wait_for(lambda: "SIGHUP" in hups.read_text(), "the app's SIGHUP record")
            assert pod.visible()["tls.key"] == b"ROTATED KEY"
            assert app_proc.poll() is None  # SIGHUP handled, not fatal
            wait_for(lambda: len(s.seen("on_change.done")) >= 2, "on_change.done log lines")
            assert {e["action"] for e in s.seen("on_change.done")} == {"command", "signal"}
            code, body = get(port, "/metrics")
            assert metric(body, "envelope_init_changes_total") == 1
            assert metric(body, 'envelope_init_on_change_actions_total{outcome="ok"}') == 2

            # A failing refresh: 503 with the reason; the last good set stays.
            (pod.sealed / "tls-key.enc").write_bytes(b"garbage")
            wait_for(lambda: get(port, "/healthz")[0] == 503, "healthz 503")
            code, reason = get(port, "/healthz")
            assert "the last refresh failed" in reason and "tls-key" in reason
            code, body = get(port, "/metrics")
            assert metric(body, "envelope_init_refresh_failures_total") >= 1
            assert metric(body, "envelope_init_healthy") == 0
            assert pod.visible()["tls.key"] == b"ROTATED KEY"
            assert get(port, "/nothing")[0] == 404
            assert s.proc.poll() is None


def test_signal_by_process_name_and_a_failing_command_is_not_fatal(
    pod: Pod, tmp_path: Path
) -> None:
    name = f"envapp{os.getpid() % 100000}"  # at most 15 characters: the kernel's comm
    exe = tmp_path / name
    exe.symlink_to(sys.executable)
    config = pod.write_config(pod.config())
    with app(tmp_path, str(exe)) as (app_proc, hups):
        args = [
            "--config", config, "--allow-disk", "--refresh", "0.2",
            "--on-change", shlex.join([sys.executable, "-c", "raise SystemExit(3)"]),
            "--signal", "HUP", "--signal-process-name", name,
        ]  # fmt: skip
        with sidecar(args) as s:
            wait_for(lambda: bool(s.seen("init.done")), "the first publish")
            pod.seal("api", b'{"api_token": "rotated", "region": "us"}', {"service": "billing"})
            wait_for(lambda: hups.exists() and "SIGHUP" in hups.read_text(), "SIGHUP by name")
            wait_for(lambda: bool(s.seen("on_change.failed")), "on_change.failed")
            failed = s.seen("on_change.failed")[0]
            assert failed["action"] == "command" and "exited 3" in str(failed["detail"])
            assert app_proc.poll() is None
            assert s.proc.poll() is None  # the failing command did not end the sidecar
            assert json.loads(pod.visible()["api.json"])["api_token"] == "rotated"


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--on-change", "true"], "only apply with --refresh"),
        (["--refresh", "1", "--signal", "SIGHUP"], "--pid-file FILE or --signal-process-name"),
        (["--refresh", "1", "--signal", "SIGNOPE", "--pid-file", "x"], "not a signal name"),
        (["--refresh", "1", "--pid-file", "x"], "need --signal"),
        (["--refresh", "1", "--metrics-port", "70000"], "between 0 and 65535"),
    ],
)
def test_sidecar_flags_are_checked(
    pod: Pod, flags: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from envelope import cli

    assert cli.run(["init", "--config", pod.write_config(pod.config()), *flags]) == 2
    assert words in capsys.readouterr().err
