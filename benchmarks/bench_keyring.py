"""What a passphrase-protected keyring costs to open: ``LocalKms.open`` at scrypt
N = 2^15 (files written before issue 18) and N = 2^17 (r = 8, p = 1; what new files use).

    python -m benchmarks run keyring [--quick]

Each open derives the file key once with scrypt (128 MiB of memory at N = 2^17, 32 MiB
at 2^15); the rest of the open is JSON parsing and one AES-GCM decryption. Both costs
run in the same run; reported are the best and median of the opens, in milliseconds,
and each cost against 2^15.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.machine import versions
from benchmarks.report import Suite, Table
from envelope.kms import _keyring_doc, _local
from envelope.kms._local import LocalKms

PASSPHRASE = "correct horse battery staple"


def opens(path: Path, repeat: int) -> list[float]:
    """Milliseconds per ``LocalKms.open`` of ``path``."""
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        LocalKms.open(path, passphrase=PASSPHRASE)
        out.append((time.perf_counter() - start) * 1e3)
    return out


def run(quick: bool) -> Suite:
    repeat = 1 if quick else 5
    suite = Suite(
        "keyring",
        "Opening a passphrase-protected keyring: scrypt N = 2^15 and 2^17",
        packages=versions("envelope-kms", "cryptography"),
    )
    table = Table(
        f"LocalKms.open, {repeat} open(s) per cost",
        ["scrypt N", "memory MiB", "best ms", "median ms", "best x 2^15"],
    )
    saved = _local._SCRYPT_N, _keyring_doc._SCRYPT_N
    baseline: float | None = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for log_n in (15, 17):
                # The cost new files are written with; files keep theirs (read back on open).
                _local._SCRYPT_N = _keyring_doc._SCRYPT_N = 2**log_n  # type: ignore[misc]
                path = Path(tmp) / f"k{log_n}.json"
                LocalKms.create(path, passphrase=PASSPHRASE)
                times = opens(path, repeat)
                baseline = baseline or min(times)
                table.rows.append(
                    [
                        f"2^{log_n}",
                        128 * 2**log_n * _keyring_doc._SCRYPT_R >> 20,
                        min(times),
                        statistics.median(times),
                        min(times) / baseline,
                    ]
                )
    finally:
        _local._SCRYPT_N, _keyring_doc._SCRYPT_N = saved  # type: ignore[misc]
    suite.tables.append(table)
    suite.notes.append("x 2^15 = time of one open relative to an open at N = 2^15 in this run.")
    return suite
