"""File and stream plumbing under :class:`~envelope.Envelope`: opening inputs, atomic
outputs, and copying a stream through an incremental cipher, piece by piece."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import BinaryIO, Protocol

from envelope import chunked
from envelope._atomic import atomic_output
from envelope.errors import ConfigError

__all__ = ["STREAM_PIECE", "Progress", "copy_through", "open_input", "output"]

#: Bytes read per step by the stream and file paths (a multiple of the chunk size).
STREAM_PIECE = 64 * chunked.CHUNK_SIZE

Progress = Callable[[int], None]


class _Incremental(Protocol):
    def update(self, data: bytes) -> bytes: ...

    def finalize(self) -> bytes: ...


def copy_through(
    cipher: _Incremental, src: BinaryIO, dst: BinaryIO, progress: Progress | None
) -> tuple[int, int]:
    """Feeds ``src`` through ``cipher`` into ``dst`` (``progress`` gets each piece's
    input size).

    Returns:
        Bytes read from ``src`` and bytes written to ``dst``.

    Raises:
        OSError: from the streams; whatever ``cipher`` raises (DecryptionError).
    """
    read = written = 0
    while piece := src.read(STREAM_PIECE):
        read += len(piece)
        out = cipher.update(piece)
        written += len(out)
        dst.write(out)
        if progress:
            progress(len(piece))
    out = cipher.finalize()
    dst.write(out)
    return read, written + len(out)


def open_input(path: str | os.PathLike[str]) -> BinaryIO:
    """``path`` opened for binary reading.

    Raises:
        ConfigError: it cannot be read (names the file).
    """
    try:
        return open(path, "rb")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


class output:
    """atomic_output that reports the file it could not create as a ConfigError."""

    def __init__(self, path: str | os.PathLike[str], mode: int) -> None:
        self._cm = atomic_output(path, mode=mode)
        self._path = path

    def __enter__(self) -> BinaryIO:
        try:
            return self._cm.__enter__()
        except OSError as exc:
            raise ConfigError(f"cannot write {self._path}: {exc.strerror}") from None

    def __exit__(self, *exc: object) -> bool | None:
        return self._cm.__exit__(*exc)  # type: ignore[arg-type]
