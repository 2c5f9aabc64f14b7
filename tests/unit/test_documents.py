"""envelope.documents: value-level encryption of YAML, JSON, dotenv and Secret manifests."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from envelope import ClusterSecret, DecryptionError, Envelope, FormatError, LocalKms
from envelope import documents as docs
from envelope.documents import ClearRules, DocumentSyntaxError

YAML = """\
# service secrets
db:
  password: hunter2  # rotate yearly
  port: 5432
  ratio: 1.5
  enabled: true
  nothing: null
  quoted: "123"
  single: 'x y'
anchors:
  a: &shared foo
  b: *shared
base: &base
  x: 1
merged:
  <<: *base
  y: 2
cert: |
  -----BEGIN-----
  abc
  -----END-----
folded: >-
  one two
hosts:
  - one.example
  - two.example
unicode_ключ: значение ✓
# trailing comment
"""

JSON = json.dumps(
    {"db": {"password": "hunter2", "port": 5432, "x": [1, 2.5, True, None]}, "ключ": "✓"},
    indent=2,
    ensure_ascii=False,
)

DOTENV = """\
# app
export DB_PASSWORD=hunter2  # inline
API_KEY="a b\\nc"
SINGLE='x#y'

EMPTY=
"""

SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: db
  labels:
    app: billing
type: Opaque
data:
  password: aHVudGVyMg==
stringData:
  user: admin
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  level: debug
"""

TOKEN = re.compile(r"ENV\[v1,[A-Za-z0-9_-]+\]")


@pytest.fixture(scope="module")
def env() -> Envelope:
    return Envelope(LocalKms.ephemeral(), ClusterSecret.generate())


@pytest.mark.parametrize(
    ("text", "name", "secrets"),
    [
        (YAML, "s.yaml", ["hunter2", "5432", "foo", "BEGIN", "значение", "two.example"]),
        (JSON + "\n", "s.json", ["hunter2", "5432", "2.5", "✓"]),
        (DOTENV, ".env", ["hunter2", "a b", "x#y"]),
        (SECRET, "secret.yaml", ["aHVudGVyMg==", "admin"]),
    ],
)
def test_round_trip_is_byte_for_byte(
    env: Envelope, text: str, name: str, secrets: list[str]
) -> None:
    encrypted = docs.encrypt(text, env, name=name, context={"service": "billing"})
    # Outside the ciphertext tokens (whose random base64 may spell a short secret such
    # as "foo" by chance: it did, once in a few hundred runs), no secret is left.
    readable = TOKEN.sub("ENV[…]", encrypted)
    for s in secrets:
        assert s not in readable
    assert docs.decrypt(encrypted, env, name=name) == text
    assert docs.decrypt(encrypted, env, name=name, context={"service": "billing"}) == text
    assert docs.is_encrypted(encrypted, name=name) and not docs.is_encrypted(text, name=name)


def test_yaml_keeps_keys_comments_and_anchors_readable(env: Envelope) -> None:
    encrypted = docs.encrypt(YAML, env, name="s.yaml")
    assert "# rotate yearly" in encrypted and "# trailing comment" in encrypted
    assert "a: &shared ENV[v1," in encrypted and "b: *shared" in encrypted
    assert "<<: *base" in encrypted and "unicode_ключ:" in encrypted
    assert re.search(r"password: ENV\[v1,[^\]]+\]  # rotate yearly", encrypted)


def test_types_are_restored(env: Envelope, tmp_path: Any) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(docs.encrypt(YAML, env, name="s.yaml"))
    data = docs.load(path, env)
    assert data["db"] == {
        "password": "hunter2",
        "port": 5432,
        "ratio": 1.5,
        "enabled": True,
        "nothing": None,
        "quoted": "123",
        "single": "x y",
    }
    assert data["cert"].endswith("-----END-----\n") and data["folded"] == "one two"
    assert data["merged"] == {"x": 1, "y": 2} and data["anchors"]["b"] == "foo"


def test_secret_manifest_encrypts_only_data(env: Envelope) -> None:
    encrypted = docs.encrypt(SECRET, env, name="secret.yaml")
    assert "name: db" in encrypted and "app: billing" in encrypted and "level: debug" in encrypted
    assert len(TOKEN.findall(encrypted)) == 2
    assert "kubernetes_secret: 'true'" in encrypted


def test_clear_rules_leave_values_readable_but_covered(env: Envelope) -> None:
    text = "public_url: https://x\ndb:\n  password: p\n  host_unencrypted: db.local\n"
    encrypted = docs.encrypt(text, env, clear=ClearRules(unencrypted_suffix="_unencrypted"))
    assert "host_unencrypted: db.local" in encrypted and "public_url: ENV" in encrypted
    with pytest.raises(DecryptionError, match="<document>"):
        docs.decrypt(encrypted.replace("db.local", "evil.local"), env)
    only = docs.encrypt(text, env, clear=ClearRules(encrypted_regex="^password$"))
    assert "public_url: https://x" in only and "password: ENV[" in only


def test_multi_document_yaml_and_output_type(env: Envelope) -> None:
    text = "a: 1\n---\n- x\n- y\n---\nc:\n  d: [1, 2]\n"
    encrypted = docs.encrypt(text, env, name="m.yaml")
    assert docs.decrypt(encrypted, env, name="m.yaml") == text
    as_json = docs.decrypt(docs.encrypt("a:\n  b: 1\n", env), env, output_format="json")
    assert json.loads(as_json) == {"a": {"b": 1}}


def test_dump_and_load_python_objects(env: Envelope, tmp_path: Any) -> None:
    for name in ("c.yaml", "c.json"):
        docs.dump({"db": {"password": "p", "n": 3}}, tmp_path / name, env)
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600
        assert docs.load(tmp_path / name, env) == {"db": {"password": "p", "n": 3}}
    docs.dump({"A": "1"}, tmp_path / "x.env", env)
    assert docs.load(tmp_path / "x.env", env) == {"A": "1"}


def _swap_tokens(text: str, i: int, j: int) -> str:
    tokens = TOKEN.findall(text)
    a, b = tokens[i], tokens[j]
    return text.replace(a, "\0").replace(b, a).replace("\0", b)


def _tamper_token(text: str) -> str:
    token = TOKEN.findall(text)[0]
    body = token[7:-1]
    flipped = body[:10] + ("A" if body[10] != "A" else "B") + body[11:]
    return text.replace(token, f"ENV[v1,{flipped}]")


TAMPERS = {
    "flipped ciphertext": _tamper_token,
    "swapped values": lambda t: _swap_tokens(t, 0, 1),
    "value moved to another key": lambda t: t.replace("  port:", "  porte:"),
    "value removed": lambda t: re.sub(r"  ratio: [^\n]+\n", "", t),
    "value added (clear)": lambda t: t.replace("db:\n", "db:\n  extra: 1\n"),
    "value added (copied token)": lambda t: t.replace(
        "db:\n", "db:\n  extra: " + TOKEN.findall(t)[0] + "\n"
    ),
    "keys reordered": lambda t: re.sub(r"(  password: [^\n]+\n)(  port: [^\n]+\n)", r"\2\1", t),
    "encrypted value replaced by clear": lambda t: t.replace(TOKEN.findall(t)[0], "hunter3"),
    "lastmodified edited": lambda t: re.sub(
        r"lastmodified: '[^']+'", "lastmodified: '2000-01-01T00:00:00Z'", t
    ),
    "bad mac": lambda t: re.sub(r"mac: \S+", "mac: " + "A" * 43 + "=", t),
    "rules edited": lambda t: t.replace(
        "  lastmodified", "  rules:\n    unencrypted_regex: x\n  lastmodified"
    ),
    "alias removed": lambda t: t.replace("b: *shared", "b: foo"),
    "merge removed": lambda t: t.replace("  <<: *base\n", ""),
    "document dropped": lambda t: t + "---\nextra: doc\n",
}


@pytest.mark.parametrize("tamper", list(TAMPERS), ids=list(TAMPERS))
def test_mac_catches_each_tamper(env: Envelope, tamper: str) -> None:
    encrypted = docs.encrypt(YAML, env, name="s.yaml", context={"service": "billing"})
    bad = TAMPERS[tamper](encrypted)
    assert bad != encrypted
    with pytest.raises(DecryptionError) as info:
        docs.decrypt(bad, env, name="secrets/s.yaml")
    text = str(info.value)
    assert "secrets/s.yaml" in text and "hunter2" not in text


def test_edited_metadata_and_context(env: Envelope) -> None:
    encrypted = docs.encrypt(YAML, env, name="s.yaml", context={"service": "billing"})
    with pytest.raises(DecryptionError, match=r"s\.yaml"):
        docs.decrypt(encrypted, env, name="s.yaml", context={"service": "other"})
    with pytest.raises(DecryptionError, match=r"s\.yaml"):
        docs.decrypt(encrypted.replace("service: billing", "service: other"), env, name="s.yaml")
    with pytest.raises(DecryptionError, match="metadata"):
        docs.decrypt(encrypted.replace("version: 1", "version: 2"), env, name="s.yaml")
    with pytest.raises(DecryptionError, match="metadata"):
        docs.decrypt(encrypted.replace("  mac:", "  extra: 1\n  mac:"), env, name="s.yaml")


def test_values_cannot_be_swapped_between_files(env: Envelope) -> None:
    one = docs.encrypt("a: x\nb: y\n", env)
    two = docs.encrypt("a: x\nb: y\n", env)
    mixed = one.replace(TOKEN.findall(one)[0], TOKEN.findall(two)[0])
    with pytest.raises(DecryptionError):
        docs.decrypt(mixed, env)


def test_json_and_dotenv_tamper(env: Envelope) -> None:
    j = docs.encrypt(JSON, env, name="a.json")
    with pytest.raises(DecryptionError, match=r"a\.json"):
        docs.decrypt(_swap_tokens(j, 0, 1), env, name="a.json")
    d = docs.encrypt(DOTENV, env, name=".env")
    with pytest.raises(DecryptionError, match=r"\.env"):
        docs.decrypt(d.replace("API_KEY=", "API_KEY2="), env, name=".env")
    with pytest.raises(DecryptionError, match=r"\.env"):
        docs.decrypt(re.sub(r"envelope=(\S{20})", r"envelope=\1x", d), env, name=".env")


def test_reseal_keeps_unchanged_ciphertexts(env: Envelope) -> None:
    encrypted = docs.encrypt(YAML, env, name="s.yaml")
    with docs.open_document(encrypted, env, name="s.yaml") as doc:
        edited = doc.text().replace("port: 5432", "port: 6432")
        parsed = doc.parsed.handler.parse(edited, "s.yaml")
        doc.reseal(parsed)
        again = doc.parsed.handler.dump(parsed)
    before, after = encrypted.splitlines(), again.splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    keys = {a.split(":")[0].strip() for a, _ in changed}
    assert keys - {"lastmodified"} == {"port", "mac"}  # lastmodified: unless the same second
    assert "port: 6432" in docs.decrypt(again, env, name="s.yaml")


@pytest.mark.parametrize(
    ("text", "name", "where"),
    [
        ("a: 1\nb: [1, 2\n", "bad.yaml", "bad.yaml:3:1"),
        ("a: 1\na: 2\n", "dup.yaml", "dup.yaml:2:1"),
        ('{\n  "a": 1,\n  "b": }\n', "bad.json", "bad.json:3:8"),
        ('{"a": 1, "a": 2}', "dup.json", "duplicate"),
        ("A=1\nnot a line\n", ".env", ".env:2:1"),
        ("A=1\nA=2\n", "x.env", "x.env:2:1"),
    ],
)
def test_syntax_errors_name_file_line_and_column(
    env: Envelope, text: str, name: str, where: str
) -> None:
    with pytest.raises(DocumentSyntaxError) as info:
        docs.encrypt(text, env, name=name)
    assert where in str(info.value)


def test_limits_are_checked_before_parsing(env: Envelope) -> None:
    huge = "a: " + "x" * docs.MAX_DOCUMENT_BYTES + "\n"
    with pytest.raises(FormatError, match="limit"):
        docs.encrypt(huge, env, name="big.yaml")
    deep_json = "[" * (docs.MAX_DEPTH + 1) + "]" * (docs.MAX_DEPTH + 1)
    with pytest.raises(FormatError, match="deeper"):
        docs.encrypt(deep_json, env, name="deep.json")
    deep_yaml = "a: " + "[" * (docs.MAX_DEPTH + 1) + "]" * (docs.MAX_DEPTH + 1) + "\n"
    with pytest.raises(FormatError, match="deeper"):
        docs.encrypt(deep_yaml, env, name="deep.yaml")


def test_unsupported_values_and_reserved_key(env: Envelope) -> None:
    with pytest.raises(FormatError, match=r"\.when"):
        docs.encrypt("when: 2024-01-01\n", env, name="d.yaml")
    encrypted = docs.encrypt("a: 1\n", env)
    with pytest.raises(Exception, match="already encrypted"):
        docs.encrypt(encrypted, env)
    with pytest.raises(FormatError, match="not an encrypted document"):
        docs.decrypt("a: 1\n", env)


def test_threshold_document_with_one_custodian_down() -> None:
    from envelope import KmsError
    from envelope.kms._types import WrappedKey

    class Down(LocalKms):
        def unwrap(self, wrapped: WrappedKey, context: Any) -> bytearray:
            raise KmsError(f"{self.key_id} is unreachable")

    kms = [LocalKms.ephemeral() for _ in range(3)]
    encrypted = docs.encrypt(YAML, Envelope(kms, threshold=2), name="t.yaml")
    assert "threshold: 2-of-3" in encrypted
    first = kms[0]
    down = Down(first.key_id, first._keys, first._created, path=None, passphrase=None)
    assert docs.decrypt(encrypted, Envelope([down, kms[1], kms[2]], threshold=2)) == YAML
    third = kms[2]
    also_down = Down(third.key_id, third._keys, third._created, path=None, passphrase=None)
    with pytest.raises(KmsError, match="needs 2 of 3"):
        docs.decrypt(encrypted, Envelope([down, kms[1], also_down], threshold=2))


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("c.yaml", "a: 1\r\nb: two  # c\r\n"),
        (".env", "A=1\r\n# c\r\nB='x'\r\n"),
        ("c.json", '{\r\n  "a": 1\r\n}\r\n'),
    ],
)
def test_crlf_line_ends_are_kept(env: Envelope, name: str, text: str) -> None:
    encrypted = docs.encrypt(text, env, name=name)
    assert "\r\n" in encrypted and "\n" not in encrypted.replace("\r\n", "")
    assert docs.decrypt(encrypted, env, name=name) == text
