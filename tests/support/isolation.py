"""Keeps the test session away from the developer's home directory.

``isolate_home`` points HOME, the XDG base directories and the AWS config/credentials
files at a fresh temp dir and drops ambient Vault/AWS identity, for the whole session
(it runs in ``pytest_configure``, before any server starts). ``HomeSnapshot`` records
the real HOME's top-level entries (with mtimes), ``~/.vault-token`` and ``~/.aws`` at
the start so the session can fail if any of them changed by the end.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

XDG_DIRS = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")
AMBIENT = ("VAULT_TOKEN", "BAO_TOKEN", "VAULT_ADDR", "BAO_ADDR", "AWS_PROFILE")


def isolate_home() -> Path:
    """Redirects HOME, XDG_* and AWS_* file settings to a new temp dir; returns it."""
    root = Path(tempfile.mkdtemp(prefix="envelope-tests-home-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    home = root / "home"
    home.mkdir()
    os.environ["HOME"] = str(home)
    for name in XDG_DIRS:
        path = root / name.lower()
        path.mkdir()
        os.environ[name] = str(path)
    runtime = root / "xdg_runtime_dir"
    runtime.mkdir(mode=0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    os.environ["AWS_CONFIG_FILE"] = str(home / ".aws" / "config")
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(home / ".aws" / "credentials")
    for name in AMBIENT:
        os.environ.pop(name, None)
    return root


def _digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        return f"unreadable: {exc.strerror}"


def _state(path: Path) -> str:
    """Kind, mtime and (for files) content digest of one path; 'absent' if missing."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return "absent"
    kind = "dir" if path.is_dir() and not path.is_symlink() else "file"
    digest = _digest(path) if kind == "file" and st.st_size < 1 << 20 else ""
    return f"{kind} mtime={st.st_mtime_ns} {digest}".strip()


@dataclass
class HomeSnapshot:
    """The parts of the real HOME a test run could plausibly touch."""

    home: Path | None
    entries: dict[str, str] = field(default_factory=dict)

    @classmethod
    def take(cls, home: str | None = None) -> HomeSnapshot:
        raw = home if home is not None else os.environ.get("HOME")
        if not raw or not Path(raw).is_dir():
            return cls(None)
        root = Path(raw)
        entries = {p.name: _state(p) for p in root.iterdir()}
        entries[".vault-token"] = _state(root / ".vault-token")
        aws = root / ".aws"
        entries[".aws"] = _state(aws)
        if aws.is_dir():
            for p in sorted(aws.rglob("*")):
                entries[str(p.relative_to(root))] = _state(p)
        return cls(root, entries)

    def changes(self) -> list[str]:
        """What differs now from the snapshot, one line per path."""
        if self.home is None:
            return []
        now = HomeSnapshot.take(str(self.home)).entries
        return [
            f"~/{name}: {self.entries.get(name, 'absent')} -> {now.get(name, 'absent')}"
            for name in sorted(set(self.entries) | set(now))
            if self.entries.get(name, "absent") != now.get(name, "absent")
        ]
