"""The benchmarks' servers (benchmarks/servers.py) are stopped when a suite fails
half-way: no OpenBao, plugin or moto process is left behind for the suites after it."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest

from benchmarks.servers import kms_plugin, moto_kms, openbao_transit
from envelope.kms import LocalKms


def _refused(url: str) -> bool:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return False
    except OSError:
        return True


def test_openbao_and_the_plugin_are_stopped_when_the_suite_fails(tmp_path: Path) -> None:
    ring = tmp_path / "keyring.json"
    LocalKms.create(ring)
    seen: dict[str, Any] = {}
    with (
        pytest.raises(RuntimeError, match="half-way"),
        openbao_transit(tmp_path / "bao") as (bao, _),
        kms_plugin(tmp_path / "plugin", ["--kms", "local", "--keyring", str(ring)]) as plugin,
    ):
        assert plugin.status().healthz == "ok"
        seen.update(bao=bao, plugin=plugin)
        raise RuntimeError("a suite failed half-way")
    assert seen["plugin"].proc.poll() is not None
    assert seen["bao"].proc.poll() is not None
    assert _refused(seen["bao"].url)


def test_moto_is_stopped_and_the_credentials_put_back_when_the_suite_fails() -> None:
    before = os.environ.get("AWS_ACCESS_KEY_ID")
    urls: list[str] = []
    with pytest.raises(RuntimeError, match="half-way"), moto_kms() as url:
        assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
        urls.append(url)
        raise RuntimeError("a suite failed half-way")
    assert _refused(urls[0])
    assert os.environ.get("AWS_ACCESS_KEY_ID") == before
