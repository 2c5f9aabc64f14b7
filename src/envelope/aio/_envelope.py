"""AsyncEnvelope: the Envelope API as coroutines, for asyncio services."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from envelope._batch import BatchHeader, EncryptedBatch
from envelope._envelope import Envelope
from envelope._keys.cache import DataKeyCache
from envelope._keys.cluster import ClusterSecret
from envelope.aio._inline import INLINE_BYTES, decrypt_if_cached, encrypt_if_cached
from envelope.aio._runner import Runner
from envelope.aio._stream_methods import StreamMethods
from envelope.keystore import KeyStore
from envelope.kms import KmsBackend

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self

    from typing_extensions import Buffer

    from envelope.settings import Settings

__all__ = ["AsyncEnvelope"]

T = TypeVar("T")


class AsyncEnvelope(StreamMethods):
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

    Building one is synchronous, as for Envelope, and makes no KMS call, except that
    ``threshold=`` over AWS aliases resolves their key ids (DescribeKey) to check that
    the custodians differ: pass key ARNs then, build it before the loop runs, or use
    :meth:`from_settings`, which builds on the pool.

    Every method raises what the Envelope method of the same name raises (the
    :mod:`envelope.errors` hierarchy, ValueError, TypeError), and RuntimeError once
    :meth:`aclose` was called. Use it as ``async with AsyncEnvelope(...) as env:``, or
    call :meth:`aclose` when done.

    Cancellation (``task.cancel()``, ``asyncio.timeout``): a call that has not started
    never runs. Bytes methods raise CancelledError at once; the abandoned call finishes
    on its thread, wiping its key as always, and its result is dropped. A stream or file
    call is stopped at its next write, and the await waits for that, so that when
    CancelledError arrives a file output is final (there is no file and no temporary
    one) and nothing writes to a stream any more; a KMS request under way is not
    interrupted, so this wait lasts until it returns or times out.

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
        are shared with it; the sync object stays usable). ``max_workers``,
        ``executor``, ``inline_bytes``: as the constructor's.

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
        :meth:`Envelope.from_settings`), built on the
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
        """As :meth:`Envelope.store_new_key`.

        Raises:
            ConfigError: no key store; KmsError: the KMS or the store failed.
        """
        return await self._call(lambda: self._envelope.store_new_key(name, context))

    async def rewrap_stored_key(self, name: str, version: int | None = None) -> int:
        """As :meth:`Envelope.rewrap_stored_key`.

        Raises:
            VersionConflict: another writer changed it first; KmsError, ConfigError.
        """
        return await self._call(lambda: self._envelope.rewrap_stored_key(name, version))

    # -- bytes ------------------------------------------------------------------------

    async def encrypt(
        self, data: Buffer, context: Mapping[str, str] | None = None, *, key_ref: str | None = None
    ) -> bytes:
        """As :meth:`Envelope.encrypt` (``data`` must not
        change until the call returns).

        Raises:
            KmsError, ConfigError, KeyUnavailableError, ValueError, TypeError: as
                :meth:`Envelope.encrypt`.
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
        """As :meth:`Envelope.decrypt`.

        Raises:
            DecryptionError: the message does not decrypt (its subclasses FormatError
                and KeyUnavailableError included); KmsError, ValueError, TypeError: as
                :meth:`Envelope.decrypt`.
        """
        opened = decrypt_if_cached(self._envelope, blob, context, any_context, self._inline_bytes)
        if opened is not None:
            return opened
        return await self._call(
            lambda: self._envelope.decrypt(blob, context, any_context=any_context)
        )

    async def verify_key_slots(self, blob: Buffer) -> list[tuple[str, str, str | None]]:
        """As :meth:`Envelope.verify_key_slots`.

        Raises:
            FormatError: not a message. KeyUnavailableError: no slot is trusted here.
        """
        return await self._call(lambda: self._envelope.verify_key_slots(blob))

    async def rewrap(self, blob: Buffer) -> bytes:
        """As :meth:`Envelope.rewrap`.

        Raises:
            DecryptionError, KeyUnavailableError, FormatError, KmsError: as
                :meth:`Envelope.decrypt`.
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
        """As :meth:`Envelope.encrypt_batch`.

        Raises:
            KmsError, TypeError, ValueError: as
                :meth:`Envelope.encrypt_batch`.
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
        """As :meth:`Envelope.decrypt_batch`.

        Raises:
            DecryptionError, KmsError: as
                :meth:`Envelope.decrypt_batch`.
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
        """As :meth:`Envelope.batch_header` (the one KMS
        call happens here; the header's ``decrypt_record`` is then pure, quick crypto,
        fine to call on the loop for small records).

        Raises:
            DecryptionError, KmsError: as :meth:`Envelope.decrypt`.
        """
        return await self._call(
            lambda: self._envelope.batch_header(header, context=context, any_context=any_context)
        )
