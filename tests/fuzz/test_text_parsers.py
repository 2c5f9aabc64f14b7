"""Property fuzzing of the text parsers (keyring file, init config, dotenv/json forms):
arbitrary or mutated input raises only ConfigError, never anything else."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from envelope import LocalKms
from envelope.errors import ConfigError
from envelope.k8s._config import parse_config
from envelope.k8s._forms import entries, render
from tests.fuzz.budget import FUZZ
from tests.fuzz.test_binary_parsers import mutated

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _keyring_seed(tmp: Path, passphrase: str | None) -> bytes:
    path = tmp / f"seed-{passphrase is not None}.json"
    if not path.exists():
        LocalKms.create(path, passphrase=passphrase)
    return path.read_bytes()


@st.composite
def json_mutated(draw: st.DrawFn, seed: dict[str, Any]) -> dict[str, Any]:
    """``seed`` with one (possibly nested) value replaced, dropped or added."""
    doc = json.loads(json.dumps(seed))
    target = doc
    path = draw(
        st.lists(st.sampled_from(["protection", "keys", 0, "n", "material", "x"]), max_size=3)
    )
    for step in path:
        nxt = target.get(step) if isinstance(target, dict) else None
        if isinstance(step, int) and isinstance(target, list) and target:
            nxt = target[0]
        if not isinstance(nxt, (dict, list)):
            break
        target = nxt
    if isinstance(target, dict):
        keys = [*sorted(target), "extra"]
        key = draw(st.sampled_from(keys))
        if draw(st.booleans()):
            target[key] = draw(JSON)
        else:
            target.pop(key, None)
    elif isinstance(target, list):
        target.append(draw(JSON))
    return doc


def _open(tmp: Path, blob: bytes, passphrase: str | None) -> None:
    path = tmp / "keyring.json"
    path.write_bytes(blob)
    os.chmod(path, 0o600)
    with contextlib.suppress(ConfigError):
        LocalKms.open(path, passphrase=passphrase)


@FUZZ
@given(data=st.data(), passphrase=st.sampled_from([None, "pw"]))
def test_keyring_file(tmp_path: Path, data: st.DataObject, passphrase: str | None) -> None:
    seed = _keyring_seed(tmp_path, passphrase)
    blob = data.draw(
        st.one_of(
            st.binary(max_size=300),
            mutated(seed),
            json_mutated(json.loads(seed)).map(lambda d: json.dumps(d).encode()),
        )
    )
    _open(tmp_path, blob, passphrase)


@FUZZ
@given(depth=st.integers(500, 5000), opener=st.sampled_from(["[", '{"a":']))
def test_keyring_file_deeply_nested(tmp_path: Path, depth: int, opener: str) -> None:
    _open(tmp_path, ('{"keys":' + opener * depth).encode(), None)


VALID_CONFIG: dict[str, Any] = {
    "version": 1,
    "kms": {"kind": "local", "keyring": "/k/keyring.json"},
    "cluster_secret": {"file": "/k/part"},
    "output": {"directory": "/out", "mode": "0400"},
    "secrets": [
        {
            "name": "db",
            "source": {"file": "/s/db.enc"},
            "target": "db.env",
            "form": "dotenv",
            "context": {"service": "billing"},
        }
    ],
    "timeout": 5,
}


@FUZZ
@given(
    st.one_of(
        st.text(max_size=300),
        mutated(yaml.safe_dump(VALID_CONFIG).encode()).map(lambda b: b.decode("utf-8", "replace")),
        json_mutated(VALID_CONFIG).map(yaml.safe_dump),
    ),
    st.sampled_from(["init.yaml", "init.json"]),
)
def test_init_config(text: str, source: str) -> None:
    with contextlib.suppress(ConfigError):
        parse_config(text, source)


@settings(FUZZ, max_examples=min(FUZZ.max_examples, 10))  # a deep YAML takes ~1 s to parse
@given(depth=st.integers(500, 3000), source=st.sampled_from(["init.yaml", "init.json"]))
def test_init_config_deeply_nested(depth: int, source: str) -> None:
    with contextlib.suppress(ConfigError):
        parse_config("[" * depth, source)


FORMS = st.sampled_from(["raw", "dotenv", "json"])
KEYS = st.one_of(st.none(), st.lists(st.text(max_size=6), max_size=3))


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=300),
        mutated(b'A=1\nexport B="x\\"y" # c\nC=\'z\'\n'),
        mutated(b'{"a": "b", "n": 3, "d": {"x": [1, 2]}}'),
        JSON.map(lambda d: json.dumps(d).encode()),
    ),
    FORMS,
    KEYS,
)
def test_dotenv_and_json_forms(plaintext: bytes, form: str, keys: list[str] | None) -> None:
    with contextlib.suppress(ConfigError):
        entries(plaintext, "s", form, keys)
    with contextlib.suppress(ConfigError):
        render(plaintext, "s", form, keys)


@FUZZ
@given(depth=st.integers(500, 5000), form=FORMS)
def test_json_form_deeply_nested(depth: int, form: str) -> None:
    with contextlib.suppress(ConfigError):
        render(('{"a":' + "[" * depth).encode(), "s", form, None)


@FUZZ
@given(
    n=st.sampled_from([2**20, 2**21, 2**40, 0, 3]),
    r=st.sampled_from([8, 33, 2**20]),
    p=st.sampled_from([1, 17, 2**20]),
)
def test_keyring_scrypt_parameters_are_bounded(tmp_path: Path, n: int, r: int, p: int) -> None:
    """A hostile keyring cannot make scrypt hang or exhaust memory (only ConfigError)."""
    doc = json.loads(_keyring_seed(tmp_path, "pw"))
    doc["protection"].update(n=n, r=r, p=p)
    if (n, r, p) == (2**20, 8, 1):
        doc["protection"]["n"] = 2**21  # in bounds would be a legitimate (slow) keyring
    _open(tmp_path, json.dumps(doc).encode(), "pw")
