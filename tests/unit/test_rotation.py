"""Rotation tooling: rewrap many files (interrupted and resumed), re-encrypt under a new
cluster-secret part."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from envelope import ClusterSecret, DecryptionError, Envelope, KeyUnavailableError, LocalKms, cli
from envelope._exitcodes import ExitCode
from envelope._format.context import Context
from envelope._format.message import parse_header
from envelope._rotation import envelope_files, rewrap_paths
from envelope.kms._types import WrappedKey


class Interrupting(LocalKms):
    """Rewraps normally, then raises KeyboardInterrupt at call ``stop_at`` (a Ctrl-C)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rewraps = 0
        self.stop_at: int | None = None

    def rewrap(self, wrapped: WrappedKey, context: Context) -> WrappedKey:
        self.rewraps += 1
        if self.rewraps == self.stop_at:
            raise KeyboardInterrupt
        return super().rewrap(wrapped, context)


def version_of(path: Path) -> int:
    return int.from_bytes(parse_header(path.read_bytes())[0].slots[0].wrapped[1:5], "big")


def test_rewrap_1000_files_interrupted_then_resumed(tmp_path: Path) -> None:
    kms = Interrupting.create(tmp_path / "keyring.json")
    cluster = ClusterSecret.generate()
    env = Envelope(kms, cluster)
    secrets = tmp_path / "secrets"
    (secrets / "nested").mkdir(parents=True)
    files = []
    for i in range(1000):
        path = secrets / ("nested" if i % 2 else "") / f"s{i:04d}.env"
        path.write_bytes(env.encrypt(f"secret {i}".encode(), {"i": str(i)}))
        files.append(path)
    (secrets / "README.txt").write_text("not a message")  # skipped: no envelope magic
    kms.rotate()
    journal = tmp_path / "rewrap.journal"

    kms.stop_at = 501
    with pytest.raises(KeyboardInterrupt):
        rewrap_paths(env, [secrets], state=journal)
    assert len(journal.read_text().splitlines()) == 500
    assert sorted(version_of(f) for f in files).count(2) == 500

    kms.stop_at = None
    summary = rewrap_paths(env, [secrets], state=journal)
    assert (len(summary.done), len(summary.skipped), summary.failed) == (500, 500, [])
    assert kms.rewraps == 1000 + 1  # each file once, plus the interrupted call
    assert all(version_of(f) == 2 for f in files)
    reader = Envelope(LocalKms.open(tmp_path / "keyring.json"), cluster)
    assert all(
        reader.decrypt(f.read_bytes(), any_context=True) == f"secret {int(f.stem[1:])}".encode()
        for f in files
    )

    again = rewrap_paths(env, [secrets], state=journal)  # idempotent: nothing left to do
    assert (len(again.done), len(again.skipped)) == (0, 1000)


def test_cli_rewrap_summary_and_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENVELOPE_KEYRING", str(tmp_path / "k.json"))
    monkeypatch.chdir(tmp_path)
    assert cli.run(["keyring", "init"]) == 0
    env = Envelope(LocalKms.open(tmp_path / "k.json"))
    (tmp_path / "d").mkdir()
    for i in range(3):
        (tmp_path / "d" / f"{i}.env").write_bytes(env.encrypt(b"x"))
    (tmp_path / "d" / "bad.env").write_bytes(
        Envelope(LocalKms.ephemeral()).encrypt(b"other keyring")
    )
    capsys.readouterr()
    assert cli.run(["rewrap", "d", "--state", "j"]) == ExitCode.DECRYPT
    out = capsys.readouterr()
    assert "3 done, 0 already done (journal), 1 failed, of 4 files" in out.out
    assert "bad.env" in out.err
    assert cli.run(["rewrap", "d/0.env", "d/1.env", "--state", "j"]) == 0
    assert "0 done, 2 already done" in capsys.readouterr().out


def test_reencrypt_under_a_new_cluster_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVELOPE_KEYRING", str(tmp_path / "k.json"))
    monkeypatch.chdir(tmp_path)
    assert cli.run(["keyring", "init"]) == 0
    assert cli.run(["cluster-secret", "new", "--out", "old.part"]) == 0
    assert cli.run(["cluster-secret", "new", "--out", "new.part"]) == 0
    kms = LocalKms.open(tmp_path / "k.json")
    old = ClusterSecret.from_file("old.part")
    new = ClusterSecret.from_file("new.part")
    os.mkdir("s")
    for i in range(5):
        Path(f"s/{i}.env").write_bytes(Envelope(kms, old).encrypt(f"v{i}".encode(), {"n": str(i)}))
    assert (
        cli.run(
            [
                "reencrypt",
                "s",
                "--cluster-secret",
                "new.part",
                "--previous-cluster-secret",
                "old.part",
                "--state",
                "j",
            ]
        )
        == 0
    )
    for i in range(5):
        blob = Path(f"s/{i}.env").read_bytes()
        header, _ = parse_header(blob)
        assert header.split.cluster_secret_id == new.current.id
        assert dict(header.context) == {"n": str(i)}
        assert Envelope(kms, new).decrypt(blob, any_context=True) == f"v{i}".encode()
        with pytest.raises(KeyUnavailableError):
            Envelope(kms, old).decrypt(blob, any_context=True)  # the old part is retired


def test_envelope_files_finds_messages_only(tmp_path: Path) -> None:
    env = Envelope(LocalKms.ephemeral())
    (tmp_path / "a.env").write_bytes(env.encrypt(b"x"))
    (tmp_path / "b.txt").write_text("plain")
    (tmp_path / ".hidden").write_bytes(env.encrypt(b"y"))
    assert [p.name for p in envelope_files([tmp_path])] == ["a.env"]
    with pytest.raises(DecryptionError):
        env.decrypt((tmp_path / "b.txt").read_bytes())
