"""``envelope decrypt -o PATH`` for each kind of PATH (issue 12, item 1), in process."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from envelope import cli
from envelope._exitcodes import ExitCode


@pytest.fixture
def sealed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ENVELOPE_KEYRING", str(tmp_path / "keyring.json"))
    monkeypatch.delenv("ENVELOPE_CLUSTER_SECRET_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli.run(["keyring", "init"]) == 0
    Path("secret.txt").write_bytes(b"API_TOKEN=tok_live_123456\n")
    assert cli.run(["encrypt", "secret.txt", "-o", "secret.env", "--no-split"]) == 0
    return tmp_path


def decrypt_to(target: str) -> int:
    return cli.run(["-q", "decrypt", "secret.env", "-o", target])


def test_symlink_is_followed(sealed: Path) -> None:
    Path("real.txt").write_bytes(b"old")
    Path("link.txt").symlink_to("real.txt")
    assert decrypt_to("link.txt") == 0
    assert Path("link.txt").is_symlink()
    assert Path("real.txt").read_bytes() == b"API_TOKEN=tok_live_123456\n"


def test_fifo_receives_the_plaintext(sealed: Path) -> None:
    os.mkfifo("out.fifo")
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(Path("out.fifo").read_bytes()), daemon=True)
    reader.start()
    assert decrypt_to("out.fifo") == 0
    reader.join(10)
    assert got == [b"API_TOKEN=tok_live_123456\n"]
    assert stat.S_ISFIFO(os.lstat("out.fifo").st_mode)


def test_pty_device_receives_the_plaintext(sealed: Path) -> None:
    master, slave = os.openpty()
    try:
        assert decrypt_to(os.ttyname(slave)) == 0
        assert b"tok_live_123456" in os.read(master, 200)
    finally:
        os.close(master)
        os.close(slave)


def test_directory_is_refused_clearly(sealed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path("outdir").mkdir()
    before = sorted(os.listdir(sealed))
    assert decrypt_to("outdir") in (ExitCode.CONFIG, ExitCode.IO)
    message = capsys.readouterr().err
    assert "outdir" in message and "directory" in message and ".tmp" not in message
    assert sorted(os.listdir(sealed)) == before and os.listdir("outdir") == []


def test_stdin_to_directory_is_refused_clearly(
    sealed: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("outdir").mkdir()
    with open("secret.env") as stdin:
        monkeypatch.setattr("sys.stdin", stdin)
        assert cli.run(["-q", "decrypt", "-o", "outdir"]) in (ExitCode.CONFIG, ExitCode.IO)
    message = capsys.readouterr().err
    assert "outdir" in message and "directory" in message and ".tmp" not in message
