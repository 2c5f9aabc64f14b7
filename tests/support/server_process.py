"""A server subprocess with its output in a log file: what the loopback OpenBao and moto
fixtures share (start into a log, stop gently then firmly, close the log)."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

__all__ = ["ServerProcess"]


class ServerProcess:
    """Holds one server process and its log; subclasses start it with :meth:`_spawn`."""

    #: How long a terminated server may take to exit before it is killed.
    STOP_GRACE_SECONDS = 10

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def _spawn(
        self, cmd: Sequence[str], log_path: Path, cwd: Path, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Starts ``cmd`` with stdout and stderr going to ``log_path`` (replacing a log
        left by an earlier attempt)."""
        self._close_log()
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()/kill()
        self.proc = subprocess.Popen(
            list(cmd), stdout=self._log, stderr=subprocess.STDOUT, cwd=cwd, env=env
        )
        return self.proc

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if the server has not exited within the grace period."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=self.STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close_log()

    def kill(self) -> None:
        """SIGKILL at once (a crash, as a test of the clients sees it)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
