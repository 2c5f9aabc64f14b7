"""Signals during a real ``envelope`` process (issue 12, item 2).

The input is a FIFO the test writes into, so the process is provably in the middle of a
decrypt (it has consumed megabytes and waits for more) when the signal arrives.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from envelope import cli

PLAIN = os.urandom(12 * 1024 * 1024)
# The envelope CLI, optionally with the O_TMPFILE path turned off (the fallback's temps).
LAUNCH = (
    "import sys, envelope._atomic as a; a.USE_O_TMPFILE = sys.argv.pop(1) == 'o_tmpfile'; "
    "from envelope.cli import main; sys.argv[0] = 'envelope'; main()"
)


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ENVELOPE_KEYRING", str(tmp_path / "keyring.json"))
    monkeypatch.delenv("ENVELOPE_CLUSTER_SECRET_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli.run(["keyring", "init"]) == 0
    Path("plain.bin").write_bytes(PLAIN)
    assert cli.run(["-q", "encrypt", "plain.bin", "-o", "sealed.env", "--no-split"]) == 0
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / "in.fifo")
    return out


def start(way: str, *argv: str, **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCH, way, "-q", *argv],
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        **kwargs,  # type: ignore[call-overload]
    )


def feed_part_of_the_message(fifo: Path) -> object:
    """Writes the header and 10 MiB of body; returns the open writer (no EOF yet).

    When the write returns the reader has consumed all but a pipe buffer of it, so it
    is past the KMS and has written plaintext to its output."""
    writer = open(fifo, "wb")  # noqa: SIM115 - closed by the caller, after the signal
    writer.write(Path("sealed.env").read_bytes()[: 10 * 1024 * 1024])
    writer.flush()
    return writer


@pytest.mark.parametrize("way", ["o_tmpfile", "named_temp"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_signal_mid_decrypt_removes_temps_and_exits_128_plus_signal(
    work: Path, way: str, sig: signal.Signals
) -> None:
    proc = start(way, "decrypt", "in.fifo", "-o", "plain.out", cwd=work)
    writer = feed_part_of_the_message(work / "in.fifo")
    try:
        during = sorted(os.listdir(work))
        if way == "named_temp":  # the fallback's temp exists: the handler must remove it
            assert len(during) == 2 and during[0].startswith(".plain.out."), during
        else:
            assert during == ["in.fifo"]  # O_TMPFILE: nothing to see
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        writer.close()  # type: ignore[attr-defined]
        proc.kill()
        proc.wait()
    assert proc.returncode == 128 + sig, stderr
    assert b"Traceback" not in stderr, stderr
    assert sorted(os.listdir(work)) == ["in.fifo"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_while_reading_stdin_exits_quietly(work: Path, sig: signal.Signals) -> None:
    proc = start(
        "o_tmpfile", "encrypt", "--no-split", "-o", "sealed.out", cwd=work, stdin=subprocess.PIPE
    )
    assert proc.stdin is not None
    proc.stdin.write(b"x" * (8 * 1024 * 1024))  # consumed: the process is at work
    proc.stdin.flush()
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, stderr
    assert stderr == b""
    assert sorted(os.listdir(work)) == ["in.fifo"]


def test_sigkill_mid_decrypt_leaves_nothing_visible(work: Path) -> None:
    proc = start("o_tmpfile", "decrypt", "in.fifo", "-o", "plain.out", cwd=work)
    writer = feed_part_of_the_message(work / "in.fifo")
    try:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)  # reaps it and closes its stderr pipe
    finally:
        writer.close()  # type: ignore[attr-defined]
    assert proc.returncode == -signal.SIGKILL
    assert sorted(os.listdir(work)) == ["in.fifo"]


def test_sigkill_with_the_fallback_is_cleaned_by_the_next_run(work: Path) -> None:
    proc = start("named_temp", "decrypt", "in.fifo", "-o", "plain.out", cwd=work)
    writer = feed_part_of_the_message(work / "in.fifo")
    try:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)  # reaps it and closes its stderr pipe
    finally:
        writer.close()  # type: ignore[attr-defined]
    (stale,) = (n for n in os.listdir(work) if n != "in.fifo")  # what the fallback cannot avoid
    assert stale.startswith(".plain.out.")
    feeder = threading.Thread(
        target=lambda: (work / "in.fifo").write_bytes(Path("sealed.env").read_bytes()),
        daemon=True,
    )
    feeder.start()
    again = start("named_temp", "decrypt", "in.fifo", "-o", "plain.out", cwd=work)
    _, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    feeder.join(10)
    assert sorted(os.listdir(work)) == ["in.fifo", "plain.out"]
    assert (work / "plain.out").read_bytes() == PLAIN
