"""Publishing decrypted files into a memory-backed directory, all or nothing.

The layout is the kubelet's atomic writer: files live in a versioned directory
``..<timestamp>_<random>/``; ``..data`` is a symlink to the current version; each visible
name is a symlink ``name -> ..data/name``. A new set of files is written and fsynced in
full in a new version directory, the visible symlinks are made, then ``..data`` is swapped
with one ``rename(2)``: readers see the old set or the new set, never a mix, and a
process killed at any point leaves either no secrets (first run) or the previous set.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import time
from collections.abc import Mapping
from pathlib import Path

from envelope.errors import ConfigError

__all__ = ["DATA_LINK", "MEMORY_FILESYSTEMS", "filesystem_type", "publish"]

DATA_LINK = "..data"
MEMORY_FILESYSTEMS = frozenset({"tmpfs", "ramfs"})


def filesystem_type(
    path: str | os.PathLike[str], mountinfo: str = "/proc/self/mountinfo"
) -> str | None:
    """The filesystem type of the mount holding ``path`` (None if it cannot be told)."""
    target = os.path.realpath(path)
    best, best_type = "", None
    try:
        lines = Path(mountinfo).read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if not sep or len(fields) < 5:
            continue
        mount_point = fields[4].replace("\\040", " ")
        if (target == mount_point or target.startswith(mount_point.rstrip("/") + "/")) and len(
            mount_point
        ) >= len(best):
            best, best_type = mount_point, right.split()[0]
    return best_type


def check_memory_backed(directory: Path, *, allow_disk: bool) -> str | None:
    """Refuses a directory that is not on tmpfs/ramfs unless ``allow_disk``.

    Raises:
        ConfigError: the directory is disk-backed (or its type is unknown) and
            ``allow_disk`` is false.
    """
    fs = filesystem_type(directory)
    if fs in MEMORY_FILESYSTEMS or allow_disk:
        return fs
    raise ConfigError(
        f"refusing to write plaintext to {directory}: it is on {fs or 'an unknown filesystem'}, "
        "not in memory; mount an emptyDir with medium: Memory there (or pass --allow-disk)"
    )


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _swap_symlink(directory: Path, name: str, target: str) -> None:
    tmp = directory / f"..tmp_{secrets.token_hex(6)}"
    os.symlink(target, tmp)
    os.replace(tmp, directory / name)


def _swap(directory: Path, version: str) -> None:
    """The commit point: one rename makes ``version`` current."""
    _swap_symlink(directory, DATA_LINK, version)


def publish(
    directory: str | os.PathLike[str],
    files: Mapping[str, bytes],
    *,
    mode: int = 0o400,
    uid: int | None = None,
    gid: int | None = None,
) -> Path:
    """Atomically replaces the set of files in ``directory``.

    Args:
        directory: an existing directory (the memory-backed volume).
        files: file name -> content.
        mode: each file's mode (default 0400).
        uid, gid: each file's owner (needs root to set another owner).

    Returns:
        The new version directory.

    Raises:
        OSError: the directory cannot be written, or ownership cannot be set.
    """
    root = Path(directory)
    version = f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}_{secrets.token_hex(4)}"
    vdir = root / version
    vdir.mkdir(mode=0o700)
    try:
        for name, content in files.items():
            path = vdir / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                view = memoryview(content)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
                if uid is not None or gid is not None:
                    os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
        if uid is not None or gid is not None:
            os.chown(vdir, -1 if uid is None else uid, -1 if gid is None else gid)
        os.chmod(vdir, 0o550 if (uid is not None or gid is not None) else 0o555)
        _fsync(vdir)
    except BaseException:
        shutil.rmtree(vdir, ignore_errors=True)
        raise
    # Visible names point through ..data; new ones dangle until the swap below.
    for name in files:
        link = root / name
        if not (link.is_symlink() and os.readlink(link) == f"{DATA_LINK}/{name}"):
            _swap_symlink(root, name, f"{DATA_LINK}/{name}")
    _swap(root, version)
    _fsync(root)
    _cleanup(root, keep=version, names=set(files))
    return vdir


def _cleanup(root: Path, *, keep: str, names: set[str]) -> None:
    for entry in root.iterdir():
        if entry.name in (keep, DATA_LINK):
            continue
        if entry.name.startswith("..") and entry.is_dir() and not entry.is_symlink():
            with contextlib.suppress(OSError):
                entry.chmod(0o700)
                shutil.rmtree(entry)
        elif entry.name.startswith("..tmp_"):
            entry.unlink(missing_ok=True)
        elif (
            entry.is_symlink()
            and entry.name not in names
            and os.readlink(entry).startswith(f"{DATA_LINK}/")
        ):
            entry.unlink(missing_ok=True)  # a secret that is no longer configured
