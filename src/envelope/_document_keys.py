"""The data-key hooks of :class:`~envelope.Envelope` used by :mod:`envelope.documents`.

A structured document keeps one data key for its life (edits re-seal only the changed
values), so it needs the key header and input key themselves rather than a message:
these three methods give them, through the Envelope's one ``KeySource`` (its backends,
threshold and cluster secret), without serializing a v1 message.
"""

from __future__ import annotations

from collections.abc import Mapping

from envelope._format.context import canonical_context
from envelope._format.message import SUITE_COBBLESTONE_256, Header
from envelope._keys.source import KeySource, wipe
from envelope.errors import ConfigError

__all__ = ["DocumentKeys"]


class DocumentKeys:
    """Mixed into Envelope (which sets ``_keys``)."""

    __slots__ = ()
    _keys: KeySource

    def new_document_key(
        self, context: Mapping[str, str] | None = None
    ) -> tuple[Header, bytearray]:
        """A fresh data key for an :mod:`envelope.documents` file: the key header that
        records it (context, split, key slots; never serialized as a v1 message here) and
        the input key derived from it. The caller wipes the key.

        Raises:
            KmsError, ValueError: as :meth:`Envelope.encrypt`.
        """
        ctx = canonical_context(context)
        slots, split, input_key = self._keys.fresh(ctx)
        return Header(SUITE_COBBLESTONE_256, ctx, split, slots), input_key

    def open_document_key(
        self, header: Header, context: Mapping[str, str] | None = None
    ) -> bytearray:
        """The input key recorded in a document's key header (as :meth:`Envelope.decrypt`).

        Raises:
            DecryptionError, KeyUnavailableError, KmsError: as :meth:`Envelope.decrypt`.
        """
        expected = None if context is None else canonical_context(context)
        return self._keys.input_key(header.slots, header.split, header.context, expected)

    def rekey_document_key(self, header: Header) -> Header:
        """The same data key, wrapped for this Envelope's backends and threshold (the
        ``updatekeys`` command): custodians added or removed, input key unchanged.

        Raises:
            ConfigError: this Envelope's cluster-secret part differs from the header's
                (that changes the input key: re-encrypt instead).
            DecryptionError, KeyUnavailableError, KmsError: as :meth:`Envelope.decrypt`.
        """
        split = self._keys.split()
        if split.cluster_secret_id != header.split.cluster_secret_id:
            raise ConfigError(
                "the cluster-secret part changed: updatekeys only rewraps the data key; "
                "re-encrypt the file (decrypt, then encrypt) to change the split"
            )
        secret = self._keys.data_key(
            header.slots, header.context, use_cache=False, threshold=header.split.threshold
        )
        try:
            slots = self._keys.wrap_slots(secret, header.context)
        finally:
            wipe(secret)
        return Header(header.suite, header.context, split, slots)
