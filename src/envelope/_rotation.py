"""Rotation over many files: rewrap headers to the newest KEK version, or re-encrypt bodies
under a new cluster-secret part. Resumable and idempotent.

A *journal* (``state``) records each file once it is done (appended and fsynced), so a run
that was interrupted resumes where it stopped and a finished run does nothing twice.
Each file is replaced atomically; a file that fails is reported and left as it was.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from envelope._atomic import atomic_output
from envelope._envelope import Envelope
from envelope._format.message import MAGIC
from envelope.errors import EnvelopeError

__all__ = ["Summary", "envelope_files", "reencrypt_paths", "rewrap_paths"]


@dataclass
class Summary:
    """What a rotation run did."""

    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    #: ``failed`` as the ``envelope`` command words it (flags, not parameters).
    failed_cli: list[tuple[Path, str]] = field(default_factory=list)


def envelope_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """The given files, and the envelope messages found under given directories."""
    for p in map(Path, paths):
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and not f.name.startswith("."):
                    with open(f, "rb") as fh:
                        if fh.read(4) == MAGIC:
                            yield f
        else:
            yield p


class _Journal:
    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self._path = Path(path) if path is not None else None
        self.done: set[str] = set()
        if self._path is not None and self._path.exists():
            self.done = {line for line in self._path.read_text().splitlines() if line}

    def record(self, item: Path) -> None:
        if self._path is None:
            return
        with open(self._path, "a") as f:
            f.write(f"{item.resolve()}\n")
            f.flush()
            os.fsync(f.fileno())

    def __contains__(self, item: Path) -> bool:
        return str(item.resolve()) in self.done


def _run(
    paths: Iterable[str | os.PathLike[str]],
    action: Callable[[Path], None],
    state: str | os.PathLike[str] | None,
    progress: Callable[[Path], None] | None,
) -> Summary:
    journal = _Journal(state)
    summary = Summary()
    for path in envelope_files(paths):
        if path in journal:
            summary.skipped.append(path)
        else:
            try:
                action(path)
            except (EnvelopeError, OSError) as exc:
                summary.failed.append((path, str(exc)))
                cli = exc.cli_message if isinstance(exc, EnvelopeError) else str(exc)
                summary.failed_cli.append((path, cli))
            else:
                journal.record(path)
                summary.done.append(path)
        if progress:
            progress(path)
    return summary


def rewrap_paths(
    env: Envelope,
    paths: Iterable[str | os.PathLike[str]],
    *,
    state: str | os.PathLike[str] | None = None,
    progress: Callable[[Path], None] | None = None,
) -> Summary:
    """Rewraps every message's data key to the newest KEK version (bodies untouched)."""
    return _run(paths, env.rewrap_file, state, progress)


def reencrypt_paths(
    old: Envelope,
    new: Envelope,
    paths: Iterable[str | os.PathLike[str]],
    *,
    state: str | os.PathLike[str] | None = None,
    progress: Callable[[Path], None] | None = None,
) -> Summary:
    """Decrypts each message with ``old`` and re-encrypts it with ``new`` (a new data key
    and, typically, a new cluster-secret part), keeping its context; atomic per file."""

    def reencrypt(path: Path) -> None:
        from envelope._format.message import parse_header  # noqa: PLC0415 - avoids a cycle at import

        blob = path.read_bytes()
        header, _ = parse_header(blob)
        plaintext = old.decrypt(blob, dict(header.context))
        mode = path.stat().st_mode & 0o777
        with atomic_output(path, mode=mode) as out:
            out.write(new.encrypt(plaintext, dict(header.context)))

    return _run(paths, reencrypt, state, progress)
