"""Arrow tables and Parquet files with encrypted columns (needs ``envelope-kms[arrow]``).

Two ways to protect columns, which combine:

- **envelope columns** (:func:`encrypt_table` / :func:`decrypt_table`, and
  :func:`write_table` / :func:`read_table` for Parquet): each value is sealed by envelope's
  record-batch cipher, the headers live in the schema's field metadata, so the file is
  plain Parquet any reader opens (the values are ciphertext) and each row group decrypts
  alone;
- **Parquet Modular Encryption** (:class:`KmsClient`, :func:`crypto_factory`): Parquet
  encrypts whole column chunks itself and envelope's KMS backends (with the cluster-secret
  split) wrap its keys; readers need ``decryption_properties``.

>>> import pyarrow as pa
>>> from envelope import Envelope, LocalKms
>>> from envelope.arrow import decrypt_table, encrypt_table
>>> env = Envelope(LocalKms.ephemeral())
>>> t = pa.table({"id": [1, 2], "email": ["a@example.com", None]})
>>> sealed = encrypt_table(env, t, ["email"], aad_column="id")
>>> decrypt_table(env, sealed).equals(t)
True
"""

from __future__ import annotations

try:
    import pyarrow  # noqa: F401
except ImportError:  # pragma: no cover - the arrow extra is missing
    raise ImportError("envelope.arrow needs pyarrow: pip install 'envelope-kms[arrow]'") from None

from envelope.arrow._parquet import read_row_group, read_table, write_table
from envelope.arrow._pme import (
    CONTEXT_KEY,
    KmsClient,
    crypto_factory,
    decryption_properties,
    encryption_properties,
)
from envelope.arrow._table import (
    FORMAT,
    METADATA_KEY,
    TableResult,
    decrypt_table,
    encrypt_table,
    encrypted_columns,
)

__all__ = [
    "CONTEXT_KEY",
    "FORMAT",
    "METADATA_KEY",
    "KmsClient",
    "TableResult",
    "crypto_factory",
    "decrypt_table",
    "decryption_properties",
    "encrypt_table",
    "encrypted_columns",
    "encryption_properties",
    "read_row_group",
    "read_table",
    "write_table",
]
