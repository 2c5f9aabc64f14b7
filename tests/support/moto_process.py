"""moto in server mode as its own process: a second, independent AWS endpoint (in-process
moto servers share one state) that records every request it receives."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from types import TracebackType

import requests

from tests.support.openbao import free_port
from tests.support.server_process import ServerProcess

__all__ = ["MotoProcess"]


class MotoProcess(ServerProcess):
    """``python -m moto.server`` on a free loopback port, recording requests to a file.

    Use as a context manager; :meth:`requests_seen` counts the requests so far.
    """

    def __init__(self, workdir: Path) -> None:
        super().__init__()
        self.workdir = workdir
        self.recording = workdir / "moto-requests.jsonl"
        self.port = 0

    @property
    def url(self) -> str:
        """The endpoint URL."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> MotoProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            if self._start_once():
                return self
        raise RuntimeError("moto could not bind a free loopback port in 5 attempts")

    def _start_once(self) -> bool:
        self.port = free_port()
        env = {
            **os.environ,
            "MOTO_ENABLE_RECORDING": "true",
            "MOTO_RECORDER_FILEPATH": str(self.recording),
        }
        self.recording.write_bytes(b"")  # the recorder appends to it
        proc = self._spawn(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            self.workdir / "moto.log",
            cwd=self.workdir,
            env=env,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False  # the port was taken meanwhile: try another
            try:
                # The recorder endpoint is not itself recorded.
                resp = requests.get(f"{self.url}/moto-api/recorder/download-recording", timeout=1)
                if resp.status_code == 200:
                    resp.close()
                    return True
                resp.close()
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto did not answer within 30 s")

    def requests_seen(self) -> int:
        """How many requests the server has received (its recorder's lines)."""
        if not self.recording.exists():
            return 0
        return len(self.recording.read_text().splitlines())

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
