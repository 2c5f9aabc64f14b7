"""Dask DataFrames with encrypted columns (needs ``envelope-kms[dask]``).

``env`` is an :class:`~envelope.Envelope` (it pickles as references to its configuration,
never key bytes) or the settings model (:class:`~envelope.settings.Settings`); each worker
process builds its own Envelope from it once, with its own KMS client and credentials.

Two strategies, for where KMS calls happen:

- ``"partition"`` (default): every partition draws its own data key (one KMS call per
  encrypted column per partition) and every partition decrypts with its own unwrap.
  KMS calls grow with the partition count; a leaked data key exposes one partition.
- ``"job"``: the client draws one data key per encrypted column for the whole job and
  broadcasts the (public) batch header; each worker process unwraps it once and keeps
  the key in memory while it seals its partitions, each still a batch of its own with
  its own salt and batch key. KMS calls: one per column plus one per worker process,
  whatever the partition count (decryption likewise: one unwrap per worker process);
  a leaked data key exposes the whole job's column. Workers drop a job's keys when
  :func:`to_parquet` returns; for lazy frames when 16 newer job keys replace them or
  the worker process exits.

Frames in memory: :func:`encrypt_columns` replaces each column by its ciphertext
(``binary``) and adds ``<column>.envelope`` holding each row's batch header (the same
value for a whole partition; dictionary-encoded in Parquet, so it costs next to nothing).
:func:`decrypt_columns` reverses it, provided each partition still holds whole batches
(decrypt before filtering or repartitioning). Parquet on disk: :func:`to_parquet` writes
one file per partition atomically (headers in the Arrow field metadata, see
:mod:`envelope.arrow`) and :func:`read_parquet` reads such a directory back, decrypting.
"""

from __future__ import annotations

from envelope.dask._frames import HEADER_SUFFIX, decrypt_columns, encrypt_columns
from envelope.dask._parquet import read_parquet, to_parquet
from envelope.dask._workers import Strategy

__all__ = [
    "HEADER_SUFFIX",
    "Strategy",
    "decrypt_columns",
    "encrypt_columns",
    "read_parquet",
    "to_parquet",
]
