"""envelope edit / textconv / merge-driver in a real git repository, through the CLI."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TOKEN = re.compile(r"ENV\[v1,[A-Za-z0-9_-]+\]")
SRC = Path(__file__).resolve().parents[2] / "src"
ENVELOPE = f"{shlex.quote(sys.executable)} -m envelope"

SECRETS = """\
# billing service
db:
  host: db.internal
  password: hunter2  # rotated 2026-11
  port: 5432
api:
  key: sk_live_abc
  timeout: 30
"""

RULES = """\
creation_rules:
  - path_regex: secrets/.*\\.yaml$
    kms:
      - kind: local
        keyring: keyring.json
    context:
      service: billing
"""


def run(
    repo: Path, *args: str, check: bool = True, **kw: object
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(repo)}
    env.update(kw.pop("env", {}))  # type: ignore[arg-type]
    return subprocess.run(
        list(args),
        cwd=repo,
        env=env,
        text=True,
        capture_output=True,
        check=check,
        timeout=120,
        **kw,
    )


def envelope(
    repo: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run(repo, sys.executable, "-m", "envelope", *args, check=check, env=env or {})


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    run(repo, "git", "init", "-q", "-b", "main")
    run(repo, "git", "config", "user.email", "dev@example.com")
    run(repo, "git", "config", "user.name", "Dev")
    envelope(repo, "keyring", "init", "--keyring", "keyring.json")
    (repo / ".envelope.yaml").write_text(RULES)
    (repo / ".gitattributes").write_text("secrets/*.yaml diff=envelope merge=envelope\n")
    run(repo, "git", "config", "diff.envelope.textconv", f"{ENVELOPE} decrypt --textconv")
    run(
        repo,
        "git",
        "config",
        "merge.envelope.driver",
        f"{ENVELOPE} merge-driver %O %A %B --path %P",
    )
    (repo / ".gitignore").write_text("keyring.json\nscratch/\n")
    (repo / "secrets").mkdir()
    (repo / "secrets" / "app.yaml").write_text(SECRETS)
    envelope(repo, "encrypt", "-i", "secrets/app.yaml")
    run(repo, "git", "add", ".")
    run(repo, "git", "commit", "-qm", "secrets")
    (repo / "scratch").mkdir()
    return repo


def editor(repo: Path, body: str) -> dict[str, str]:
    script = repo.parent / "editor.py"
    script.write_text("import sys, pathlib, time\np = pathlib.Path(sys.argv[1])\n" + body)
    return {"EDITOR": f"{shlex.quote(sys.executable)} {script}"}


EDIT = ("edit", "secrets/app.yaml", "--tmpdir", "scratch", "--allow-disk")


def test_edit_reencrypts_only_the_changed_value_and_git_diff_shows_it(repo: Path) -> None:
    path = repo / "secrets" / "app.yaml"
    before = path.read_text()
    ed = editor(repo, "p.write_text(p.read_text().replace('port: 5432', 'port: 6432'))\n")
    envelope(repo, *EDIT, env=ed)
    after = path.read_text()
    old, new = TOKEN.findall(before), TOKEN.findall(after)
    assert len(old) == len(new) == 5
    assert [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b] == [2]  # .db.port
    assert "# rotated 2026-11" in after and list(repo.joinpath("scratch").iterdir()) == []
    raw = run(repo, "git", "diff", "--no-textconv", "-U0").stdout
    changed = [
        ln[1:].split(":")[0].strip()
        for ln in raw.splitlines()
        if ln[:1] in "+-" and ln[:3] not in ("+++", "---")
    ]
    assert set(changed) - {"lastmodified"} == {"mac", "port"}  # same second: same stamp
    pretty = run(repo, "git", "diff", "-U0").stdout
    lines = [ln for ln in pretty.splitlines() if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
    assert lines == ["-  port: 5432", "+  port: 6432"]
    assert "db.internal" in envelope(repo, "decrypt", "secrets/app.yaml").stdout


def test_edit_without_change_leaves_the_file_untouched(repo: Path) -> None:
    path = repo / "secrets" / "app.yaml"
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    envelope(repo, *EDIT, env=editor(repo, "p.write_text(p.read_text())\n"))
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("sys.exit(3)\n", "editor exited with status 3"),
        ("p.write_text('db: [unclosed\\n')\n", "app.yaml:2:1"),
        ("p.write_text('a: 1\\na: 2\\n')\n", "duplicate"),
    ],
)
def test_failed_or_invalid_edit_leaves_the_file_untouched(
    repo: Path, body: str, message: str
) -> None:
    path = repo / "secrets" / "app.yaml"
    before = path.read_bytes()
    result = envelope(repo, *EDIT, env=editor(repo, body), check=False)
    assert result.returncode != 0 and message in result.stderr
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr
    assert path.read_bytes() == before and list(repo.joinpath("scratch").iterdir()) == []


def test_edit_scratch_file_is_private_and_removed_on_sigterm(repo: Path) -> None:
    seen = repo.parent / "seen"
    body = (
        f"import os\nmode = oct(os.stat(p).st_mode & 0o777)\n"
        f"pathlib.Path({str(seen)!r}).write_text(str(p) + ' ' + mode)\ntime.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC), **editor(repo, body)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "envelope", *EDIT],
        cwd=repo,
        env=env,
        start_new_session=True,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr = ""
    try:
        for _ in range(300):
            if seen.exists() and seen.read_text():
                break
            time.sleep(0.05)
        scratch, mode = seen.read_text().split()
        assert mode == "0o600" and Path(scratch).exists()
        os.kill(proc.pid, signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this test started
            proc.communicate()
    # Exits as every command does on SIGTERM: 128 + 15, quietly (not as a bug).
    assert proc.returncode == 128 + signal.SIGTERM and "internal error" not in stderr, stderr
    assert not Path(scratch).exists() and list(repo.joinpath("scratch").iterdir()) == []


def test_edit_refuses_a_disk_backed_scratch_dir(repo: Path) -> None:
    result = envelope(repo, "edit", "secrets/app.yaml", "--tmpdir", "scratch", check=False)
    assert result.returncode == 3 and "--allow-disk" in result.stderr


def _branch_edit(repo: Path, branch: str, *changes: tuple[str, str]) -> None:
    run(repo, "git", "checkout", "-q", "-b", branch, "main")
    for path, value in changes:
        envelope(repo, "set", "secrets/app.yaml", path, value)
    run(repo, "git", "commit", "-qam", branch)


def test_merge_driver_merges_on_structure(repo: Path) -> None:
    _branch_edit(repo, "ours", (".db.password", '"new-db-pass"'))
    _branch_edit(repo, "theirs", (".api.timeout", "60"), (".api.region", '"eu"'))
    run(repo, "git", "checkout", "-q", "ours")
    merged = run(repo, "git", "merge", "-q", "--no-edit", "theirs", check=False)
    assert merged.returncode == 0, merged.stderr
    text = envelope(repo, "decrypt", "secrets/app.yaml").stdout
    assert "password: new-db-pass  # rotated 2026-11" in text
    assert "timeout: 60" in text and "region: eu" in text and text.startswith("# billing service")
    assert "<<<<<<<" not in (repo / "secrets" / "app.yaml").read_text()


def test_merge_driver_leaves_a_true_conflict(repo: Path) -> None:
    _branch_edit(repo, "ours", (".db.port", "1111"), (".api.timeout", "5"))
    _branch_edit(repo, "theirs", (".db.port", "2222"))
    run(repo, "git", "checkout", "-q", "ours")
    merged = run(repo, "git", "merge", "--no-edit", "theirs", check=False)
    assert merged.returncode != 0
    assert "merge conflict at .db.port" in merged.stderr + merged.stdout
    text = envelope(repo, "decrypt", "secrets/app.yaml").stdout  # still a valid document
    assert "port: 1111" in text and "timeout: 5" in text


def test_textconv_passes_through_what_it_cannot_open(repo: Path) -> None:
    (repo / "plain.txt").write_text("hello\n")
    assert envelope(repo, "decrypt", "--textconv", "plain.txt").stdout == "hello\n"
    (repo / ".envelope.yaml").write_text(RULES.replace("keyring.json", "missing.json"))
    out = envelope(repo, "decrypt", "--textconv", "secrets/app.yaml")
    assert "ENV[v1," in out.stdout and "shows secrets/app.yaml encrypted" in out.stderr


def test_invalid_edit_is_kept_and_reopened_on_a_terminal(repo: Path) -> None:
    import pty
    import select

    calls = repo.parent / "calls"
    body = (
        f"log = pathlib.Path({str(calls)!r})\n"
        "n = len(log.read_text().splitlines()) if log.exists() else 0\n"
        "text = p.read_text()\n"
        "log.write_text((log.read_text() if log.exists() else '') + str('[5433' in text) + '\\n')\n"
        "if n == 0:\n"
        "    p.write_text(text.replace('port: 5432', 'port: [5433'))\n"
        "else:\n"
        "    p.write_text(text.replace('port: [5433', 'port: 5433'))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC), **editor(repo, body)}
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "envelope", *EDIT],
        cwd=repo,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    seen = b""
    try:
        while b"[Y/n]" not in seen:
            ready, _, _ = select.select([master], [], [], 30)
            assert ready, seen
            seen += os.read(master, 4096)
        os.write(master, b"y\n")
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        os.close(master)
    assert b"app.yaml" in seen and b"hunter2" not in seen
    assert calls.read_text().splitlines() == ["False", "True"]  # the 2nd run got the edit back
    text = envelope(repo, "decrypt", "secrets/app.yaml").stdout
    assert "port: 5433" in text and "password: hunter2" in text
