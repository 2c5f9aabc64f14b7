"""File and stream plumbing under :class:`~envelope.Envelope`: opening inputs, atomic
outputs, the piece size and the progress callback type (streaming itself is _streams)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import BinaryIO

from envelope import chunked
from envelope._atomic import atomic_output
from envelope.errors import FileAccessError

__all__ = ["STREAM_PIECE", "Progress", "open_input", "output"]

#: Bytes read per step by the stream and file paths (a multiple of the chunk size).
STREAM_PIECE = 64 * chunked.CHUNK_SIZE

Progress = Callable[[int], None]


def open_input(path: str | os.PathLike[str]) -> BinaryIO:
    """``path`` opened for binary reading.

    Raises:
        FileAccessError: it cannot be read (names the file).
    """
    try:
        return open(path, "rb")
    except OSError as exc:
        raise FileAccessError(f"cannot read {path}: {exc.strerror}") from None


class output:
    """atomic_output that reports the file it could not create as a FileAccessError."""

    def __init__(self, path: str | os.PathLike[str], mode: int) -> None:
        self._cm = atomic_output(path, mode=mode)
        self._path = path

    def __enter__(self) -> BinaryIO:
        try:
            return self._cm.__enter__()
        except OSError as exc:
            raise FileAccessError(f"cannot write {self._path}: {exc.strerror}") from None

    def __exit__(self, *exc: object) -> bool | None:
        return self._cm.__exit__(*exc)  # type: ignore[arg-type]
