"""Output paths (issue 12, item 1 and the SIGKILL part of item 2): what ``atomic_output``
does with a symlink, a device, a FIFO, a directory, and what is visible while it writes."""

from __future__ import annotations

import fcntl
import os
import stat
import threading
from pathlib import Path

import pytest

from envelope import _atomic
from envelope._atomic import atomic_output, create_exclusive, write_atomic
from envelope._files import output
from envelope.errors import ConfigError


@pytest.fixture(params=["o_tmpfile", "named_temp"])
def way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of creating an output: O_TMPFILE + linkat, and the temp + rename fallback."""
    if request.param == "named_temp":
        monkeypatch.setattr(_atomic, "USE_O_TMPFILE", False)
    return str(request.param)


def test_symlink_is_followed_and_its_target_replaced(tmp_path: Path, way: str) -> None:
    real = tmp_path / "real.txt"
    real.write_bytes(b"old")
    link = tmp_path / "link.txt"
    link.symlink_to("real.txt")
    write_atomic(link, b"new")
    assert link.is_symlink() and os.readlink(link) == "real.txt"
    assert real.read_bytes() == b"new"
    assert stat.S_IMODE(real.stat().st_mode) == 0o600


def test_dangling_symlink_creates_the_file_it_names(tmp_path: Path, way: str) -> None:
    (tmp_path / "sub").mkdir()
    link = tmp_path / "link.txt"
    link.symlink_to("sub/new.txt")
    write_atomic(link, b"data")
    assert link.is_symlink()
    assert (tmp_path / "sub" / "new.txt").read_bytes() == b"data"


def test_fifo_is_written_into_not_replaced(tmp_path: Path, way: str) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    try:
        write_atomic(fifo, b"through the pipe")
    finally:
        reader.join(10)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert got == [b"through the pipe"]
    assert sorted(os.listdir(tmp_path)) == ["fifo"]


def test_character_device_is_written_into_not_replaced(tmp_path: Path, way: str) -> None:
    # A pty's slave is a character device any user may open; devpts refuses new files,
    # so replacing it is impossible and writing straight in is the only right answer.
    master, slave = os.openpty()
    try:
        device = os.ttyname(slave)
        before = os.stat(device)
        with atomic_output(device) as out:
            out.write(b"to the tty\n")
        assert stat.S_ISCHR(os.stat(device).st_mode)
        assert os.stat(device).st_mode == before.st_mode  # no chmod of the device either
        assert b"to the tty" in os.read(master, 100)
    finally:
        os.close(master)
        os.close(slave)


def test_directory_is_refused_clearly(tmp_path: Path, way: str) -> None:
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(IsADirectoryError) as info:
        write_atomic(target, b"x")
    assert info.value.filename == str(target)
    assert "directory" in str(info.value)
    assert os.listdir(target) == [] and sorted(os.listdir(tmp_path)) == ["out"]
    with (
        pytest.raises(ConfigError, match=f"cannot write {target}: .*directory"),
        output(target, 0o600),
    ):
        pass


def test_symlink_to_a_directory_is_refused(tmp_path: Path, way: str) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "link").symlink_to("d")
    with pytest.raises(IsADirectoryError):
        write_atomic(tmp_path / "link", b"x")


def test_nothing_is_visible_while_writing_with_o_tmpfile(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with atomic_output(target) as out:
        out.write(b"partial")
        assert os.listdir(tmp_path) == []  # a SIGKILL now leaves nothing behind
    assert target.read_bytes() == b"partial"


def test_replacing_with_o_tmpfile_leaves_old_content_until_commit(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_bytes(b"old")
    with atomic_output(target) as out:
        out.write(b"new")
        assert os.listdir(tmp_path) == ["out.txt"]
        assert target.read_bytes() == b"old"
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_failure_leaves_the_old_file_and_no_temp(tmp_path: Path, way: str) -> None:
    target = tmp_path / "out.txt"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_output(target) as out:
        out.write(b"new")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.txt"]


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o644])
def test_exact_mode_whatever_the_umask(tmp_path: Path, way: str, mode: int) -> None:
    old = os.umask(0o077)
    try:
        write_atomic(tmp_path / "f", b"x", mode=mode)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == mode


def test_missing_directory_names_the_target(tmp_path: Path, way: str) -> None:
    target = tmp_path / "no" / "such" / "out.txt"
    with pytest.raises(FileNotFoundError) as info:
        write_atomic(target, b"x")
    assert info.value.filename == str(target)


def test_fallback_temp_is_visible_while_writing_then_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_atomic, "USE_O_TMPFILE", False)
    with atomic_output(tmp_path / "out.txt") as out:
        out.write(b"x")
        (temp,) = os.listdir(tmp_path)
        assert temp.startswith(".out.txt.") and temp.endswith(".tmp")
    assert os.listdir(tmp_path) == ["out.txt"]


def test_a_dead_writers_temp_is_removed_by_the_next_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    monkeypatch.setattr(_atomic, "_cleaned_dirs", set())
    stale = tmp_path / ".secret.txt.0123456789ab.tmp"  # what a SIGKILLed writer leaves
    stale.write_bytes(b"plaintext of a killed run")
    write_atomic(tmp_path / "other.txt", b"x")
    assert sorted(os.listdir(tmp_path)) == ["other.txt"]


def test_a_live_writers_temp_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    monkeypatch.setattr(_atomic, "_cleaned_dirs", set())
    live = tmp_path / ".secret.txt.0123456789ab.tmp"
    live.write_bytes(b"being written")
    fd = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # what a live writer holds on its temp
        write_atomic(tmp_path / "other.txt", b"x")
        assert live.exists()
    finally:
        os.close(fd)


def test_unrelated_dot_files_are_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    monkeypatch.setattr(_atomic, "_cleaned_dirs", set())
    for name in (".bashrc", ".notes.tmp", ".a.xyz.tmp", "visible.0123456789ab.tmp"):
        (tmp_path / name).write_bytes(b"keep")
    write_atomic(tmp_path / "other.txt", b"x")
    assert len(os.listdir(tmp_path)) == 5


def test_create_exclusive(tmp_path: Path, way: str) -> None:
    target = tmp_path / "v00000001"
    assert create_exclusive(target, b"first") is True
    assert create_exclusive(target, b"second") is False
    assert target.read_bytes() == b"first"
    assert os.listdir(tmp_path) == ["v00000001"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
