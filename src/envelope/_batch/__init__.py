"""Record batches: many small values, each stored and decrypted on its own.

One data key (one KMS call) per batch; record ``i`` is sealed with AES-256-GCM under a
batch key and nonce derived as in Cobblestone (own label) and carries its index, so a
database can store the :class:`BatchHeader` once and each record in its own row.
The whole batch goes through the Rust kernel in one call, across all cores.

Accepted shapes, for records and for the optional per-record AAD; outputs keep the
input's shape:

- a ``list`` of bytes-like objects -> ``list[bytes]``;
- ``(data, offsets)``: one buffer and ``n + 1`` offsets (int64, or int32, or a list of
  ints; the Arrow binary layout) -> ``(bytes, memoryview of int64 offsets from 0)``;
- a pyarrow ``string``, ``large_string``, ``binary``, ``large_binary``, ``string_view`` or
  ``binary_view`` array, or a ``ChunkedArray`` of one -> sealed as ``binary`` (or
  ``large_binary``; a chunked array stays chunked), nulls kept; decryption restores the
  input's type (``EncryptedBatch.plain_type``);
- a 2-D C-contiguous numpy ``uint8`` array of fixed-width rows -> 2-D ``uint8`` array.
"""

from envelope._batch.cipher import MAX_RECORDS_PER_BATCH, decrypt, encrypt, open_header
from envelope._batch.records import RECORD_OVERHEAD, BatchHeader, BatchResult, EncryptedBatch

__all__ = [
    "MAX_RECORDS_PER_BATCH",
    "RECORD_OVERHEAD",
    "BatchHeader",
    "BatchResult",
    "EncryptedBatch",
    "decrypt",
    "encrypt",
    "open_header",
]
