"""The gRPC server on a Unix socket: socket safety, thread pool, shutdown, logs.

- The socket is created with mode 0600 (umask 0177 while binding, then ``chmod``), and
  optionally ``chown``-ed to ``owner`` (kube-apiserver must be able to connect).
- A path left over from a previous run is removed only if it is a socket and nothing
  accepts connections on it; a regular file, a directory or a live socket is an error.
- SIGTERM / SIGINT stop accepting calls, let in-flight calls finish (``grace`` seconds),
  then remove the socket.
- Requests over ``MAX_REQUEST_BYTES`` are refused by gRPC before any handler runs.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import json
import logging
import os
import pwd
import signal
import socket
import stat
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any, cast

import grpc

from envelope.errors import ConfigError
from envelope.plugin._proto import api_pb2_grpc
from envelope.plugin._service import KmsService

__all__ = [
    "MAX_REQUEST_BYTES",
    "JsonLogFormatter",
    "PluginServer",
    "parse_owner",
    "prepare_socket_path",
    "socket_path",
]

log = logging.getLogger("envelope.plugin")

#: Largest request accepted: 32 kB of annotations + 1 kB ciphertext + 1 kB key id + slack.
MAX_REQUEST_BYTES = 64 * 1024


def socket_path(listen: str) -> Path:
    """The path in ``unix:///absolute/path.sock``.

    Raises:
        ConfigError: another scheme, or a relative path.
    """
    if not listen.startswith("unix://"):
        raise ConfigError(f"--listen {listen!r}: use unix:///absolute/path.sock")
    path = Path(listen[len("unix://") :])
    if not path.is_absolute():
        raise ConfigError(f"--listen {listen!r}: the socket path must be absolute")
    return path


def parse_owner(owner: str) -> tuple[int, int]:
    """``USER[:GROUP]`` (names or numbers) as ``(uid, gid)``; -1 leaves one unchanged.

    Raises:
        ConfigError: an unknown user or group.
    """
    user, _, group = owner.partition(":")
    try:
        uid = int(user) if user.isdigit() else (pwd.getpwnam(user).pw_uid if user else -1)
        gid = int(group) if group.isdigit() else (grp.getgrnam(group).gr_gid if group else -1)
    except KeyError:
        raise ConfigError(f"--socket-owner {owner!r}: no such user or group") from None
    return uid, gid


def prepare_socket_path(path: Path) -> None:
    """Makes ``path`` free for a new socket, removing a stale one safely.

    Raises:
        ConfigError: the path is not a socket, or a server is listening on it, or its
            directory cannot be created.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(f"cannot create socket directory {path.parent}: {exc.strerror}") from None
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise ConfigError(f"{path} exists and is not a socket; remove it or choose another path")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except OSError as exc:
        if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
            raise ConfigError(f"cannot check socket {path}: {exc.strerror}") from None
    else:
        raise ConfigError(f"another server is listening on {path}; stop it first")
    finally:
        probe.close()
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    log.info("removed stale socket", extra={"fields": {"path": str(path)}})


class PluginServer:
    """A running KMS plugin: ``start()``, then ``wait()`` (or ``stop()``).

    Args:
        service: the handlers.
        path: the Unix socket to create.
        workers: handler threads (kube-apiserver's concurrency: its cache fill at start
            decrypts many DEK seeds at once).
        max_concurrent: calls admitted at once (in flight + queued); more are refused
            with RESOURCE_EXHAUSTED rather than queued without bound.
        owner: ``(uid, gid)`` for the socket, or None to keep the creator's.
        grace: seconds in-flight calls get to finish on shutdown.
    """

    def __init__(
        self,
        service: KmsService,
        path: Path,
        *,
        workers: int = 32,
        max_concurrent: int = 256,
        owner: tuple[int, int] | None = None,
        grace: float = 10.0,
    ) -> None:
        if workers <= 0 or max_concurrent < workers:
            raise ConfigError("--workers must be positive and at most --max-concurrent")
        self.service = service
        self.path = path
        self.grace = grace
        self._owner = owner
        self._stopped = threading.Event()
        self._inode: int | None = None
        self.metrics_server: ThreadingHTTPServer | None = None
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kms-plugin"),
            maximum_concurrent_rpcs=max_concurrent,
            options=[
                ("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
                ("grpc.max_send_message_length", MAX_REQUEST_BYTES),
                ("grpc.so_reuseport", 0),
            ],
        )
        register = cast(
            Callable[[KmsService, Any], None],
            api_pb2_grpc.add_KeyManagementServiceServicer_to_server,  # generated, untyped
        )
        register(service, self._server)

    def start(self) -> None:
        """Binds the socket (0600) and starts serving.

        Raises:
            ConfigError: the socket cannot be created or given its owner.
        """
        prepare_socket_path(self.path)
        old = os.umask(0o177)
        try:
            port = self._server.add_insecure_port(f"unix://{self.path}")
            if port == 0:
                raise ConfigError(f"cannot listen on {self.path}")
            self._server.start()
        except RuntimeError as exc:
            raise ConfigError(f"cannot listen on {self.path}: {exc}") from None
        finally:
            os.umask(old)
        try:
            os.chmod(self.path, 0o600)
            if self._owner is not None:
                os.chown(self.path, *self._owner)
            self._inode = self.path.lstat().st_ino
        except OSError as exc:
            self._server.stop(None)
            raise ConfigError(f"cannot set owner/mode of {self.path}: {exc.strerror}") from None
        log.info(
            "serving",
            extra={"fields": {"socket": str(self.path), "key_id": self.service.key_id}},
        )

    def stop(self, grace: float | None = None) -> None:
        """Refuses new calls, waits for in-flight ones (``grace`` s), removes the socket."""
        if self._stopped.is_set():
            return
        started = time.monotonic()
        drained = self._server.stop(self.grace if grace is None else grace)
        log.info("draining: new calls are refused")  # logged once that holds
        drained.wait()
        with contextlib.suppress(OSError):
            if self._inode is not None and self.path.lstat().st_ino == self._inode:
                self.path.unlink()
        log.info("stopped", extra={"fields": {"drain_s": round(time.monotonic() - started, 3)}})
        self._stopped.set()

    def wait(self) -> None:
        """Blocks until :meth:`stop` has finished."""
        self._stopped.wait()

    def stop_on_signals(self) -> None:
        """SIGTERM and SIGINT call :meth:`stop` (from a thread, so the handler returns)."""

        def handler(signum: int, frame: FrameType | None) -> None:
            log.info("signal received, stopping", extra={"fields": {"signal": signum}})
            threading.Thread(target=self.stop, name="kms-plugin-stop").start()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, message and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            doc.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            # Type and message only: envelope's messages carry no key bytes, and a
            # traceback's frames are not worth the risk of echoing request data.
            doc["exception"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
        return json.dumps(doc, default=str)
