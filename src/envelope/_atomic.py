"""Output files: all of a file or none of it, with exact permissions, even under SIGKILL.

What happens depends on what is at the path (the rules of ``cp`` and ``openssl -out``):

- a **symlink** is followed: the file it names is replaced (created, if it dangles);
- a **character device, FIFO or socket** (``/dev/null``, ``/dev/stdout``, a named pipe) is
  written straight into: no temporary file, no rename, no chmod;
- a **directory** is refused with :class:`IsADirectoryError`;
- otherwise (a regular file or nothing) the new file appears atomically with the given mode.

On Linux an atomic output is an anonymous ``O_TMPFILE`` inode in the target's directory,
fsynced, then linked into place (``linkat`` through ``/proc/self/fd``): a process killed at
any point leaves nothing visible. Replacing an existing file links the inode to a unique
hidden name and renames that over the target. Where ``O_TMPFILE`` is unavailable (another
OS, an old kernel, a filesystem that refuses it, no ``/proc``) a named temporary
``.NAME.<hex>.tmp`` is created with ``O_EXCL`` instead and renamed. Every named temporary is
``flock``-ed by its writer while it lives; the first write into a directory removes the
temporaries whose writer is gone (a killed run), and :func:`remove_temps` removes this
process's own (the CLI calls it on SIGTERM/SIGHUP/SIGINT).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["USE_O_TMPFILE", "atomic_output", "create_exclusive", "remove_temps", "write_atomic"]

#: Whether to try ``O_TMPFILE`` first (tests turn it off to exercise the fallback).
USE_O_TMPFILE = hasattr(os, "O_TMPFILE")

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")
_live_temps: set[str] = set()  # named temporaries of this process, not yet renamed or removed
_cleaned_dirs: set[str] = set()  # directories already swept for dead writers' temporaries


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, mode: int = 0o600) -> Iterator[BinaryIO]:
    """Yields a binary file whose contents replace ``path`` only if the block succeeds
    (see the module docstring for symlinks, devices, FIFOs and directories).

    Raises:
        IsADirectoryError: ``path`` is a directory (or a symlink to one).
        OSError: the directory is not writable, or an open, write, fsync or rename failed
            (``filename`` is ``path``).
    """
    target, existing = _resolve(path)
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        with _stream_into(path, target) as f:
            yield f
        return
    _sweep(target.parent)
    fd, temp = _open_new(path, target, mode)
    try:
        with os.fdopen(fd, "wb", closefd=False) as f:
            yield f
            f.flush()
        os.fsync(fd)
        _commit(fd, temp, target, replace=True)
    except BaseException:
        _discard(temp)
        raise
    finally:
        os.close(fd)
    _fsync_dir(target.parent)


def write_atomic(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600) -> None:
    """Writes ``data`` to ``path`` atomically with permissions ``mode``.

    Raises:
        IsADirectoryError, OSError: as :func:`atomic_output`.
    """
    with atomic_output(path, mode=mode) as f:
        f.write(data)


def create_exclusive(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600) -> bool:
    """Creates ``path`` holding ``data`` if no file of that name exists, all at once.

    Returns:
        True if this call created it, False if the name was already taken.

    Raises:
        OSError: the directory is not writable, or a write or fsync failed.
    """
    target = Path(path)
    _sweep(target.parent)
    fd, temp = _open_new(path, target, mode)
    try:
        _write_all(fd, data)
        os.fsync(fd)
        created = _commit(fd, temp, target, replace=False)
    finally:
        _discard(temp)
        os.close(fd)
    if created:
        _fsync_dir(target.parent)
    return created


def remove_temps() -> None:
    """Removes this process's named temporaries (for a signal handler; raises nothing)."""
    for name in list(_live_temps):
        _discard(name)


# -- where the output goes -------------------------------------------------------------


def _resolve(path: str | os.PathLike[str]) -> tuple[Path, os.stat_result | None]:
    """The final file a path names (symlinks followed) and what is there now."""
    target = Path(os.path.realpath(path))
    try:
        existing = os.stat(target)
    except FileNotFoundError:
        return target, None
    except OSError as exc:
        raise _named(exc, path) from None
    if stat.S_ISDIR(existing.st_mode):
        raise IsADirectoryError(
            errno.EISDIR, "is a directory; give the name of a file to write", os.fspath(path)
        )
    return target, existing


@contextlib.contextmanager
def _stream_into(path: str | os.PathLike[str], target: Path) -> Iterator[BinaryIO]:
    """A device or FIFO, opened for writing as it is (a FIFO waits for its reader)."""
    try:
        fd = os.open(target, os.O_WRONLY | os.O_NOCTTY | _CLOEXEC)
    except OSError as exc:
        raise _named(exc, path) from None
    with os.fdopen(fd, "wb") as f:
        yield f
        f.flush()


# -- the two ways of creating a new file -----------------------------------------------


def _open_new(path: str | os.PathLike[str], target: Path, mode: int) -> tuple[int, str | None]:
    """An open, empty, ``mode`` file for ``target``: anonymous (temp None) or named."""
    fd = _open_anonymous(target.parent, mode) if USE_O_TMPFILE else None
    if fd is not None:
        return fd, None
    try:
        return _open_named(target, mode)
    except OSError as exc:
        raise _named(exc, path) from None


def _open_anonymous(directory: Path, mode: int) -> int | None:
    """An ``O_TMPFILE`` inode in ``directory`` that can be linked, or None."""
    try:
        fd = os.open(directory, os.O_TMPFILE | os.O_WRONLY | _CLOEXEC, mode)
    except OSError:
        return None  # unsupported here; the named fallback reports any real error
    if not os.path.exists(f"/proc/self/fd/{fd}"):
        os.close(fd)  # no /proc: nothing to link it through
        return None
    try:
        os.fchmod(fd, mode)  # exact mode, whatever the umask
        fcntl.flock(fd, fcntl.LOCK_EX)  # marks a linked temp name as live (see _sweep)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_named(target: Path, mode: int) -> tuple[int, str]:
    """A new ``.NAME.<hex>.tmp`` next to ``target``, created with ``O_EXCL`` and locked."""
    while True:
        temp = _temp_name(target)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC, mode)
        _live_temps.add(temp)
        try:
            os.fchmod(fd, mode)
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_file(fd, temp):  # a sweeper did not take it between open and lock
                return fd, temp
        except BaseException:
            os.close(fd)
            _discard(temp)
            raise
        os.close(fd)
        _live_temps.discard(temp)


def _commit(fd: int, temp: str | None, target: Path, *, replace: bool) -> bool:
    """Gives the finished file the name ``target``; False if taken and not ``replace``."""
    if temp is None:
        try:
            _link_fd(fd, os.fspath(target))  # appears whole, in one step
            return True
        except FileExistsError:
            if not replace:
                return False
        while True:
            temp = _temp_name(target)
            _live_temps.add(temp)
            try:
                _link_fd(fd, temp)
                break
            except FileExistsError:
                _live_temps.discard(temp)
            except BaseException:
                _live_temps.discard(temp)
                raise
    try:
        if replace:
            os.replace(temp, target)
            _live_temps.discard(temp)
            return True
        try:
            os.link(temp, target)
        except FileExistsError:
            return False
        return True
    finally:
        _discard(temp)


def _link_fd(fd: int, dest: str) -> None:
    """``linkat(AT_FDCWD, "/proc/self/fd/N", dir, name, AT_SYMLINK_FOLLOW)``: gives the
    anonymous inode open as ``fd`` the name ``dest``.

    A ``dst_dir_fd`` makes CPython call ``linkat`` with ``AT_SYMLINK_FOLLOW`` (plain
    ``link(2)`` would try to link the ``/proc`` symlink itself and fail with EXDEV).
    """
    parent = os.open(os.path.dirname(dest), os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
    try:
        os.link(
            f"/proc/self/fd/{fd}", os.path.basename(dest), dst_dir_fd=parent, follow_symlinks=True
        )
    finally:
        os.close(parent)


def _temp_name(target: Path) -> str:
    return os.path.join(target.parent, f".{target.name}.{secrets.token_hex(6)}.tmp")


# -- temporaries of this process and of dead ones --------------------------------------


def _discard(temp: str | None) -> None:
    if temp is None:
        return
    with contextlib.suppress(OSError):
        if temp in _live_temps:
            os.unlink(temp)
    _live_temps.discard(temp)


def _sweep(directory: Path) -> None:
    """Removes, once per directory and process, the temporaries of writers that died.

    A temporary whose ``flock`` can be taken has no live writer (the kernel drops a
    dead process's locks); one whose writer is still at work is left alone.
    """
    key = os.fspath(directory)
    if key in _cleaned_dirs:
        return
    _cleaned_dirs.add(key)
    try:
        entries = [e for e in os.scandir(directory) if _TEMP_NAME.match(e.name)]
    except OSError:
        return
    for entry in entries:
        with contextlib.suppress(OSError):
            fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC)
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    continue
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if _same_file(fd, entry.path):
                    os.unlink(entry.path)
            finally:
                os.close(fd)


def _same_file(fd: int, name: str) -> bool:
    try:
        at_name = os.lstat(name)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (opened.st_dev, opened.st_ino) == (at_name.st_dev, at_name.st_ino)


# -- small helpers ---------------------------------------------------------------------


def _named(exc: OSError, path: str | os.PathLike[str]) -> OSError:
    """``exc`` as raised for ``path`` (not for a temporary name)."""
    named = type(exc)(exc.errno, exc.strerror, os.fspath(path))
    return named


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | _CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
