"""Regenerates documents-v1.json: encrypted documents made with fixed randomness.

Run once, from the repository root: ``python tests/vectors/documents/generate.py``.
The output is committed; every later version of envelope must keep decrypting it.
Fixed "random" values (data keys, wrap nonces, value salts) come from SHA-256 of a label
and ``lastmodified`` is fixed, so the file is reproducible byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from pathlib import Path
from unittest import mock

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from envelope._format.context import canonical_context, encode_context
from envelope._format.message import SUITE_COBBLESTONE_256, Header, KeySlot, SplitDescriptor
from envelope._keys.cluster import ClusterSecretPart
from envelope._keys.derive import derive_input_key
from envelope.documents import _core, _format
from envelope.documents._rules import ClearRules

HERE = Path(__file__).parent
KEYRING_ID = "kr-00000000000000d1"
LASTMODIFIED = "2026-12-01T00:00:00Z"


def fixed(label: str, n: int) -> bytes:
    out = b""
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"documents-v1 vectors/{label}/{counter}".encode()).digest()
        counter += 1
    return out[:n]


KEK = fixed("kek-1", 32)
PART = fixed("cluster-part", 32)


def local_wrap(data_key: bytes, context: tuple[tuple[str, str], ...], label: str) -> bytes:
    nonce = fixed(f"wrap-nonce/{label}", 12)
    aad = (
        b"envelope.dev/v1 local-kms wrap\x00"
        + KEYRING_ID.encode()
        + b"\x00"
        + struct.pack(">I", 1)
        + encode_context(context)
    )
    return struct.pack(">BI", 1, 1) + nonce + AESGCM(KEK).encrypt(nonce, data_key, aad)


def case(
    name: str, fmt: str, text: str, context: dict[str, str], split: bool, clear: ClearRules
) -> dict[str, object]:
    ctx = canonical_context(context)
    data_key = fixed(f"data-key/{name}", 32)
    slot = KeySlot("local", KEYRING_ID, local_wrap(data_key, ctx, name))
    part = PART if split else None
    header = Header(
        SUITE_COBBLESTONE_256,
        ctx,
        SplitDescriptor(ClusterSecretPart(PART).id if split else None),
        (slot,),
    )
    input_key = derive_input_key(data_key, part)
    counter = iter(range(1_000_000))

    def salts(n: int) -> bytes:
        return fixed(f"salt/{name}/{next(counter)}", n)

    parsed = _core.parse(text, fmt, name)
    rules = _core.rules_for(parsed, fmt, clear)
    with (
        mock.patch.object(_format.os, "urandom", salts),
        mock.patch.object(_core, "_now", lambda: LASTMODIFIED),
    ):
        _core.seal(parsed, name, input_key, header, rules)
    return {
        "name": name,
        "format": fmt,
        "context": context,
        "cluster_part": split,
        "plaintext": text,
        "data_key_hex": data_key.hex(),
        "file_key_hex": bytes(input_key).hex(),
        "mac_key_hex": _format.derive_mac_key(input_key).hex(),
        "encrypted": parsed.handler.dump(parsed),
    }


YAML = """\
# billing service
db:
  password: hunter2  # yearly
  port: 5432
  ratio: 0.25
  tls: true
  replica: null
  quoted: "007"
hosts:
  - a.internal
  - b.internal
anchor: &pw shared
alias: *pw
cert: |
  line one
  line two
région: café
"""

SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: db
type: Opaque
data:
  password: aHVudGVyMg==
stringData:
  user: admin
"""


def main() -> None:
    cases = [
        case("yaml-split-context", "yaml", YAML, {"service": "billing"}, True, ClearRules()),
        case(
            "yaml-clear-suffix",
            "yaml",
            "db:\n  password: pw\n  host_unencrypted: db.local\n",
            {},
            False,
            ClearRules(unencrypted_suffix="_unencrypted"),
        ),
        case(
            "json",
            "json",
            json.dumps({"a": {"b": [1, 2.5, False, None, "x"]}, "k": "v"}, indent=2) + "\n",
            {"env": "prod"},
            True,
            ClearRules(),
        ),
        case(
            "dotenv", "dotenv", '# app\nTOKEN=abc\nexport QUOTED="a b"\n', {}, False, ClearRules()
        ),
        case("kubernetes-secret", "yaml", SECRET, {"service": "billing"}, True, ClearRules()),
        case("multi-document", "yaml", "a: 1\n---\nb: [x, y]\n", {}, False, ClearRules()),
    ]
    doc = {
        "description": "envelope structured documents v1 known-answer vectors (docs/format.md)",
        "keyring": {
            "format": "envelope-keyring/v1",
            "id": KEYRING_ID,
            "protection": None,
            "keys": [
                {
                    "version": 1,
                    "created": "2026-12-01T00:00:00+00:00",
                    "material": base64.b64encode(KEK).decode(),
                }
            ],
        },
        "cluster_part_hex": PART.hex(),
        "cases": cases,
    }
    (HERE / "documents-v1.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
