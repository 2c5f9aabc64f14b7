"""The Envelope class: envelope encryption of bytes, streams and files."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from envelope import _batch as batch
from envelope import _native, chunked
from envelope import _streams as streams
from envelope._atomic import atomic_output
from envelope._batch import BatchHeader, EncryptedBatch
from envelope._format.context import Context, canonical_context
from envelope._format.message import (
    PREAMBLE_LEN,
    SUITE_COBBLESTONE_256,
    Header,
    body_context,
    encode_header,
    parse_header,
    preamble_length,
    read_header,
)
from envelope._keys.cache import DataKeyCache
from envelope._keys.cluster import ClusterSecret
from envelope._keys.source import KeySource, wipe
from envelope.errors import ConfigError, DecryptionError, KmsError
from envelope.keystore._stores import KeyStore
from envelope.kms import KmsBackend
from envelope.kms._types import WrappedKey

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["Envelope"]

#: Bytes read per step by the stream and file paths (a multiple of the chunk size).
STREAM_PIECE = 64 * chunked.CHUNK_SIZE

Progress = Callable[[int], None]


class Envelope:
    """Encrypts under a fresh data key from ``kms``, split with ``cluster_secret``.

    Args:
        kms: the backend holding this service's KEK (:class:`~envelope.kms.KmsBackend`).
        cluster_secret: this service's cluster-secret part(s). When given, new messages
            need both the KMS and the part to decrypt. Messages that record no split
            decrypt without it.
        threads: worker threads for large messages; 0 means one per core.
        keystore: where stored data keys live (:mod:`envelope.keystore._stores`), for
            ``key_ref=`` and for messages that reference a stored key.
        cache: a :class:`~envelope.DataKeyCache` to cut KMS calls.
        threshold: with several backends, share each data key k-of-n (Shamir) instead
            of wrapping it whole under each: any ``threshold`` backends then recover it.

    Decryption only ever uses ``kms`` and ``cluster_secret``: a message cannot make
    this object contact another KMS or key, it can only fail to name the one configured.
    """

    __slots__ = ("_keys", "_threads")

    def __init__(
        self,
        kms: KmsBackend | Sequence[KmsBackend],
        cluster_secret: ClusterSecret | None = None,
        *,
        threads: int = 0,
        keystore: KeyStore | None = None,
        cache: DataKeyCache | None = None,
        threshold: int | None = None,
    ) -> None:
        if threads < 0:
            raise ValueError("threads must be >= 0")
        backends = list(kms) if isinstance(kms, Sequence) else [kms]
        self._keys = KeySource(backends, cluster_secret, keystore, cache, threshold)
        self._threads = threads

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

    # -- key handling -----------------------------------------------------------------

    def _new_message(
        self,
        context: Mapping[str, str] | None,
        key_ref: str | None = None,
        nbytes: int | None = None,
    ) -> tuple[Header, bytes, bytearray]:
        ctx = canonical_context(context)
        slots, split, input_key = self._keys.fresh(ctx, key_ref=key_ref, nbytes=nbytes)
        header = Header(SUITE_COBBLESTONE_256, ctx, split, slots)
        return header, encode_header(header), input_key

    def _prefix(self, ctx: Context) -> tuple[_native.MessageSealer, bytearray]:
        """A sealer for new messages under one fresh data key (header and body context
        precomputed: one native call per message), and its input key."""
        slots, split, input_key = self._keys.fresh(ctx)
        header = Header(SUITE_COBBLESTONE_256, ctx, split, slots)
        sealer = _native.MessageSealer(
            bytes(input_key), body_context(header), encode_header(header)
        )
        return sealer, input_key

    def _opened(self, raw: bytes) -> tuple[tuple[Context, _native.MessageOpener], bytearray]:
        """Parses a message header and unwraps its input key (for the decrypt cache):
        the header's context and an opener for the bodies under it."""
        header, _ = parse_header(raw)
        input_key = self._keys.input_key(
            header.slots, header.split, header.context, None, use_cache=False
        )
        opener = _native.MessageOpener(bytes(input_key), body_context(header))
        return (header.context, opener), input_key

    def _input_key(self, header: Header, context: Mapping[str, str] | None) -> bytearray:
        return self._keys.input_key(header.slots, header.split, header.context, context)

    def store_new_key(self, name: str, context: Mapping[str, str] | None = None) -> int:
        """Creates a new version of the stored data key ``name`` (one KMS call).

        Messages encrypted with ``key_ref=name`` afterwards use it; older versions keep
        decrypting the messages that name them.

        Returns:
            The new version number.

        Raises:
            ConfigError: no key store; KmsError: the KMS or the store failed.
        """
        return self._keys.store_new_key(name, context)

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
        size = memoryview(data).nbytes
        cache = self._keys.cache
        if cache is not None and key_ref is None:
            # The whole header (and the input key) is constant within a cache window.
            ctx = canonical_context(context)
            sealer, key_copy = cache.for_encryption(
                ("message", self._keys.identity(), ctx), size, lambda: self._prefix(ctx)
            )
            wipe(key_copy)  # the sealer holds its own copy
            return sealer.seal(data, chunked._salt(None), self._threads)
        header, header_bytes, input_key = self._new_message(context, key_ref, size)
        try:
            out = _native.cobblestone_seal(
                bytes(input_key),
                chunked._salt(None),
                body_context(header),
                data,
                self._threads,
                None,
                header_bytes,
            )
        finally:
            wipe(input_key)
        assert out is not None
        return out

    def decrypt(self, blob: Buffer, context: Mapping[str, str] | None = None) -> bytes:
        """Decrypts an envelope message.

        Args:
            blob: the message.
            context: if given, the message's context must equal it.

        Raises:
            DecryptionError: the message is tampered, truncated, extended, or its
                context differs; subclasses :class:`FormatError` (not a message this
                version reads) and :class:`KeyUnavailableError` (it needs a KMS key or
                cluster-secret part that is not configured; the error names it).
            KmsError: the KMS could not be used.
        """
        view = memoryview(blob).cast("B")
        cache = self._keys.cache
        if cache is not None:
            offset = PREAMBLE_LEN + preamble_length(bytes(view[:PREAMBLE_LEN]))
            raw = bytes(view[:offset])
            (ctx, opener), key_copy = cache.for_decryption_with(
                ("message", self._keys.identity(), raw), lambda: self._opened(raw)
            )
            wipe(key_copy)  # the opener holds its own copy
            if context is not None and canonical_context(context) != ctx:
                raise DecryptionError()
            return opener.open(view, offset, self._threads)
        header, offset = parse_header(view)
        input_key = self._input_key(header, context)
        digest = body_context(header)
        try:
            out = chunked.decrypt(input_key, view[offset:], digest, threads=self._threads)
        finally:
            wipe(input_key)
        return out

    def verify_key_slots(self, blob: Buffer) -> list[tuple[str, str, str | None]]:
        """Checks every key slot this Envelope can use, not just the first that works.

        Key slots are outside the body's authenticated context (so that messages can be
        rewrapped); a damaged spare slot (a disaster-recovery region, say) therefore goes
        unnoticed while another slot opens the message. This unwraps each trusted slot
        and checks its key against the body's key commitment (no chunk is decrypted).
        For a k-of-n threshold message each share can only be checked for unwrapping.

        Returns:
            ``(provider, key id, problem)`` per trusted slot; ``problem`` is None when the
            slot is good, else why it is not.

        Raises:
            FormatError: not a message. KeyUnavailableError: no slot is trusted here.
        """
        view = memoryview(blob).cast("B")
        header, offset = parse_header(view)
        digest = body_context(header)
        results: list[tuple[str, str, str | None]] = []
        for backend, slot in self._keys.matching(header.slots):
            problem: str | None = None
            try:
                if header.split.threshold is not None:
                    assert backend is not None
                    wipe(
                        backend.unwrap(
                            WrappedKey(slot.provider, slot.key_id, slot.wrapped), header.context
                        )
                    )
                else:
                    key = self._keys.input_key(
                        (slot,), header.split, header.context, None, use_cache=False
                    )
                    try:
                        chunked.Decryptor(key, digest).update(
                            view[offset : offset + _native.PREFIX_LEN]
                        )
                    finally:
                        wipe(key)
            except DecryptionError:
                problem = "does not unwrap to this message's key (damaged or replaced)"
            except KmsError as exc:
                problem = str(exc)
            results.append((slot.provider, slot.key_id, problem))
        return results

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
        a list of bytes-like objects, a ``(data, offsets)`` tuple, a pyarrow binary array
        or a 2-D numpy uint8 array; the result's records keep that shape. See
        :mod:`envelope._batch`.

        Raises:
            KmsError: the KMS could not generate a data key.
            TypeError, ValueError: an unsupported shape, bad offsets, or an ``aad``
                whose length differs from ``records``.
        """
        return batch.encrypt(
            self, records, aad, canonical_context(context), self._threads, key_ref=key_ref
        )

    def decrypt_batch(
        self,
        encrypted: EncryptedBatch,
        *,
        aad: Any = None,
        context: Mapping[str, str] | None = None,
        errors: Literal["raise", "collect"] = "raise",
    ) -> Any:
        """Decrypts a batch; the output has the shape of ``encrypted.records``.

        Args:
            encrypted: from :meth:`encrypt_batch` or :meth:`EncryptedBatch.from_parts`.
            aad: the per-record AAD the batch was sealed with.
            context: if given, the batch's context must equal it.
            errors: ``"raise"`` stops at the first bad record; ``"collect"`` returns a
                :class:`~envelope._batch.BatchResult` with every good record and the
                positions of the bad ones.

        Raises:
            DecryptionError: a record is tampered, moved, or has the wrong AAD (its
                ``index`` attribute says which, never its content), or the header or
                context is wrong, or records were added or dropped.
            KmsError: the KMS could not be used.
        """
        return batch.decrypt(self, encrypted, aad, context, errors=errors, threads=self._threads)

    def batch_header(
        self,
        header: bytes | bytearray | memoryview | BatchHeader,
        *,
        context: Mapping[str, str] | None = None,
    ) -> BatchHeader:
        """Opens a stored batch header (one KMS call) so that
        :meth:`BatchHeader.decrypt_record` can decrypt its records one by one.

        Raises:
            DecryptionError, KmsError: as :meth:`decrypt`.
        """
        return batch.open_header(self, header, context)

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
        header, header_bytes, input_key = self._new_message(context, key_ref)
        try:
            dst.write(header_bytes)
            return streams.seal_stream(
                input_key, body_context(header), src, dst, threads=self._threads, progress=progress
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
    ) -> int:
        """Decrypts ``src`` to ``dst`` in constant memory.

        Only authenticated plaintext is written, chunk by chunk; if the message turns out
        to be truncated or tampered later on, ``dst`` has received a valid prefix and
        DecryptionError is raised. Use :meth:`decrypt_file` to get all or nothing.

        Returns:
            The number of plaintext bytes written.

        Raises:
            DecryptionError, KmsError: as :meth:`decrypt`; OSError from the streams.
        """
        header = read_header(src)
        input_key = self._input_key(header, context)
        try:
            return streams.open_stream(
                input_key, body_context(header), src, dst, threads=self._threads, progress=progress
            )
        finally:
            wipe(input_key)

    # -- files ------------------------------------------------------------------------

    def encrypt_file(
        self,
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
        with _open_input(src) as f_in, _output(dst, mode) as f_out:
            return self.encrypt_stream(f_in, f_out, context, progress=progress, key_ref=key_ref)

    def decrypt_file(
        self,
        src: str | os.PathLike[str],
        dst: str | os.PathLike[str],
        context: Mapping[str, str] | None = None,
        *,
        mode: int = 0o600,
        progress: Progress | None = None,
    ) -> int:
        """Decrypts file ``src`` into ``dst`` atomically with ``mode`` (default 0600).

        ``dst`` appears only if the whole message authenticated; on any failure no
        file, not even a partial one, is left behind.

        Raises:
            DecryptionError, KmsError: as :meth:`decrypt`.
            ConfigError: ``src`` cannot be read or ``dst`` cannot be written.
        """
        with _open_input(src) as f_in, _output(dst, mode) as f_out:
            return self.decrypt_stream(f_in, f_out, context, progress=progress)

    def rewrap_file(self, path: str | os.PathLike[str]) -> None:
        """Rewraps the message in file ``path`` in place (atomically; body streamed).

        Raises:
            As :meth:`rewrap`; ConfigError if the file cannot be read or replaced.
        """
        target = Path(path)
        with _open_input(target) as f_in:
            header = self._rewrapped(read_header(f_in))
            mode = os.fstat(f_in.fileno()).st_mode & 0o777
            with _output(target, mode) as f_out:
                f_out.write(encode_header(header))
                while piece := f_in.read(STREAM_PIECE):
                    f_out.write(piece)


def _open_input(path: str | os.PathLike[str]) -> BinaryIO:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


class _output:
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
