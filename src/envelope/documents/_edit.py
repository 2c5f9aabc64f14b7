"""A private, memory-backed scratch file for ``envelope edit`` and ``exec --mount``.

The directory is made (0700) under ``/dev/shm`` or ``$XDG_RUNTIME_DIR`` (whichever is
tmpfs/ramfs), or an explicit one; disk is refused unless allowed. The files are 0600
and removed on every way out: return, exception, and SIGTERM/SIGHUP/SIGINT (turned into
an exception so the ``finally`` runs).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from envelope.documents._core import Opened, parse
from envelope.errors import ConfigError, FormatError

__all__ = [
    "Interrupted",
    "edit_loop",
    "memory_dir",
    "private_dir",
    "run_editor",
    "signals_raise",
    "write_private",
]

MEMORY_FILESYSTEMS = frozenset({"tmpfs", "ramfs"})


class Interrupted(Exception):
    """A terminating signal arrived; the scratch files were removed."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signal.Signals(signum).name}")
        self.signum = signum


def _filesystem(path: Path) -> str | None:
    target = os.path.realpath(path)
    best, kind = "", None
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if not sep or len(fields) < 5:
            continue
        mount = fields[4].replace("\\040", " ")
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, kind = mount, right.split()[0]
    return kind


def memory_dir(explicit: Path | None = None, *, allow_disk: bool = False) -> Path:
    """Where plaintext scratch files may go.

    Raises:
        ConfigError: no memory-backed directory (names what was tried and the way out).
    """
    candidates = [explicit] if explicit else [Path("/dev/shm")]  # noqa: S108 - checked tmpfs
    if not explicit and os.environ.get("XDG_RUNTIME_DIR"):
        candidates.append(Path(os.environ["XDG_RUNTIME_DIR"]))
    for c in candidates:
        if c is not None and c.is_dir() and (_filesystem(c) in MEMORY_FILESYSTEMS or allow_disk):
            return c.resolve()
    tried = ", ".join(str(c) for c in candidates)
    raise ConfigError(
        f"no memory-backed directory for the plaintext (tried {tried}); set XDG_RUNTIME_DIR "
        "to a tmpfs, or pass --allow-disk to accept a disk-backed one"
    )


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """SIGTERM, SIGHUP and SIGINT raise :class:`Interrupted` inside the block (so that
    ``finally`` clauses run); the previous handlers come back after it."""
    previous: dict[signal.Signals, Any] = {}

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        raise Interrupted(signum)

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        with contextlib.suppress(ValueError):  # not the main thread: no handlers
            previous[sig] = signal.signal(sig, on_signal)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def private_dir(parent: Path) -> Iterator[Path]:
    """A fresh 0700 directory under ``parent``, removed with its files on every exit
    (signals included)."""
    with signals_raise():
        path = Path(tempfile.mkdtemp(prefix="envelope-", dir=parent))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)


def write_private(path: Path, text: str) -> None:
    """Writes ``text`` to a new 0600 file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def run_editor(path: Path) -> int:
    """Runs ``$VISUAL`` / ``$EDITOR`` (default ``vi``) on ``path``; its exit status.

    Raises:
        ConfigError: the editor cannot be started.
    """
    command = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    argv = [*shlex.split(command), str(path)]
    if shutil.which(argv[0]) is None and not Path(argv[0]).exists():
        raise ConfigError(f"cannot start the editor {argv[0]!r}: set $EDITOR")
    try:
        return subprocess.call(argv)
    except OSError as exc:
        raise ConfigError(f"cannot start the editor {argv[0]!r}: {exc.strerror}") from None


def edit_loop(doc: Opened, scratch: Path, fmt: str, *, interactive: bool) -> str | None:
    """Runs the editor on the decrypted ``doc`` until the result parses and re-seals
    (interactive: the user is asked, and the edit comes back in the editor); the
    re-sealed text, or None when nothing changed.

    Raises:
        ConfigError: the editor failed, or (not interactive) the result is invalid;
            the file is then unchanged.
    """
    before = doc.text()
    text = before
    while True:
        scratch.unlink(missing_ok=True)
        write_private(scratch, text)
        status = run_editor(scratch)
        edited = scratch.read_text(encoding="utf-8")
        scratch.unlink(missing_ok=True)
        if status != 0:
            raise ConfigError(f"the editor exited with status {status}: {doc.name} is unchanged")
        if edited == before:
            return None
        try:
            parsed = parse(edited, fmt, doc.name)
            doc.reseal(parsed)
            return parsed.handler.dump(parsed)
        except (FormatError, ConfigError, ValueError, TypeError) as exc:
            problem = str(exc)
        if not interactive:
            raise ConfigError(f"{problem}; {doc.name} is unchanged (the edit was not saved)")
        print(f"envelope: {problem}", file=sys.stderr)
        answer = input("envelope: edit again with your changes? [Y/n] ").strip().lower()
        if answer not in ("", "y", "yes"):
            raise ConfigError(f"edit abandoned: {doc.name} is unchanged")
        text = edited
