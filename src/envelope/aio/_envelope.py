"""AsyncEnvelope: the Envelope API as coroutines, for asyncio services."""

from __future__ import annotations

import concurrent.futures
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, TypeVar, cast

from envelope._batch import BatchHeader, EncryptedBatch
from envelope._envelope import Envelope
from envelope._files import STREAM_PIECE, Progress, open_input, output
from envelope._format.message import encode_header, read_header
from envelope._keys.cache import DataKeyCache
from envelope._keys.cluster import ClusterSecret
from envelope.aio._inline import INLINE_BYTES, decrypt_if_cached, encrypt_if_cached
from envelope.aio._runner import GuardedWriter, Runner, check
from envelope.keystore import KeyStore
from envelope.kms import KmsBackend

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self

    from typing_extensions import Buffer

    from envelope.settings import Settings

__all__ = ["AsyncEnvelope"]

T = TypeVar("T")


class AsyncEnvelope:
    """An :class:`~envelope.Envelope` whose methods are coroutines that never block the
    event loop: every call (its KMS requests and its crypto) runs on a bounded thread
    pool of this object's own, so a slow KMS holds a pool thread, not the loop, and
    does not use up the loop's default executor either. The one exception is a small
    message whose key the data-key cache already holds (``inline_bytes``).

    Arguments are those of :class:`~envelope.Envelope` (it is built from them), plus:

    Args:
        max_workers: threads of this object's pool (default 8): calls beyond that many
            at once wait for a free thread.
        executor: use this thread pool instead (shared with other code; then
            :meth:`aclose` leaves it running). Not with ``max_workers``.
        inline_bytes: with a ``cache``, :meth:`encrypt` and :meth:`decrypt` of messages
            up to this size whose key is already cached run on the loop (a few
            microseconds, less than a trip to the pool; docs/async.md); 0: never.

    Every method raises what the Envelope method of the same name raises (the
    :mod:`envelope.errors` hierarchy, ValueError, TypeError), and RuntimeError once
    :meth:`aclose` was called. Use it as ``async with AsyncEnvelope(...) as env:``, or
    call :meth:`aclose` when done.

    Cancellation (``task.cancel()``, ``asyncio.timeout``): a call that has not started
    never runs; a started one is told to stop at its next checkpoint (after a KMS call
    returns, before each write). Bytes methods raise CancelledError at once, the
    abandoned call wiping its key as always. Stream and file methods first wait for the
    call to stop, so that when CancelledError arrives a file output is final (there is
    no file and no temporary one) and nothing writes to a stream any more; a KMS request
    under way is not interrupted, so this wait lasts until it returns or times out.

    Raises:
        ValueError: as :class:`~envelope.Envelope`; ``max_workers`` < 1, or given with
            ``executor``.
    """

    __slots__ = ("_envelope", "_inline_bytes", "_runner")

    def __init__(
        self,
        kms: KmsBackend | Sequence[KmsBackend],
        cluster_secret: ClusterSecret | None = None,
        *,
        threads: int = 0,
        keystore: KeyStore | None = None,
        cache: DataKeyCache | None = None,
        threshold: int | None = None,
        accept_unsplit: bool = False,
        max_workers: int | None = None,
        executor: concurrent.futures.ThreadPoolExecutor | None = None,
        inline_bytes: int = INLINE_BYTES,
    ) -> None:
        envelope = Envelope(
            kms,
            cluster_secret,
            threads=threads,
            keystore=keystore,
            cache=cache,
            threshold=threshold,
            accept_unsplit=accept_unsplit,
        )
        self._envelope = envelope
        self._runner = Runner(max_workers, executor)
        self._inline_bytes = inline_bytes

    @classmethod
    def wrap(
        cls,
        envelope: Envelope,
        *,
        max_workers: int | None = None,
        executor: concurrent.futures.ThreadPoolExecutor | None = None,
        inline_bytes: int = INLINE_BYTES,
    ) -> AsyncEnvelope:
        """An AsyncEnvelope over an existing Envelope (its backends, cache and key store
        are shared with it; the sync object stays usable).

        Raises:
            ValueError: as the constructor's ``max_workers`` and ``executor``.
        """
        self = cls.__new__(cls)
        self._envelope = envelope
        self._runner = Runner(max_workers, executor)
        self._inline_bytes = inline_bytes
        return self

    @classmethod
    async def from_settings(
        cls,
        settings: Settings,
        *,
        max_workers: int | None = None,
        executor: concurrent.futures.ThreadPoolExecutor | None = None,
        inline_bytes: int = INLINE_BYTES,
        **options: Any,
    ) -> AsyncEnvelope:
        """The AsyncEnvelope ``settings`` describe (``options``: as
        :meth:`Envelope.from_settings <envelope.Envelope.from_settings>`), built on the
        pool: building a backend may read files or log in to Vault.

        Raises:
            ConfigError: a part cannot be built (the message names it).
        """
        self = cls.__new__(cls)
        self._runner = Runner(max_workers, executor)
        self._inline_bytes = inline_bytes
        try:
            self._envelope = await self._runner.run(
                lambda _abort: Envelope.from_settings(settings, **options), settle=False
            )
        except BaseException:
            await self._runner.aclose()
            raise
        return self

    def __repr__(self) -> str:
        return f"AsyncEnvelope({self._envelope!r})"

    @property
    def envelope(self) -> Envelope:
        """The synchronous Envelope that does the work (for code outside the loop)."""
        return self._envelope

    @property
    def kms(self) -> KmsBackend:
        """The primary KMS backend (the one that generates data keys)."""
        return self._envelope.kms

    @property
    def cache(self) -> DataKeyCache | None:
        """The data-key cache, if any."""
        return self._envelope.cache

    # -- lifetime ---------------------------------------------------------------------

    async def aclose(self) -> None:
        """Refuses new calls, waits (without blocking the loop) for the calls under way,
        and stops this object's pool (not an ``executor=`` given to it)."""
        await self._runner.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _call(self, fn: Callable[[], T]) -> T:
        def call(abort: threading.Event) -> T:
            return fn()

        return await self._runner.run(call, settle=False)

    # -- stored keys ------------------------------------------------------------------

    async def store_new_key(self, name: str, context: Mapping[str, str] | None = None) -> int:
        """As :meth:`Envelope.store_new_key <envelope.Envelope.store_new_key>`.

        Raises:
            ConfigError: no key store; KmsError: the KMS or the store failed.
        """
        return await self._call(lambda: self._envelope.store_new_key(name, context))

    async def rewrap_stored_key(self, name: str, version: int | None = None) -> int:
        """As :meth:`Envelope.rewrap_stored_key <envelope.Envelope.rewrap_stored_key>`.

        Raises:
            VersionConflict: another writer changed it first; KmsError, ConfigError.
        """
        return await self._call(lambda: self._envelope.rewrap_stored_key(name, version))

    # -- bytes ------------------------------------------------------------------------

    async def encrypt(
        self, data: Buffer, context: Mapping[str, str] | None = None, *, key_ref: str | None = None
    ) -> bytes:
        """As :meth:`Envelope.encrypt <envelope.Envelope.encrypt>` (``data`` must not
        change until the call returns).

        Raises:
            KmsError, ConfigError, KeyUnavailableError, ValueError, TypeError: as
                :meth:`Envelope.encrypt <envelope.Envelope.encrypt>`.
        """
        if key_ref is None:
            sealed = encrypt_if_cached(self._envelope, data, context, self._inline_bytes)
            if sealed is not None:
                return sealed
        return await self._call(lambda: self._envelope.encrypt(data, context, key_ref=key_ref))

    async def decrypt(
        self,
        blob: Buffer,
        context: Mapping[str, str] | None = None,
        *,
        any_context: bool = False,
    ) -> bytes:
        """As :meth:`Envelope.decrypt <envelope.Envelope.decrypt>`.

        Raises:
            DecryptionError, FormatError, KeyUnavailableError, KmsError, ValueError,
                TypeError: as :meth:`Envelope.decrypt <envelope.Envelope.decrypt>`.
        """
        opened = decrypt_if_cached(self._envelope, blob, context, any_context, self._inline_bytes)
        if opened is not None:
            return opened
        return await self._call(
            lambda: self._envelope.decrypt(blob, context, any_context=any_context)
        )

    async def verify_key_slots(self, blob: Buffer) -> list[tuple[str, str, str | None]]:
        """As :meth:`Envelope.verify_key_slots <envelope.Envelope.verify_key_slots>`.

        Raises:
            FormatError: not a message. KeyUnavailableError: no slot is trusted here.
        """
        return await self._call(lambda: self._envelope.verify_key_slots(blob))

    async def rewrap(self, blob: Buffer) -> bytes:
        """As :meth:`Envelope.rewrap <envelope.Envelope.rewrap>`.

        Raises:
            DecryptionError, KeyUnavailableError, FormatError, KmsError: as
                :meth:`Envelope.decrypt <envelope.Envelope.decrypt>`.
        """
        return await self._call(lambda: self._envelope.rewrap(blob))

    # -- record batches ---------------------------------------------------------------

    async def encrypt_batch(
        self,
        records: Any,
        *,
        aad: Any = None,
        context: Mapping[str, str] | None = None,
        key_ref: str | None = None,
    ) -> EncryptedBatch:
        """As :meth:`Envelope.encrypt_batch <envelope.Envelope.encrypt_batch>`.

        Raises:
            KmsError, TypeError, ValueError: as
                :meth:`Envelope.encrypt_batch <envelope.Envelope.encrypt_batch>`.
        """
        return await self._call(
            lambda: self._envelope.encrypt_batch(records, aad=aad, context=context, key_ref=key_ref)
        )

    async def decrypt_batch(
        self,
        encrypted: EncryptedBatch,
        *,
        aad: Any = None,
        context: Mapping[str, str] | None = None,
        errors: Literal["raise", "collect"] = "raise",
        any_context: bool = False,
    ) -> Any:
        """As :meth:`Envelope.decrypt_batch <envelope.Envelope.decrypt_batch>`.

        Raises:
            DecryptionError, KmsError: as
                :meth:`Envelope.decrypt_batch <envelope.Envelope.decrypt_batch>`.
        """
        return await self._call(
            lambda: self._envelope.decrypt_batch(
                encrypted, aad=aad, context=context, errors=errors, any_context=any_context
            )
        )

    async def batch_header(
        self,
        header: bytes | bytearray | memoryview | BatchHeader,
        *,
        context: Mapping[str, str] | None = None,
        any_context: bool = False,
    ) -> BatchHeader:
        """As :meth:`Envelope.batch_header <envelope.Envelope.batch_header>` (the one KMS
        call happens here; the header's ``decrypt_record`` is then pure, quick crypto,
        fine to call on the loop for small records).

        Raises:
            DecryptionError, KmsError: as :meth:`Envelope.decrypt <envelope.Envelope.decrypt>`.
        """
        return await self._call(
            lambda: self._envelope.batch_header(header, context=context, any_context=any_context)
        )

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
        """As :meth:`Envelope.encrypt_stream <envelope.Envelope.encrypt_stream>`: blocking
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
        """As :meth:`Envelope.decrypt_stream <envelope.Envelope.decrypt_stream>` (streams
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
        """As :meth:`Envelope.encrypt_file <envelope.Envelope.encrypt_file>`: all or
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
        """As :meth:`Envelope.decrypt_file <envelope.Envelope.decrypt_file>`: ``dst``
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
        """As :meth:`Envelope.rewrap_file <envelope.Envelope.rewrap_file>`; cancelled,
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
