"""The session's isolation from the developer's HOME, and the check that guards it."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.isolation import XDG_DIRS, HomeSnapshot


def test_session_home_and_xdg_dirs_are_temporary(tmp_path: Path) -> None:
    home = Path(os.environ["HOME"])
    assert home.name == "home" and home.parent.name.startswith("envelope-tests-home-")
    for name in (*XDG_DIRS, "XDG_RUNTIME_DIR"):
        assert Path(os.environ[name]).parent == home.parent
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        assert Path(os.environ[name]).is_relative_to(home)
    assert "VAULT_TOKEN" not in os.environ


def test_snapshot_sees_a_new_vault_token_and_aws_change(tmp_path: Path) -> None:
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "config").write_text("[default]\n")
    snap = HomeSnapshot.take(str(tmp_path))
    assert snap.changes() == []
    (tmp_path / ".vault-token").write_text("root")
    (tmp_path / ".aws" / "config").write_text("[default]\nregion = x\n")
    changed = snap.changes()
    assert any(c.startswith("~/.vault-token: absent -> file") for c in changed)
    assert any(c.startswith("~/.aws/config:") for c in changed)


def test_snapshot_of_a_missing_home_reports_nothing() -> None:
    assert HomeSnapshot.take("/nonexistent/home").changes() == []
