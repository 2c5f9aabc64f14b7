"""The Rust supply-chain gate of CI, from cargo's own view of the build: every crate's
licence is allowed, no crate comes in two versions, no wildcard requirement, every
source is crates.io; and a CycloneDX SBOM of those crates.

The policy is rust/deny.toml's ([licenses] allow, [bans] multiple-versions/wildcards,
[sources] allow-registry), so the file stays the one place to change it, and
``cargo deny check`` reads the same file where cargo-deny is installed (a release runs
``cargo deny check advisories`` there, with the RustSec database). This script needs
only cargo and the Python dev extra, so CI does not build cargo-deny (11.5 min) and
cargo-cyclonedx (2.3 min) on each fresh machine.

The crates checked are those ``cargo tree`` resolves for the workspace on every target
with normal, build and dev edges (cargo-deny's default graph); sources, versions and
requirements come from ``cargo metadata``, checksums from Cargo.lock.

Run from the repository root::

    python scripts/check_crates.py [--sbom build/sbom/rust.cdx.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import tomllib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import license_expression
from cyclonedx.model import HashAlgorithm, HashType
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import LicenseExpression
from cyclonedx.output.json import JsonV1Dot5
from packageurl import PackageURL

RUST = Path(__file__).resolve().parents[1] / "rust"
CRATES_IO = "registry+https://github.com/rust-lang/crates.io-index"


@dataclass(frozen=True)
class Crate:
    """One crate of the build graph."""

    name: str
    version: str
    license: str | None
    source: str | None  # None: a path crate of the workspace
    checksum: str | None


@functools.cache
def _licensing() -> Any:
    """The SPDX licence index (loaded once: it is a large table)."""
    return license_expression.get_spdx_licensing()


def licence_allowed(expression: str, allowed: set[str]) -> bool:
    """True if the SPDX ``expression`` can be satisfied with ``allowed`` licences only
    (an OR needs one allowed branch, an AND every branch; ``A/B`` is the old OR)."""
    tree = _licensing().parse(expression.replace("/", " OR "), validate=False)

    def ok(node: Any) -> bool:
        if isinstance(node, license_expression.LicenseWithExceptionSymbol):
            return str(node) in allowed
        if isinstance(node, license_expression.LicenseSymbol):
            return node.key in allowed
        if isinstance(node, license_expression.AND):
            return all(ok(a) for a in node.args)
        if isinstance(node, license_expression.OR):
            return any(ok(a) for a in node.args)
        raise ValueError(f"unexpected licence expression node {node!r}")

    return ok(tree)


def problems(crates: list[Crate], wildcards: list[str], policy: dict[str, Any]) -> list[str]:
    """Every way ``crates`` break ``policy`` (deny.toml's tables), one line each."""
    out: list[str] = []
    allowed = set(policy["licenses"]["allow"])
    registries = {f"registry+{r}" for r in policy["sources"].get("allow-registry", [])}
    versions: dict[str, set[str]] = defaultdict(set)
    for c in crates:
        if c.source is None:
            continue  # the workspace's own crates (publish = false)
        versions[c.name].add(c.version)
        if not c.license:
            out.append(f"licence: {c.name} {c.version} declares no licence")
        elif not licence_allowed(c.license, allowed):
            out.append(f"licence: {c.name} {c.version} is {c.license!r}, not in deny.toml's allow")
        if c.source not in registries:
            out.append(f"source: {c.name} {c.version} comes from {c.source}")
    if policy["bans"].get("multiple-versions") == "deny":
        out += [
            f"bans: {name} in {len(vs)} versions ({', '.join(sorted(vs))})"
            for name, vs in sorted(versions.items())
            if len(vs) > 1
        ]
    if policy["bans"].get("wildcards") == "deny":
        out += [f"bans: wildcard requirement {w}" for w in wildcards]
    return out


def _cargo(*args: str) -> str:
    return subprocess.run(
        ["cargo", *args, "--locked", "--offline"],
        cwd=RUST,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def build_graph() -> tuple[list[Crate], list[str]]:
    """The crates of the build graph and the wildcard requirements among them."""
    tree = _cargo(
        "tree",
        "--workspace",
        "--target",
        "all",
        "-e",
        "normal,build,dev",
        "--prefix",
        "none",
        "-f",
        "{p}",
    )
    used = set()
    for line in tree.splitlines():
        name, _, rest = line.removesuffix(" (*)").partition(" v")
        if name:
            used.add((name, rest.split(" ")[0]))
    metadata = json.loads(_cargo("metadata", "--format-version", "1"))
    lock = tomllib.loads((RUST / "Cargo.lock").read_text())
    checksums = {(p["name"], p["version"]): p.get("checksum") for p in lock["package"]}
    crates, wildcards = [], []
    for p in metadata["packages"]:
        if (p["name"], p["version"]) not in used:
            continue
        crates.append(
            Crate(
                p["name"],
                p["version"],
                p.get("license"),
                p.get("source"),
                checksums.get((p["name"], p["version"])),
            )
        )
        wildcards += [
            f"{p['name']} -> {d['name']} = {d['req']!r}"
            for d in p["dependencies"]
            if d["req"] == "*" and d.get("path") is None
        ]
    return sorted(crates, key=lambda c: (c.name, c.version)), wildcards


def sbom(crates: list[Crate]) -> str:
    """A CycloneDX 1.5 JSON SBOM of the registry crates."""

    bom = Bom()
    for c in crates:
        if c.source is None:
            continue
        bom.components.add(
            Component(
                type=ComponentType.LIBRARY,
                name=c.name,
                version=c.version,
                purl=PackageURL("cargo", name=c.name, version=c.version),
                bom_ref=f"{c.name}@{c.version}",
                licenses=[LicenseExpression(c.license)] if c.license else [],
                hashes=[HashType(alg=HashAlgorithm.SHA_256, content=c.checksum)]
                if c.checksum
                else [],
            )
        )
    return str(JsonV1Dot5(bom).output_as_string(indent=2))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sbom", type=Path, help="write the CycloneDX JSON SBOM here")
    args = parser.parse_args()
    policy = tomllib.loads((RUST / "deny.toml").read_text())
    crates, wildcards = build_graph()
    found = problems(crates, wildcards, policy)
    for line in found:
        print(f"check_crates: {line}", file=sys.stderr)
    if args.sbom is not None:
        args.sbom.parent.mkdir(parents=True, exist_ok=True)
        args.sbom.write_text(sbom(crates))
    third_party = sum(c.source is not None for c in crates)
    print(f"check_crates: {third_party} crates, {len(found)} problems")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
