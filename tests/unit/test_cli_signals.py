"""The CLI's signal handling (envelope.cli._signals) with a command that sets its own
handler for a while, as ``edit`` does to remove its scratch files."""

from __future__ import annotations

import subprocess
import sys

_PROBE = """
import os, signal, time
from envelope.cli._signals import run_terminable

calls = []

def command():
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.5)  # ten re-sends' worth, if any came
    finally:
        signal.signal(signal.SIGTERM, previous)
    time.sleep(0.2)
    return 0

code = run_terminable(command)
print(len(calls), code)
"""


def test_a_signal_a_command_handles_itself_is_delivered_once() -> None:
    # The watcher re-sends a signal only while the CLI's own handler is in place: a
    # second delivery would interrupt the command's clean-up (edit's scratch removal).
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "0"]
