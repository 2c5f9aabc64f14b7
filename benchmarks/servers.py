"""Real servers and process state for the suites, always stopped or restored.

OpenBao (a dev server with a transit key), moto (AWS KMS in server mode), the
``envelope kms-plugin`` subprocess, and the environment variables and loggers a suite
changes in the runner's one process: each is a context manager, so a suite that fails
half-way leaves no process behind and no state for the suites after it.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def openbao_transit(
    workdir: Path, key: str = "bench", *, derived: bool = False
) -> Iterator[tuple[Any, Any]]:
    """A fresh OpenBao dev server with transit key ``key``.

    Yields:
        ``(OpenBao, VaultTransit)``: the server (``url``, ``root_token``) and a backend
        on the key, logged in with the root token.
    """
    from envelope.kms._vault import VaultTransit
    from envelope.kms._vault_auth import TokenAuth
    from tests.support.openbao import OpenBao

    bao = OpenBao(workdir)
    try:
        bao.start()
        bao.setup_engines()
        bao.write(f"transit/keys/{key}", **({"derived": True} if derived else {}))
        yield bao, VaultTransit(key, url=bao.url, auth=TokenAuth(bao.root_token))
    finally:
        bao.stop()


@contextmanager
def moto_kms() -> Iterator[str]:
    """A moto server (AWS KMS) on loopback; yields its URL (with dummy credentials set)."""
    from moto.server import ThreadedMotoServer

    credentials = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request log lines
    with environment(**credentials):
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        try:
            host, port = moto.get_host_and_port()
            yield f"http://{host}:{port}"
        finally:
            moto.stop()


@contextmanager
def kms_plugin(
    workdir: Path, args: Sequence[str], env: dict[str, str] | None = None
) -> Iterator[Any]:
    """``envelope kms-plugin ARGS`` as a subprocess, ready; yields its ``PluginProcess``."""
    from tests.support.kms_plugin import PluginProcess

    plugin = PluginProcess(workdir, args, env=env)
    try:
        plugin.start()
        yield plugin
    finally:
        if plugin.proc is not None:
            try:
                plugin.terminate(timeout=30.0)
            except subprocess.TimeoutExpired:
                plugin.kill()


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Sets environment variables for the block, then puts back what was there."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


@contextmanager
def logger_to_file(name: str, handler: logging.Handler, level: int) -> Iterator[None]:
    """Sends logger ``name`` only to ``handler`` for the block; then restores and closes."""
    logger = logging.getLogger(name)
    saved = (logger.handlers[:], logger.propagate, logger.level)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.handlers[:], logger.propagate = saved[0], saved[1]
        logger.setLevel(saved[2])
        handler.close()
