"""Run ``envelope kms-plugin`` as a real subprocess and talk to it over its Unix socket
with a gRPC client built from the vendored proto (the same stubs the plugin uses)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from envelope.plugin._proto import api_pb2, api_pb2_grpc

SRC = Path(__file__).resolve().parents[2] / "src"


class PluginProcess:
    """``envelope kms-plugin --listen unix://<tmp>/kms.sock ARGS`` in a subprocess."""

    def __init__(
        self, workdir: Path, args: Sequence[str], env: dict[str, str] | None = None
    ) -> None:
        self.workdir = workdir
        self.socket = workdir / "run" / "kms.sock"
        self.args = list(args)
        self.env = {**os.environ, "PYTHONPATH": str(SRC), **(env or {})}
        self.log_path = workdir / "plugin.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.channel: grpc.Channel | None = None
        self.stub: Any = None

    def start(self, *, wait: bool = True) -> PluginProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "envelope",
                    "kms-plugin",
                    "--listen",
                    f"unix://{self.socket}",
                    *self.args,
                ],
                stdout=log,
                stderr=log,
                env=self.env,
                cwd=self.workdir,
            )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"plugin exited {self.proc.returncode}: {self.logs()[-3000:]}")
            if self.socket.exists():
                self.channel = grpc.insecure_channel(f"unix://{self.socket}")
                try:
                    grpc.channel_ready_future(self.channel).result(timeout=5)
                except grpc.FutureTimeoutError:
                    self.channel.close()
                    continue
                self.stub = api_pb2_grpc.KeyManagementServiceStub(self.channel)
                return
            time.sleep(0.05)
        raise RuntimeError(f"plugin not ready within {timeout} s: {self.logs()[-3000:]}")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # -- calls ----------------------------------------------------------------------

    def status(self) -> Any:
        return self.stub.Status(api_pb2.StatusRequest(), timeout=30)

    def encrypt(self, plaintext: bytes, uid: str = "uid-enc") -> Any:
        return self.stub.Encrypt(api_pb2.EncryptRequest(plaintext=plaintext, uid=uid), timeout=30)

    def decrypt(
        self,
        ciphertext: bytes,
        key_id: str,
        annotations: dict[str, bytes] | Any,
        uid: str = "uid-dec",
    ) -> bytes:
        request = api_pb2.DecryptRequest(
            ciphertext=ciphertext, uid=uid, key_id=key_id, annotations=dict(annotations)
        )
        return bytes(self.stub.Decrypt(request, timeout=30).plaintext)

    def wait_status(self, predicate: Any, timeout: float = 60.0) -> Any:
        """Polls Status until ``predicate(response)`` holds (no timing is asserted: the
        bound only keeps a broken plugin from hanging the suite)."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.status()
            if predicate(response):
                return response
            if time.monotonic() > deadline:
                raise AssertionError(f"Status never matched; last: {response}")
            time.sleep(0.1)

    # -- stopping -------------------------------------------------------------------

    def terminate(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        if self.channel is not None:
            self.channel.close()
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.channel is not None:
            self.channel.close()


class SlowProxy:
    """A TCP proxy on loopback that delays every client-to-server chunk by ``delay``
    seconds: a slow KMS, the one fault a real server on loopback cannot produce."""

    def __init__(self, upstream: tuple[str, int], delay: float) -> None:
        self.upstream = upstream
        self.delay = delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests = 0
        self.slow = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, upward: bool) -> None:
        try:
            while data := src.recv(65536):
                if upward:
                    with self._lock:
                        self.requests += 1
                    if self.slow.is_set():
                        time.sleep(self.delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
