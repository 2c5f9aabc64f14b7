"""What ``envelope init --refresh`` does after a republish that changed the files: run a
command (``--on-change CMD``) and/or signal the app (``--signal SIG`` to the process in
``--pid-file F``, or to every process named ``--signal-process-name NAME`` in a shared
process namespace, found through ``/proc``).

The command runs without a shell (``shlex`` splits it), with the sidecar's environment
plus ``ENVELOPE_OUTPUT_DIR``, no stdin, its output on the sidecar's stderr, and at most
``timeout`` seconds (then it is killed). A failing action is logged and counted, never
fatal: the files are already published.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from envelope.errors import ConfigError
from envelope.settings._env import child_environment

__all__ = ["OnChange", "find_processes", "parse_signal"]


def parse_signal(name: str) -> signal.Signals:
    """``SIGHUP``, ``HUP`` or ``1`` -> the signal.

    Raises:
        ConfigError: no such signal.
    """
    text = name.strip().upper()
    try:
        if text.isdigit():
            return signal.Signals(int(text))
        return signal.Signals[text if text.startswith("SIG") else "SIG" + text]
    except (KeyError, ValueError):
        raise ConfigError(
            f"--signal {name}: not a signal name; use e.g. SIGHUP, SIGUSR1 or SIGTERM"
        ) from None


def find_processes(name: str, proc: Path = Path("/proc")) -> list[int]:
    """Pids of the processes (other than this one) whose command name or argv[0]'s base
    name is ``name``."""
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            argv0 = (entry / "cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
        except OSError:
            continue  # gone, or not ours to read
        if name in (comm, os.path.basename(argv0)):
            found.append(int(entry.name))
    return sorted(found)


@dataclass
class OnChange:
    """The configured actions (see the module docstring)."""

    command: str | None = None
    timeout: float = 30.0
    signal: signal.Signals | None = None
    pid_file: Path | None = None
    process_name: str | None = None

    def __post_init__(self) -> None:
        if self.signal is not None and (self.pid_file is None) == (self.process_name is None):
            raise ConfigError(
                "--signal needs the process to signal: give --pid-file FILE or "
                "--signal-process-name NAME (one of them)"
            )
        if self.signal is None and (self.pid_file or self.process_name):
            raise ConfigError("--pid-file and --signal-process-name need --signal SIG")
        if self.command is not None:
            try:
                argv = shlex.split(self.command)
            except ValueError as exc:
                raise ConfigError(f"--on-change {self.command!r}: {exc}") from None
            if not argv:
                raise ConfigError("--on-change needs a command")

    @property
    def configured(self) -> bool:
        """True when there is something to do."""
        return self.command is not None or self.signal is not None

    def run(self, output_dir: Path) -> list[tuple[str, bool, str]]:
        """Runs every action: ``(action, ok, detail)`` for each."""
        results = []
        if self.command is not None:
            results.append(("command", *self._run_command(output_dir)))
        if self.signal is not None:
            results.append(("signal", *self._send_signal()))
        return results

    def _run_command(self, output_dir: Path) -> tuple[bool, str]:
        assert self.command is not None
        argv = shlex.split(self.command)
        try:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                timeout=self.timeout,
                env=child_environment(os.environ, {"ENVELOPE_OUTPUT_DIR": str(output_dir)}),
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False, f"{argv[0]} did not finish within {self.timeout:g}s (killed)"
        except OSError as exc:
            return False, f"{argv[0]}: {exc.strerror or exc}"
        if done.returncode != 0:
            return False, f"{argv[0]} exited {done.returncode}"
        return True, f"{argv[0]} exited 0"

    def _pids(self) -> list[int]:
        if self.pid_file is not None:
            try:
                text = self.pid_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read --pid-file {self.pid_file}: {exc.strerror}"
                ) from None
            if not text.isdigit() or int(text) <= 0:
                raise ConfigError(f"--pid-file {self.pid_file} holds no process id")
            return [int(text)]
        assert self.process_name is not None
        return find_processes(self.process_name)

    def _send_signal(self) -> tuple[bool, str]:
        assert self.signal is not None
        try:
            pids = self._pids()
        except ConfigError as exc:
            return False, str(exc)
        if not pids:
            return False, f"no process named {self.process_name} (is shareProcessNamespace on?)"
        failed = []
        for pid in pids:
            try:
                os.kill(pid, self.signal)
            except OSError as exc:
                failed.append(f"pid {pid}: {exc.strerror}")
        sent = f"{self.signal.name} to pid {', '.join(map(str, pids))}"
        return (False, f"{sent}: {'; '.join(failed)}") if failed else (True, sent)
