"""Atomic file output: all of a file or none of it, with exact permissions.

Data goes to a temporary file created with ``O_EXCL`` and the final mode in the same
directory, is flushed and fsynced, then renamed over the target. If anything fails
the temporary file is removed, so a reader never sees a partial file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_output", "write_atomic"]


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, mode: int = 0o600) -> Iterator[BinaryIO]:
    """Yields a binary file whose contents replace ``path`` only if the block succeeds.

    Raises:
        OSError: the directory is not writable, or a write, fsync or rename failed.
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), mode)
    try:
        os.fchmod(fd, mode)  # exact mode, whatever the umask
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)


def write_atomic(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600) -> None:
    """Writes ``data`` to ``path`` atomically with permissions ``mode``.

    Raises:
        OSError: as :func:`atomic_output`.
    """
    with atomic_output(path, mode=mode) as f:
        f.write(data)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
