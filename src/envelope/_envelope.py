"""The Envelope class: envelope encryption of bytes, streams and files."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, cast

from envelope import _native, _telemetry
from envelope import _streams as streams
from envelope._document_keys import DocumentKeys
from envelope._file_methods import FileMethods
from envelope._files import Progress
from envelope._format.context import Context, canonical_context
from envelope._format.message import (
    Header,
    encode_header,
    parse_header,
    read_exactly,
    read_header,
)
from envelope._keys.cache import DataKeyCache
from envelope._keys.cluster import ClusterSecret
from envelope._keys.source import KeySource, wipe
from envelope._keys.verify import verify_slots
from envelope.errors import DecryptionError
from envelope.keystore import KeyStore
from envelope.kms import KmsBackend

if TYPE_CHECKING:
    from typing_extensions import Buffer

    from envelope._batch import BatchHeader, EncryptedBatch
    from envelope.settings import Settings

__all__ = ["Envelope"]

_NO_MEMO = object()  # equals no context


def _expected(context: Mapping[str, str] | None, any_context: bool) -> Context | None:
    """The canonical form of the context a caller requires: ``context``, else the empty
    one, unless ``any_context`` (None: any context).

    Raises:
        ValueError: both a context and ``any_context``; as ``canonical_context``.
    """
    if any_context:
        if context is not None:
            raise ValueError("pass either context= or any_context=True, not both")
        return None
    return () if context is None else canonical_context(context)


class Envelope(DocumentKeys, FileMethods):
    """Encrypts under a fresh data key from ``kms``, split with ``cluster_secret``.

    Args:
        kms: the backend holding this service's KEK (:class:`~envelope.kms.KmsBackend`).
        cluster_secret: this service's cluster-secret part(s). When given, new messages
            need both the KMS and the part to decrypt, and messages (batches, stored
            keys) that record no split are refused: anyone with the KMS key alone could
            have made them.
        threads: worker threads for large messages; 0 means one per core.
        keystore: where stored data keys live (:mod:`envelope.keystore`), for
            ``key_ref=`` and for messages that reference a stored key.
        cache: a :class:`~envelope.DataKeyCache` to cut KMS calls.
        threshold: with several backends, share each data key k-of-n (Shamir) instead
            of wrapping it whole under each: any ``threshold`` backends then recover it.
            Only messages with exactly this threshold over these custodians are then
            accepted; the custodians must not overlap (ValueError).
        accept_unsplit: also accept messages with no cluster-secret split or not the
            configured threshold (migration); each is logged on the ``envelope`` logger.

    Decryption only ever uses ``kms`` and ``cluster_secret``: a message cannot make
    this object contact another KMS or key, it can only fail to name the one configured
    (a discovering backend, ``build_kms`` of settings with ``allowed_keys`` and no key,
    lets it pick another key its allow-list allows, through the same configured KMS).
    What is accepted is this configuration's choice, never the message's
    (docs/format.md, "Acceptance policy").

    Raises:
        ValueError: negative ``threads``, or a bad ``threshold`` (range, overlap).
    """

    __slots__ = ("_keys", "_memo", "_threads")

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
    ) -> None:
        if threads < 0:
            raise ValueError("threads must be >= 0")
        backends = list(kms) if isinstance(kms, Sequence) else [kms]
        self._keys = KeySource(
            backends, cluster_secret, keystore, cache, threshold, accept_unsplit=accept_unsplit
        )
        self._threads = threads
        #: The last context mapping seen (a copy, or None), its canonical form and
        #: message-cache key: a caller that passes an equal plain dict (or None) again
        #: skips canonicalisation and the key's construction. Replaced whole, so
        #: threads always read a consistent triple.
        self._memo: tuple[object, Context, Hashable | None] = (_NO_MEMO, (), None)

    def _context(self, context: Mapping[str, str] | None) -> tuple[Context, Hashable | None]:
        """The canonical form of ``context`` and, with a cache, the message-cache key of
        new messages under it (see ``_memo``).

        Raises:
            ValueError, TypeError: as ``canonical_context``.
            KmsError: as :meth:`KeySource.seal_key`.
        """
        memo = self._memo
        # Only a plain dict (or None) is compared: a dict compares by items, without
        # calling code of the caller's (a custom mapping's __eq__).
        if (context is None or type(context) is dict) and memo[0] == context:
            return memo[1], memo[2]
        ctx = canonical_context(context)
        key = self._keys.seal_key(ctx) if self._keys.cache is not None else None
        if context is None or type(context) is dict:
            self._memo = (None if context is None else dict(context), ctx, key)
        return ctx, key

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Envelope:
        """The Envelope ``settings`` describe (``options``: ``threads=``, ``cache=``); it
        pickles as references to those settings, never key bytes.

        Raises:
            ConfigError: a part cannot be built (the message names it).
        """
        from envelope.settings._recipe import arguments  # noqa: PLC0415 - imports pydantic

        return cls(**arguments(settings), **options)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles as references to its configuration (raises pickle.PicklingError if a
        part holds raw key bytes or a ready client); see :mod:`envelope.settings._recipe`."""
        from envelope.settings._recipe import reduce  # noqa: PLC0415 - imports pydantic

        return reduce(type(self), self._keys, self._threads)

    def __repr__(self) -> str:
        backends = self._keys.backends
        kms = backends[0] if len(backends) == 1 else list(backends)
        return f"Envelope(kms={kms!r}, cluster_secret={self._keys.cluster!r})"

    @property
    def kms(self) -> KmsBackend:
        """The primary KMS backend (the one that generates data keys)."""
        return self._keys.primary

    @property
    def cache(self) -> DataKeyCache | None:
        """The data-key cache, if any."""
        return self._keys.cache

    # -- stored keys ------------------------------------------------------------------

    def store_new_key(self, name: str, context: Mapping[str, str] | None = None) -> int:
        """Creates a new version of the stored data key ``name`` (one KMS call).

        Messages encrypted with ``key_ref=name`` afterwards use it; older versions keep
        decrypting the messages that name them.

        Returns:
            The new version number.

        Raises:
            ConfigError: no key store; KmsError: the KMS or the store failed.
        """
        return self._keys.store_new_key(name, canonical_context(context))

    def rewrap_stored_key(self, name: str, version: int | None = None) -> int:
        """Rewraps a stored key version under the newest KEK version, conditionally
        (a concurrent change makes this fail rather than be lost).

        Returns:
            The version rewrapped.

        Raises:
            VersionConflict: another writer changed it first; KmsError, ConfigError.
        """
        return self._keys.rewrap_stored_key(name, version)

    # -- bytes ------------------------------------------------------------------------

    def encrypt(
        self, data: Buffer, context: Mapping[str, str] | None = None, *, key_ref: str | None = None
    ) -> bytes:
        """Encrypts ``data`` (any contiguous buffer) into one envelope message.

        Args:
            data: the plaintext.
            context: encryption context bound to the message.
            key_ref: use the stored data key ``name`` or ``name@version`` from the
                configured key store instead of a fresh one (the message records the
                reference, not the key).

        Raises:
            KmsError: the KMS could not generate or unwrap a data key.
            ConfigError: ``key_ref`` without a key store, or outside it.
            KeyUnavailableError: ``key_ref`` names no stored key.
            ValueError, TypeError: the context is invalid (see ``canonical_context``).
        """
        memo = self._memo
        if key_ref is None and (context is None or type(context) is dict) and memo[0] == context:
            ctx, key = memo[1], memo[2]  # as self._context(context), inlined: the hot path
        else:
            ctx, key = self._context(context)
        size = len(data) if type(data) is bytes else memoryview(data).nbytes
        if key is not None and key_ref is None:
            keys, cache = self._keys, self._keys.cache
            fast = cache is not None and keys.cluster is None  # else check the part first
            sealer = cache.hit_for_encryption(key, size) if cache is not None and fast else None
            hit = sealer is not None
            if sealer is None:  # a miss, or a cluster part to check: the full path
                sealer = keys.cached_sealer(ctx, size, key)  # reports its hit or fill
            # The salt is drawn from the OS inside the native call.
            sealed = sealer.seal(data, None, self._threads)
            if _telemetry.active:
                if hit:
                    _telemetry.cached_message("encrypt", size)
                else:
                    _telemetry.processed("encrypt", size)
            return sealed
        fresh = self._keys.one_call(ctx) if key_ref is None else None
        if fresh is not None:  # a local keyring, no cache: the message in one native call
            sealed = fresh.native.seal(data, self._threads)
            if _telemetry.active:
                _telemetry.processed("encrypt", size)
            return sealed
        header_bytes, digest, input_key = self._keys.new_message(ctx, size, key_ref)
        try:  # salt None: drawn from the OS inside the native call
            out = _native.cobblestone_seal(
                bytes(input_key), None, digest, data, self._threads, None, header_bytes
            )
        finally:
            wipe(input_key)
        assert out is not None
        _telemetry.processed("encrypt", size)
        return out

    def decrypt(
        self,
        blob: Buffer,
        context: Mapping[str, str] | None = None,
        *,
        any_context: bool = False,
    ) -> bytes:
        """Decrypts an envelope message.

        Args:
            blob: the message.
            context: the message's context must equal it; without one, only a message
                with an empty context decrypts.
            any_context: accept whatever context the message has (no ``context``).

        Raises:
            DecryptionError: the message is tampered, truncated, extended, or its
                context differs; subclasses :class:`FormatError` (not a message this
                version reads) and :class:`KeyUnavailableError` (it needs a KMS key or
                cluster-secret part that is not configured; the error names it).
            KmsError: the KMS could not be used.
            ValueError, TypeError: ``context`` is invalid (see ``canonical_context``), or
                given with ``any_context``.
        """
        memo = self._memo
        if any_context:
            expected = _expected(context, any_context)
        elif (context is None or type(context) is dict) and memo[0] == context:
            expected = memo[1]  # as self._context(context), inlined: the hot path
        else:
            expected = self._context(context)[0]
        if self._keys.cache is not None:
            # bytes as they are (no view to make); anything else as a byte view
            message = blob if type(blob) is bytes else memoryview(blob).cast("B")
            offset, opener, hit = self._keys.cached_opener(message, expected)
            plain = opener.open(message, offset, self._threads)
            if _telemetry.active:
                if hit:
                    _telemetry.cached_message("decrypt", len(plain))
                else:
                    _telemetry.processed("decrypt", len(plain))
            return plain
        fresh = None if expected is None else self._keys.one_call(expected)
        if fresh is not None and fresh.opens:  # a local keyring, no cache: one native call
            try:
                opened = fresh.native.open(blob, self._threads)
            except DecryptionError:  # the full path below raises, and reports the KMS call
                opened = None
            if opened is not None:
                if _telemetry.active:
                    _telemetry.processed("decrypt", len(opened))
                return opened
        view = memoryview(blob).cast("B")
        message = blob if type(blob) is bytes else view  # bytes are parsed without a view
        offset, digest, input_key = self._keys.open_message(message, expected)
        try:  # the native open checks the key commitment before any chunk
            out = _native.cobblestone_open(bytes(input_key), view[offset:], digest, self._threads)
        finally:
            wipe(input_key)
        assert out is not None
        _telemetry.processed("decrypt", len(out))
        return out

    def verify_key_slots(self, blob: Buffer) -> list[tuple[str, str, str | None]]:
        """Checks every key slot this Envelope can use, not just the first that works.

        Key slots are outside the body's authenticated context (so that messages can be
        rewrapped); a damaged spare slot (a disaster-recovery region, say) therefore goes
        unnoticed while another slot opens the message. This unwraps each trusted slot
        and checks its key against the body's key commitment (no chunk is decrypted).
        For a k-of-n threshold message, a k-subset of the shares that opens the message
        is searched for and every other share is checked against it, so a share copied
        from another message is named.

        Returns:
            ``(provider, key id, problem)`` per trusted slot; ``problem`` is None when the
            slot is good, else why it is not (a missing or wrong cluster part and a split
            this Envelope refuses are named as such).

        Raises:
            FormatError: not a message. KeyUnavailableError: no slot is trusted here.
        """
        return verify_slots(self._keys, memoryview(blob).cast("B"))

    def rewrap(self, blob: Buffer) -> bytes:
        """Re-wraps the message's data key under the newest KEK version.

        Only the key slot changes; the body is copied unchanged and still decrypts.

        Raises:
            DecryptionError, KeyUnavailableError, FormatError, KmsError: as :meth:`decrypt`.
        """
        view = memoryview(blob).cast("B")
        header, offset = parse_header(view)
        new_header = self._rewrapped(header)
        return encode_header(new_header) + bytes(view[offset:])

    def _rewrapped(self, header: Header) -> Header:
        slots = self._keys.rewrap_slots(header.slots, header.context)
        return Header(header.suite, header.context, header.split, slots)

    # -- record batches ---------------------------------------------------------------

    def encrypt_batch(
        self,
        records: Any,
        *,
        aad: Any = None,
        context: Mapping[str, str] | None = None,
        key_ref: str | None = None,
    ) -> EncryptedBatch:
        """Encrypts many small records at once, each decryptable on its own.

        One KMS call per batch; the kernel seals all records in one call across all
        cores. ``records`` (and ``aad``, one entry per record, e.g. primary keys) may be
        a list of bytes-like objects, a ``(data, offsets)`` tuple, a pyarrow string or
        binary array (any width or view, chunked or not) or a 2-D numpy uint8 array; the
        result's records keep that shape and :meth:`decrypt_batch` restores the Arrow
        type. See :mod:`envelope._batch`.

        Raises:
            KmsError: the KMS could not generate a data key.
            TypeError, ValueError: an unsupported shape, bad offsets, or an ``aad``
                whose length differs from ``records``.
        """
        from envelope import _batch as batch  # noqa: PLC0415 - the bulk path, on first use

        return batch.encrypt(
            self._keys, records, aad, canonical_context(context), self._threads, key_ref=key_ref
        )

    def decrypt_batch(
        self,
        encrypted: EncryptedBatch,
        *,
        aad: Any = None,
        context: Mapping[str, str] | None = None,
        errors: Literal["raise", "collect"] = "raise",
        any_context: bool = False,
    ) -> Any:
        """Decrypts a batch; the output has the shape of ``encrypted.records``.

        Args:
            encrypted: from :meth:`encrypt_batch` or :meth:`EncryptedBatch.from_parts`.
            aad: the per-record AAD the batch was sealed with.
            context: the batch's context must equal it (none: the empty context).
            errors: ``"raise"`` stops at the first bad record; ``"collect"`` returns a
                :class:`~envelope._batch.BatchResult` with every good record and the
                positions of the bad ones.
            any_context: accept whatever context the batch has (no ``context``).

        Raises:
            DecryptionError: a record is tampered, moved, or has the wrong AAD (its
                ``index`` attribute says which, never its content), or the header or
                context is wrong, or records were added or dropped.
            KmsError: the KMS could not be used.
        """
        from envelope import _batch as batch  # noqa: PLC0415 - the bulk path, on first use

        return batch.decrypt(
            self._keys,
            encrypted,
            aad,
            _expected(context, any_context),
            errors=errors,
            threads=self._threads,
        )

    def batch_header(
        self,
        header: bytes | bytearray | memoryview | BatchHeader,
        *,
        context: Mapping[str, str] | None = None,
        any_context: bool = False,
    ) -> BatchHeader:
        """Opens a stored batch header (one KMS call) so that
        :meth:`BatchHeader.decrypt_record` can decrypt its records one by one.

        Raises:
            DecryptionError, KmsError: as :meth:`decrypt`.
        """
        from envelope import _batch as batch  # noqa: PLC0415 - the bulk path, on first use

        return batch.open_header(self._keys, header, _expected(context, any_context))

    # -- streams ----------------------------------------------------------------------

    def encrypt_stream(
        self,
        src: BinaryIO,
        dst: BinaryIO,
        context: Mapping[str, str] | None = None,
        *,
        progress: Progress | None = None,
        key_ref: str | None = None,
    ) -> int:
        """Encrypts ``src`` to ``dst`` in constant memory.

        Returns:
            The number of plaintext bytes read.

        Raises:
            KmsError, ValueError: as :meth:`encrypt`; OSError from the streams.
        """
        header_bytes, digest, input_key = self._keys.new_message(
            canonical_context(context), None, key_ref
        )
        try:
            dst.write(header_bytes)
            return streams.seal_stream(
                input_key, digest, src, dst, threads=self._threads, progress=progress
            )
        finally:
            wipe(input_key)

    def decrypt_stream(
        self,
        src: BinaryIO,
        dst: BinaryIO,
        context: Mapping[str, str] | None = None,
        *,
        progress: Progress | None = None,
        any_context: bool = False,
    ) -> int:
        """Decrypts ``src`` to ``dst`` in constant memory (``context``, ``any_context``:
        as :meth:`decrypt`).

        Only authenticated plaintext is written, chunk by chunk; if the message turns out
        to be truncated or tampered later on, ``dst`` has received a valid prefix and
        DecryptionError is raised. Use :meth:`decrypt_file` to get all or nothing.

        Returns:
            The number of plaintext bytes written.

        Raises:
            DecryptionError, KmsError: as :meth:`decrypt`; OSError from the streams.
        """
        expected = _expected(context, any_context)
        header = read_header(src)
        prefix = read_exactly(src, _native.PREFIX_LEN)  # salt and key commitment
        digest, input_key = self._keys.open_header(header, expected, prefix)
        try:
            source = cast(BinaryIO, streams.Prepended(prefix, src))
            return streams.open_stream(
                input_key, digest, source, dst, threads=self._threads, progress=progress
            )
        finally:
            wipe(input_key)
