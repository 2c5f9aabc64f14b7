"""``--json`` output of the list and rotation commands, parsed."""

from __future__ import annotations

import io
import json
import os
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from envelope import cli


def run_json(argv: list[str]) -> Any:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.run([*argv, "--json"])
    assert code == 0, err.getvalue()
    return json.loads(out.getvalue())


def run(argv: list[str]) -> int:
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        return cli.run(argv)


@pytest.fixture(autouse=True)
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("ENVELOPE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ENVELOPE_KEYRING", str(tmp_path / "keyring.json"))
    assert run(["keyring", "init"]) == 0
    assert run(["cluster-secret", "new", "--out", "part"]) == 0
    Path("plain.txt").write_text("hi\n")
    assert run(["encrypt", "plain.txt", "-o", "m.env", "--cluster-secret", "part"]) == 0
    return tmp_path


def test_keyring_list() -> None:
    assert run(["keyring", "rotate"]) == 0
    info = run_json(["keyring", "list"])
    assert info["current"] == 2
    assert [v["version"] for v in info["versions"]] == [1, 2]


def test_keystore_list_and_rewrap(work: Path) -> None:
    store = ["--keystore", str(work / "keys")]
    assert run(["keystore", "put", "svc/dek", *store]) == 0
    assert run(["keystore", "put", "svc/dek", *store]) == 0
    listed = run_json(["keystore", "list", *store])
    assert listed["keys"] == [{"name": "svc/dek", "versions": [1, 2]}]
    assert run(["keyring", "rotate"]) == 0
    rewrapped = run_json(["keystore", "rewrap", "svc/dek", "--all", *store])
    assert rewrapped == {"name": "svc/dek", "rewrapped": [1, 2]}


def test_rewrap_summary() -> None:
    assert run(["keyring", "rotate"]) == 0
    summary = run_json(["rewrap", "m.env", "--state", "journal"])
    assert summary == {"total": 1, "done": ["m.env"], "skipped": [], "failed": []}
    again = run_json(["rewrap", "m.env", "--state", "journal"])
    assert again["skipped"] == ["m.env"] and again["done"] == []


def test_reencrypt_summary() -> None:
    assert run(["cluster-secret", "new", "--out", "new.part"]) == 0
    argv = ["reencrypt", "m.env", "--cluster-secret", "new.part"]
    summary = run_json([*argv, "--previous-cluster-secret", "part"])
    assert summary["done"] == ["m.env"] and summary["failed"] == []


def test_reencrypt_summary_lists_failures_as_json() -> None:
    assert run(["cluster-secret", "new", "--out", "new.part"]) == 0
    assert run(["cluster-secret", "new", "--out", "wrong.part"]) == 0
    out = io.StringIO()
    argv = ["reencrypt", "m.env", "--cluster-secret", "new.part"]
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        code = cli.run([*argv, "--previous-cluster-secret", "wrong.part", "--json"])
    assert code == 1
    summary = json.loads(out.getvalue())
    assert [f["path"] for f in summary["failed"]] == ["m.env"]
    assert summary["failed"][0]["reason"]


def test_a_failure_reason_speaks_flags() -> None:
    """An unsplit message refused by reencrypt: the reason names --accept-unsplit."""
    assert run(["encrypt", "plain.txt", "-o", "u.env", "--no-split"]) == 0
    assert run(["cluster-secret", "new", "--out", "new.part"]) == 0
    out = io.StringIO()
    argv = ["reencrypt", "u.env", "--cluster-secret", "new.part"]
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        code = cli.run([*argv, "--previous-cluster-secret", "part", "--json"])
    assert code == 1
    [failure] = json.loads(out.getvalue())["failed"]
    assert "--accept-unsplit" in failure["reason"] and "accept_unsplit=" not in failure["reason"]
