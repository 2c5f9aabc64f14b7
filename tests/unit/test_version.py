"""One version: rust/Cargo.toml's workspace version is the package's, _native's and the CLI's."""

import subprocess
import sys
import tomllib
from pathlib import Path

import envelope
import envelope._native

ROOT = Path(__file__).resolve().parents[2]


def _workspace_version() -> str:
    manifest = tomllib.loads((ROOT / "rust" / "Cargo.toml").read_text(encoding="utf-8"))
    version = manifest["workspace"]["package"]["version"]
    assert isinstance(version, str)
    return version


def test_package_and_native_module_report_the_cargo_workspace_version() -> None:
    version = _workspace_version()
    assert envelope._native.__version__ == version
    assert envelope.__version__ == version


def test_pyproject_takes_the_version_from_the_manifest() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in pyproject["project"]
    assert "version" in pyproject["project"]["dynamic"]


def test_every_crate_inherits_the_workspace_version() -> None:
    for crate in ("kernel", "python"):
        manifest = tomllib.loads((ROOT / "rust" / crate / "Cargo.toml").read_text(encoding="utf-8"))
        assert manifest["package"]["version"] == {"workspace": True}, crate


def test_cli_version_prints_it() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "envelope", "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == f"envelope {_workspace_version()}"
