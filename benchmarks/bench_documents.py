"""Value-level encryption of a large YAML document (envelope.documents).

    python benchmarks/bench_documents.py [--leaves 10000] [--repeat 5]

Builds a YAML file of ``--leaves`` leaves (100 services x N/100 settings, with comments),
then times, best of ``--repeat``: encrypt (parse, seal every value, MAC, dump), decrypt
(parse, MAC check, open every value, dump), and a one-value re-seal under the same data
key (what ``envelope edit`` does after the editor exits). The KMS is a local keyring
(one wrap per file), so the figures are the document code's own cost. If a ``sops``
binary is on PATH it is timed on the same file with an age key; otherwise that is said.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ruamel.yaml import YAML

from benchmarks.machine import describe
from envelope import Envelope, LocalKms, documents


def build(leaves: int) -> str:
    per = max(1, leaves // 100)
    lines = ["# generated for bench_documents.py"]
    n = 0
    for s in range(100):
        lines.append(f"service_{s}:  # owner team-{s % 7}")
        for k in range(per):
            if n == leaves:
                break
            value = (f"secret-{s}-{k}-xxxxxxxxxxxx", str(k), "true")[k % 3]
            lines.append(f"  key_{k}: {value}")
            n += 1
    return "\n".join(lines) + "\n"


def best(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return min(times)


def build_flat(leaves: int) -> tuple[str, str]:
    """The same number of leaves as JSON (nested 100 x N/100) and as dotenv (flat)."""
    per = max(1, leaves // 100)
    obj = {
        f"service_{s}": {f"key_{k}": f"secret-{s}-{k}-xxxxxxxxxxxx" for k in range(per)}
        for s in range(100)
    }
    dotenv = "".join(
        f"S{s}_KEY_{k}=secret-{s}-{k}-xxxxxxxxxxxx\n" for s in range(100) for k in range(per)
    )
    return json.dumps(obj, indent=2) + "\n", dotenv


def ruamel_round_trip(text: str) -> None:
    """What ruamel.yaml alone costs: round-trip load and dump, no encryption."""
    y = YAML()
    y.dump(y.load(text), io.StringIO())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--leaves", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    env = Envelope(LocalKms.ephemeral())
    print(f"machine: {describe('cryptography', 'ruamel.yaml')}")
    yaml_text = build(args.leaves)
    json_text, dotenv_text = build_flat(args.leaves)
    for name, text in (
        ("bench.yaml", yaml_text),
        ("bench.json", json_text),
        ("bench.env", dotenv_text),
    ):
        encrypted = documents.encrypt(text, env, name=name)
        assert documents.decrypt(encrypted, env, name=name) == text
        enc = best(lambda t=text, n=name: documents.encrypt(t, env, name=n), args.repeat)
        dec = best(lambda e=encrypted, n=name: documents.decrypt(e, env, name=n), args.repeat)

        def reseal(e: str = encrypted, n: str = name) -> None:
            with documents.open_document(e, env, name=n) as doc:
                edited = doc.text().replace("secret-0-0", "changed-0-0", 1)
                parsed = doc.parsed.handler.parse(edited, n)
                doc.reseal(parsed)
                doc.parsed.handler.dump(parsed)

        edit = best(reseal, args.repeat)
        print(
            f"{name}: {args.leaves} leaves, {len(text) / 1e6:.2f} MB clear, "
            f"{len(encrypted) / 1e6:.2f} MB encrypted: encrypt {enc * 1000:.0f} ms, "
            f"decrypt {dec * 1000:.0f} ms, edit one value {edit * 1000:.0f} ms"
        )
    base = best(lambda: ruamel_round_trip(yaml_text), args.repeat)
    print(f"ruamel.yaml round trip alone (load + dump, no crypto): {base * 1000:.0f} ms")
    if shutil.which("sops") is None:
        print(
            "sops: not installed here (no binary on PATH; not on PyPI/crates.io/Debian) - "
            "no comparison run"
        )


if __name__ == "__main__":
    main()
