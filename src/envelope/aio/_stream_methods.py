"""The stream and file methods of :class:`~envelope.aio.AsyncEnvelope` (a mixin, as
in the sync API): each runs on the pool behind a writer that stops at cancellation,
and its await settles before CancelledError is raised."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO, cast

from envelope._envelope import Envelope
from envelope._files import STREAM_PIECE, Progress, open_input, output
from envelope._format.message import encode_header, read_header
from envelope.aio._runner import GuardedWriter, Runner, check

__all__ = ["StreamMethods"]


class StreamMethods:
    """Mixed into AsyncEnvelope (which holds ``_envelope`` and ``_runner``)."""

    __slots__ = ()
    _envelope: Envelope
    _runner: Runner

    # -- streams ----------------------------------------------------------------------

    async def encrypt_stream(
        self,
        src: BinaryIO,
        dst: BinaryIO,
        context: Mapping[str, str] | None = None,
        *,
        progress: Progress | None = None,
        key_ref: str | None = None,
    ) -> int:
        """As :meth:`Envelope.encrypt_stream`: blocking
        streams (files, sockets in blocking mode), read and written on the pool, and
        ``progress`` is called there too. Cancelled, ``dst`` may hold a prefix of the
        message, as after any failure.

        Returns:
            The number of plaintext bytes read.

        Raises:
            KmsError, ValueError: as :meth:`encrypt`; OSError from the streams.
        """

        def call(abort: threading.Event) -> int:
            guarded = cast(BinaryIO, GuardedWriter(dst, abort))
            return self._envelope.encrypt_stream(
                src, guarded, context, progress=progress, key_ref=key_ref
            )

        return await self._runner.run(call, settle=True)

    async def decrypt_stream(
        self,
        src: BinaryIO,
        dst: BinaryIO,
        context: Mapping[str, str] | None = None,
        *,
        progress: Progress | None = None,
        any_context: bool = False,
    ) -> int:
        """As :meth:`Envelope.decrypt_stream` (streams
        and ``progress`` as in :meth:`encrypt_stream`): only authenticated plaintext is
        written; cancelled or failed, ``dst`` may hold an authenticated prefix. Use
        :meth:`decrypt_file` for all or nothing.

        Returns:
            The number of plaintext bytes written.

        Raises:
            DecryptionError, KmsError: as :meth:`decrypt`; OSError from the streams.
        """

        def call(abort: threading.Event) -> int:
            guarded = cast(BinaryIO, GuardedWriter(dst, abort))
            return self._envelope.decrypt_stream(
                src, guarded, context, progress=progress, any_context=any_context
            )

        return await self._runner.run(call, settle=True)

    # -- files ------------------------------------------------------------------------

    async def encrypt_file(
        self,
        src: str | os.PathLike[str],
        dst: str | os.PathLike[str],
        context: Mapping[str, str] | None = None,
        *,
        mode: int = 0o600,
        progress: Progress | None = None,
        key_ref: str | None = None,
    ) -> int:
        """As :meth:`Envelope.encrypt_file`: all or
        nothing, also when cancelled (then there is no ``dst``).

        Raises:
            ConfigError: ``src`` cannot be read or ``dst`` cannot be written.
            KmsError, ValueError: as :meth:`encrypt`.
        """

        def call(abort: threading.Event) -> int:
            with open_input(src) as f_in, output(dst, mode) as f_out:
                guarded = cast(BinaryIO, GuardedWriter(f_out, abort))
                n = self._envelope.encrypt_stream(
                    f_in, guarded, context, progress=progress, key_ref=key_ref
                )
                check(abort)  # cancelled at the very end: still no file
                return n

        return await self._runner.run(call, settle=True)

    async def decrypt_file(
        self,
        src: str | os.PathLike[str],
        dst: str | os.PathLike[str],
        context: Mapping[str, str] | None = None,
        *,
        mode: int = 0o600,
        progress: Progress | None = None,
        any_context: bool = False,
    ) -> int:
        """As :meth:`Envelope.decrypt_file`: ``dst``
        appears only if the whole message authenticated and the call was not cancelled.

        Raises:
            DecryptionError, KmsError: as :meth:`decrypt`.
            ConfigError: ``src`` cannot be read or ``dst`` cannot be written.
        """

        def call(abort: threading.Event) -> int:
            with open_input(src) as f_in, output(dst, mode) as f_out:
                guarded = cast(BinaryIO, GuardedWriter(f_out, abort))
                n = self._envelope.decrypt_stream(
                    f_in, guarded, context, progress=progress, any_context=any_context
                )
                check(abort)
                return n

        return await self._runner.run(call, settle=True)

    async def rewrap_file(self, path: str | os.PathLike[str]) -> None:
        """As :meth:`Envelope.rewrap_file`; cancelled,
        the file is either rewrapped whole or unchanged.

        Raises:
            As :meth:`rewrap`; ConfigError if the file cannot be read or replaced.
        """

        def call(abort: threading.Event) -> None:
            target = Path(path)
            with open_input(target) as f_in:
                header = self._envelope._rewrapped(read_header(f_in))  # the KMS call
                file_mode = os.fstat(f_in.fileno()).st_mode & 0o777
                with output(target, file_mode) as f_out:
                    guarded = GuardedWriter(f_out, abort)
                    guarded.write(encode_header(header))
                    while piece := f_in.read(STREAM_PIECE):
                        guarded.write(piece)
                    check(abort)

        await self._runner.run(call, settle=True)
