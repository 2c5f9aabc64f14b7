"""The file methods of :class:`~envelope.Envelope`: all-or-nothing file outputs over
its stream methods (a mixin, so that the Envelope class stays one screenful of API)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO, Protocol

from envelope._files import STREAM_PIECE, Progress, open_input, output
from envelope._format.message import Header, encode_header, read_header

__all__ = ["FileMethods"]


class _Streams(Protocol):
    def encrypt_stream(
        self,
        src: BinaryIO,
        dst: BinaryIO,
        context: Mapping[str, str] | None = None,
        *,
        progress: Progress | None = None,
        key_ref: str | None = None,
    ) -> int: ...

    def decrypt_stream(
        self,
        src: BinaryIO,
        dst: BinaryIO,
        context: Mapping[str, str] | None = None,
        *,
        progress: Progress | None = None,
        any_context: bool = False,
    ) -> int: ...

    def _rewrapped(self, header: Header) -> Header: ...


class FileMethods:
    """Mixed into Envelope (which provides the stream methods and ``_rewrapped``)."""

    __slots__ = ()

    def encrypt_file(
        self: _Streams,
        src: str | os.PathLike[str],
        dst: str | os.PathLike[str],
        context: Mapping[str, str] | None = None,
        *,
        mode: int = 0o600,
        progress: Progress | None = None,
        key_ref: str | None = None,
    ) -> int:
        """Encrypts file ``src`` into ``dst``, atomically (all or nothing) with ``mode``.

        Raises:
            ConfigError: ``src`` cannot be read or ``dst`` cannot be written.
            KmsError, ValueError: as :meth:`encrypt`.
        """
        with open_input(src) as f_in, output(dst, mode) as f_out:
            return self.encrypt_stream(f_in, f_out, context, progress=progress, key_ref=key_ref)

    def decrypt_file(
        self: _Streams,
        src: str | os.PathLike[str],
        dst: str | os.PathLike[str],
        context: Mapping[str, str] | None = None,
        *,
        mode: int = 0o600,
        progress: Progress | None = None,
        any_context: bool = False,
    ) -> int:
        """Decrypts file ``src`` into ``dst`` atomically with ``mode`` (default 0600);
        ``context``, ``any_context``: as :meth:`decrypt`.

        ``dst`` appears only if the whole message authenticated; on any failure no
        file, not even a partial one, is left behind.

        Raises:
            DecryptionError, KmsError: as :meth:`decrypt`.
            ConfigError: ``src`` cannot be read or ``dst`` cannot be written.
        """
        with open_input(src) as f_in, output(dst, mode) as f_out:
            return self.decrypt_stream(
                f_in, f_out, context, progress=progress, any_context=any_context
            )

    def rewrap_file(self: _Streams, path: str | os.PathLike[str]) -> None:
        """Rewraps the message in file ``path`` in place (atomically; body streamed).

        Raises:
            As :meth:`rewrap`; ConfigError if the file cannot be read or replaced.
        """
        target = Path(path)
        with open_input(target) as f_in:
            header = self._rewrapped(read_header(f_in))
            mode = os.fstat(f_in.fileno()).st_mode & 0o777
            with output(target, mode) as f_out:
                f_out.write(encode_header(header))
                while piece := f_in.read(STREAM_PIECE):
                    f_out.write(piece)
