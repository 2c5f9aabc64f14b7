"""Opening messages with a data key recovered by hand (break-glass, docs/break-glass.md).

The key (or, for a k-of-n message, k of its shares) comes from the KMS's own tool, as
``envelope inspect`` shows. It goes through the same checks as any other key: the
input key is derived with the cluster part the message names, checked against the
body's key commitment, and every chunk is authenticated, so a wrong key, share or part
fails with the one opaque :class:`~envelope.errors.DecryptionError`. The acceptance
policy is the CLI's (docs/format.md): with a cluster secret, a message that records no
split is refused unless ``accept_unsplit``.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from envelope import _streams as streams
from envelope import chunked
from envelope._files import Progress, open_input, output
from envelope._format.context import Context, canonical_context
from envelope._format.message import Header, body_context, parse_header, read_exactly, read_header
from envelope._keys.cluster import ClusterSecret
from envelope._keys.derive import derive_input_key
from envelope._keys.policy import AcceptancePolicy
from envelope._keys.slots import wipe
from envelope._keys.threshold import combine_key
from envelope._keys.verify import MAX_SUBSETS, commitment_check
from envelope.errors import ConfigError, DecryptionError, KeyUnavailableError
from envelope.kms._types import DATA_KEY_BYTES

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["RecoveredKey", "decode_data_key", "load_data_key"]

#: A data-key file is at most this long (base64 of 32 bytes, whitespace, a BOM-less line).
_MAX_FILE = 4096


def decode_data_key(raw: bytes, source: str) -> bytearray:
    """A data key given as 32 raw bytes or as base64 text (what ``aws kms decrypt
    --output text`` and ``bao write -field=plaintext`` print).

    Raises:
        ConfigError: neither (names ``source``; the bytes are never shown).
    """
    if len(raw) == DATA_KEY_BYTES:
        return bytearray(raw)
    decoded: bytes | None
    try:
        decoded = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        decoded = None
    if decoded is None or len(decoded) != DATA_KEY_BYTES:
        raise ConfigError(
            f"data key {source} is not a 32-byte key (raw, or base64 as the KMS tools print "
            "it); recover it with the command `envelope inspect` shows"
        )
    return bytearray(decoded)


def load_data_key(path: str | os.PathLike[str]) -> bytearray:
    """The data key (or share) in file ``path`` (see :func:`decode_data_key`).

    Raises:
        ConfigError: the file cannot be read, or does not hold a key.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read(_MAX_FILE + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read data key file {path}: {exc.strerror}") from None
    if len(raw) > _MAX_FILE:
        raise ConfigError(f"data key file {path} is too large to hold a 32-byte key")
    return decode_data_key(raw, f"file {Path(path)}")


def _expected(context: Mapping[str, str] | None, any_context: bool) -> Context | None:
    if any_context:
        if context is not None:
            raise ValueError("pass either context= or any_context=True, not both")
        return None
    return () if context is None else canonical_context(context)


class RecoveredKey:
    """Decrypts messages with a recovered data key, or k of its shares.

    Args:
        data_key: the whole data key, for a message whose slots each wrap it (copied).
        shares: for a k-of-n message, ``{slot number (1-based): share}`` (copied).
        cluster_secret: the cluster secret whose part the message's split names.
        accept_unsplit: with ``cluster_secret``, also accept a message that records
            no split (as ``Envelope(accept_unsplit=True)``).
        threads: worker threads for large messages; 0 means one per core.

    Raises:
        ValueError: neither or both of ``data_key`` and ``shares``, or a key or share
            that is not 32 bytes.
    """

    __slots__ = ("_cluster", "_key", "_policy", "_shares", "_threads")

    def __init__(
        self,
        data_key: bytes | bytearray | None = None,
        *,
        shares: Mapping[int, bytes | bytearray] | None = None,
        cluster_secret: ClusterSecret | None = None,
        accept_unsplit: bool = False,
        threads: int = 0,
    ) -> None:
        if (data_key is None) == (not shares):
            raise ValueError("give either a data key or the shares of one")
        keys = [data_key] if data_key is not None else list((shares or {}).values())
        if any(len(k) != DATA_KEY_BYTES for k in keys if k is not None):
            raise ValueError("a data key (and each share) is 32 bytes")
        self._key = bytearray(data_key) if data_key is not None else None
        self._shares = {int(i): bytearray(s) for i, s in (shares or {}).items()}
        self._cluster = cluster_secret
        self._policy = AcceptancePolicy(cluster_secret is not None, None, accept_unsplit)
        self._threads = threads

    def __repr__(self) -> str:
        held = "a data key" if self._key is not None else f"shares {sorted(self._shares)}"
        return f"RecoveredKey({held}, cluster_secret={self._cluster!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        """Refuses: a recovered data key is key material, never pickled.

        Raises:
            pickle.PicklingError: always.
        """
        raise pickle.PicklingError("a RecoveredKey holds a data key and is never pickled")

    def wipe(self) -> None:
        """Overwrites the key (or shares) with zeros."""
        for key in [self._key, *self._shares.values()]:
            if key is not None:
                wipe(key)

    # -- the input key ----------------------------------------------------------------

    def _material(self, header: Header) -> bytearray | None:
        self._policy.check_message(header.split, header.slots, ())
        sid = header.split.cluster_secret_id
        if sid is None:
            return None
        if self._cluster is None:
            raise KeyUnavailableError(
                f"this message needs cluster-secret part {sid} as well as its data key; "
                "pass cluster_secret=",
                cli=f"this message needs cluster-secret part {sid} as well as its data key; "
                "pass --cluster-secret FILE",
            )
        return self._cluster.part(sid).material

    def _candidates(self, header: Header) -> list[tuple[tuple[int, bytearray], ...]]:
        """The k-subsets of the shares to combine (one ``()`` for a whole key).

        Raises:
            KeyUnavailableError: the key's form does not fit the message's split.
        """
        threshold = header.split.threshold
        if threshold is None:
            if self._key is None:
                raise KeyUnavailableError(
                    "this message's key slots each wrap the whole data key: give that one "
                    "key (CLI: --data-key FILE), not shares"
                )
            return [()]
        k, n = threshold
        if self._key is not None:
            raise KeyUnavailableError(
                f"this message's data key is split {k}-of-{n} across its key slots: recover "
                f"{k} shares and give each with its slot number (CLI: --data-key SLOT=FILE)"
            )
        outside = sorted(i for i in self._shares if not 1 <= i <= n)
        if outside:
            raise KeyUnavailableError(
                f"this message has key slots 1 to {n}; no slot {outside[0]} holds a share"
            )
        if len(self._shares) < k:
            raise KeyUnavailableError(
                f"this message needs {k} of its {n} shares; {len(self._shares)} given: "
                "recover more with the commands `envelope inspect` shows"
            )
        subsets = itertools.combinations(sorted(self._shares.items()), k)
        return list(itertools.islice(subsets, MAX_SUBSETS))

    def open_header(self, header: Header, expected: Context | None, prefix: bytes) -> bytearray:
        """The input key of a message with ``header`` whose body starts with ``prefix``.

        Raises:
            DecryptionError: ``expected`` differs from the message's context, the key
                (shares, cluster part) does not open it, or the policy refuses its split.
            KeyUnavailableError: the message needs a cluster part not given, or another
                form of key (a whole key, or more shares).
            ConfigError: the cluster secret was wiped.
        """
        if expected is not None and expected != header.context:
            raise DecryptionError()
        material = self._material(header)
        check = commitment_check(body_context(header), prefix)
        for subset in self._candidates(header):
            if subset:
                data_key = combine_key(len(subset), subset)
                try:
                    input_key = derive_input_key(data_key, material)
                finally:
                    wipe(data_key)
            else:
                assert self._key is not None  # _candidates gives () for a whole key only
                input_key = derive_input_key(self._key, material)
            if check(input_key):
                return input_key
            wipe(input_key)
        raise DecryptionError()

    # -- messages ---------------------------------------------------------------------

    def decrypt(
        self, blob: Buffer, context: Mapping[str, str] | None = None, *, any_context: bool = False
    ) -> bytes:
        """Decrypts a whole message (``context``, ``any_context``: as
        :meth:`envelope.Envelope.decrypt`).

        Raises:
            DecryptionError, KeyUnavailableError, ConfigError: as :meth:`open_header`;
                FormatError: not a message.
            ValueError: both ``context`` and ``any_context``.
        """
        expected = _expected(context, any_context)
        view = memoryview(blob).cast("B")
        header, offset = parse_header(view)
        prefix = bytes(view[offset : offset + streams.PREFIX])
        input_key = self.open_header(header, expected, prefix)
        digest = body_context(header)
        try:
            return chunked.decrypt(input_key, view[offset:], digest, threads=self._threads)
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
        """Decrypts ``src`` to ``dst`` in constant memory, as
        :meth:`envelope.Envelope.decrypt_stream` (only authenticated chunks are written).

        Returns:
            The number of plaintext bytes written.

        Raises:
            As :meth:`decrypt`; OSError from the streams.
        """
        expected = _expected(context, any_context)
        header = read_header(src)
        prefix = read_exactly(src, streams.PREFIX)
        input_key = self.open_header(header, expected, prefix)
        try:
            source = cast(BinaryIO, streams.Prepended(prefix, src))
            return streams.open_stream(
                input_key,
                body_context(header),
                source,
                dst,
                threads=self._threads,
                progress=progress,
            )
        finally:
            wipe(input_key)

    def decrypt_file(
        self,
        src: str | os.PathLike[str],
        dst: str | os.PathLike[str],
        context: Mapping[str, str] | None = None,
        *,
        mode: int = 0o600,
        progress: Progress | None = None,
        any_context: bool = False,
    ) -> int:
        """Decrypts file ``src`` into ``dst`` all or nothing, with ``mode``.

        Raises:
            As :meth:`decrypt_stream`; ConfigError if a file cannot be read or written.
        """
        with open_input(src) as f_in, output(dst, mode) as f_out:
            return self.decrypt_stream(
                f_in, f_out, context, progress=progress, any_context=any_context
            )
