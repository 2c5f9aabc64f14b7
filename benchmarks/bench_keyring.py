"""What a passphrase-protected keyring costs to open: ``LocalKms.open`` at scrypt
N = 2^15 (files written before issue 18) and N = 2^17 (r = 8, p = 1; what new files use).

    python benchmarks/bench_keyring.py [--repeat 5]

Each open derives the file key once with scrypt (128 MiB of memory at N = 2^17, 32 MiB
at 2^15); the rest of the open is JSON parsing and one AES-GCM decryption. Reports the
best and median of ``--repeat`` opens, in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import describe
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="opens per cost (best is kept)")
    args = parser.parse_args()
    print(f"machine: {describe('envelope-kms', 'cryptography')}")
    print(f"{'scrypt N':10s} {'best ms':>9s} {'median ms':>10s}")
    with tempfile.TemporaryDirectory() as tmp:
        for log_n in (15, 17):
            _local._SCRYPT_N = _keyring_doc._SCRYPT_N = 2**log_n  # type: ignore[misc]
            path = Path(tmp) / f"k{log_n}.json"
            LocalKms.create(path, passphrase=PASSPHRASE)
            times = opens(path, args.repeat)
            print(f"2^{log_n:<8d} {min(times):9.1f} {statistics.median(times):10.1f}")
    print(f"command: python benchmarks/bench_keyring.py --repeat {args.repeat}")


if __name__ == "__main__":
    main()
