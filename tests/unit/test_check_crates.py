"""scripts/check_crates.py, CI's Rust supply-chain gate, on made-up graphs (CI runs it
on the real one: `.ci/run`, "supply chain")."""

from __future__ import annotations

import importlib.util
import json
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "check_crates", ROOT / "scripts" / "check_crates.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_crates"] = module  # dataclasses look the module up
    spec.loader.exec_module(module)
    return module


cc = _script()
POLICY = tomllib.loads((ROOT / "rust" / "deny.toml").read_text())
ALLOWED = set(POLICY["licenses"]["allow"])


@pytest.mark.parametrize(
    ("expression", "ok"),
    [
        ("MIT OR Apache-2.0", True),
        ("MIT/Apache-2.0", True),
        ("Unlicense OR MIT", True),
        ("ISC AND (Apache-2.0 OR ISC)", True),
        ("Apache-2.0 WITH LLVM-exception", True),
        ("GPL-3.0-only", False),
        ("MIT AND GPL-3.0-only", False),
        ("Zlib", False),
        ("GPL-2.0-only WITH LLVM-exception", False),
    ],
)
def test_licence_expressions(expression: str, ok: bool) -> None:
    assert cc.licence_allowed(expression, ALLOWED) is ok


def _crate(name: str, version: str = "1.0.0", **kw: object) -> object:
    fields = {"license": "MIT", "source": cc.CRATES_IO, "checksum": "00" * 32} | kw
    return cc.Crate(name, version, **fields)


def test_each_rule_reports_its_breach() -> None:
    crates = [
        _crate("fine"),
        _crate("copyleft", license="GPL-3.0-only"),
        _crate("unlicensed", license=None),
        _crate("twice", "1.0.0"),
        _crate("twice", "2.0.0"),
        _crate("from-git", source="git+https://example.com/x#abc"),
        _crate("ours", license=None, source=None),  # a workspace crate: exempt
    ]
    found = cc.problems(crates, ["fine -> anything = '*'"], POLICY)
    assert len(found) == 5, found
    for word in ("copyleft", "unlicensed", "twice in 2 versions", "from-git", "wildcard"):
        assert any(word in line for line in found), (word, found)
    assert cc.problems([_crate("fine")], [], POLICY) == []


def test_the_sbom_lists_each_registry_crate_with_purl_licence_and_checksum() -> None:
    crates = [
        _crate("aws-lc-rs", "1.19.0", license="ISC AND Apache-2.0"),
        _crate("ours", source=None),
    ]
    bom = json.loads(cc.sbom(crates))
    assert bom["specVersion"] == "1.5"
    (component,) = bom["components"]  # the workspace's own crate is not a dependency
    assert component["purl"] == "pkg:cargo/aws-lc-rs@1.19.0"
    assert component["licenses"] == [{"expression": "ISC AND Apache-2.0"}]
    assert component["hashes"] == [{"alg": "SHA-256", "content": "00" * 32}]
