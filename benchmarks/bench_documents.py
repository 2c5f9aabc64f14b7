"""Value-level encryption of a large document (envelope.documents), YAML, JSON and dotenv.

    python -m benchmarks run documents [--quick]

Builds each document with the same number of leaves (YAML: 100 services x N/100
settings, with comments; JSON nested the same way; dotenv flat), then times, best of
the repetitions and all in one run: encrypt (parse, seal every value, MAC, dump),
decrypt (parse, MAC check, open every value, dump), and a one-value re-seal under the
same data key (what ``envelope edit`` does after the editor exits). The KMS is a local
keyring (one wrap per file), so the figures are the document code's own cost; the
floors are the same parse and dump without any cryptography, and ruamel.yaml's own
round trip. ``sops`` is not run: it is not installable here (no binary on PATH; not on
PyPI, crates.io or Debian), and the suite says so when it is absent.
"""

from __future__ import annotations

import io
import json
import shutil

from ruamel.yaml import YAML

from benchmarks.machine import versions
from benchmarks.report import Suite, Table, best
from envelope import Envelope, LocalKms, documents
from envelope.documents._core import parse


def build_yaml(leaves: int) -> str:
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


def parse_and_dump(text: str, fmt: str, name: str) -> None:
    """The document code's parse and dump of the clear text, no cryptography."""
    parsed = parse(text, fmt, name)
    parsed.handler.dump(parsed)


def reseal(encrypted: str, env: Envelope, name: str) -> None:
    """Opens, changes one value, re-seals under the same data key and dumps."""
    with documents.open_document(encrypted, env, name=name) as doc:
        edited = doc.text().replace("secret-0-0", "changed-0-0", 1)
        parsed = doc.parsed.handler.parse(edited, name)
        doc.reseal(parsed)
        doc.parsed.handler.dump(parsed)


def run(quick: bool) -> Suite:
    leaves, repeat = (300, 1) if quick else (10_000, 3)
    suite = Suite(
        "documents",
        f"Encrypted documents: a {leaves:,}-leaf file",
        packages=versions("envelope-kms", "cryptography", "ruamel.yaml"),
    )
    table = Table(
        f"{leaves:,} leaves, local keyring, best of {repeat}",
        [
            "document",
            "MB clear",
            "MB encrypted",
            "encrypt ms",
            "decrypt ms",
            "edit one value ms",
            "encrypt x floor",
            "decrypt x floor",
        ],
    )
    floors = Table(
        "Floors: the same text without cryptography",
        ["document", "operation", "ms"],
    )
    env = Envelope(LocalKms.ephemeral())
    yaml_text = build_yaml(leaves)
    json_text, dotenv_text = build_flat(leaves)
    for label, fmt, name, text in (
        ("YAML", "yaml", "bench.yaml", yaml_text),
        ("JSON", "json", "bench.json", json_text),
        ("dotenv", "dotenv", "bench.env", dotenv_text),
    ):
        encrypted = documents.encrypt(text, env, name=name)
        if documents.decrypt(encrypted, env, name=name) != text:
            raise RuntimeError(f"{name} did not round-trip")
        floor, _ = best(lambda t=text, f=fmt, n=name: parse_and_dump(t, f, n), repeat)
        enc, _ = best(lambda t=text, n=name: documents.encrypt(t, env, name=n), repeat)
        dec, _ = best(lambda e=encrypted, n=name: documents.decrypt(e, env, name=n), repeat)
        edit, _ = best(lambda e=encrypted, n=name: reseal(e, env, n), repeat)
        table.rows.append(
            [
                label,
                len(text) / 1e6,
                len(encrypted) / 1e6,
                enc * 1e3,
                dec * 1e3,
                edit * 1e3,
                enc / floor,
                dec / floor,
            ]
        )
        floors.rows.append([label, "envelope's parse + dump, no crypto", floor * 1e3])
    ruamel, _ = best(lambda: ruamel_round_trip(yaml_text), repeat)
    floors.rows.append(["YAML", "ruamel.yaml load + dump alone", ruamel * 1e3])
    suite.tables += [table, floors]
    suite.notes.append(
        "x floor = time relative to the same document's parse + dump without cryptography "
        "in this run (the second table)."
    )
    if shutil.which("sops") is None:
        suite.notes.append(
            "sops: not installed here (no binary on PATH; not on PyPI/crates.io/Debian), "
            "so it was not measured."
        )
    else:
        suite.notes.append("sops is on PATH but this suite does not run it yet.")
    return suite
