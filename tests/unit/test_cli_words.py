"""Errors the CLI shows speak flags, not Python parameters; the library keeps its words."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from envelope.errors import ConfigError, DecryptionError
from envelope.kms._local import LocalKms

SRC = Path(__file__).resolve().parents[2] / "src" / "envelope"
PARAMETER = re.compile(r"\b[a-z][a-z_]*=(?:True|False)?(?=[\s,;)]|$)")
# Raised only through library entry points the CLI never calls (no flag to name).
LIBRARY_ONLY = {"arrow", "dask", "_batch", "aio"}
# `context=` with `any_context=True`: cli/_message.py refuses -c with --any-context first.
NOT_FROM_CLI = {"_envelope.py", "_keys/recovered.py"}


def _text(node: ast.AST) -> str:
    return " ".join(
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    )


def _raises_naming_parameters() -> list[tuple[str, int, bool]]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        if rel.parts[0] in {"cli", *LIBRARY_ONLY} or str(rel) in NOT_FROM_CLI:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                call = node.exc
                message = " ".join(_text(a) for a in call.args)
                if PARAMETER.search(message):
                    has_cli = any(k.arg == "cli" for k in call.keywords)
                    found.append((str(rel), node.lineno, has_cli))
    return found


def test_the_scan_finds_the_known_messages() -> None:
    assert {p for p, _, _ in _raises_naming_parameters()} >= {"kms/_local.py", "_keys/source.py"}


@pytest.mark.parametrize(("path", "line", "has_cli"), _raises_naming_parameters())
def test_an_error_naming_a_parameter_carries_its_cli_words(
    path: str, line: int, has_cli: bool
) -> None:
    assert has_cli, f"{path}:{line} names a Python parameter: add cli='... --flag ...'"


def test_library_and_cli_words(tmp_path: Path) -> None:
    LocalKms.create(tmp_path / "k.json")
    with pytest.raises(ConfigError) as caught:
        LocalKms.create(tmp_path / "k.json")
    assert "overwrite=True" in str(caught.value) and "--force" not in str(caught.value)
    assert "--force" in caught.value.cli_message and "overwrite" not in caught.value.cli_message


def test_cli_message_defaults_to_the_message() -> None:
    assert DecryptionError().cli_message == DecryptionError.MESSAGE
    assert ConfigError("no keyring").cli_message == "no keyring"


def test_inspect_verify_reports_slot_problems_in_cli_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from envelope import Envelope, cli
    from envelope._keys.cluster import ClusterSecret

    kms = LocalKms.create(tmp_path / "k.json")
    (tmp_path / "m").write_bytes(Envelope(kms, ClusterSecret.generate()).encrypt(b"x"))
    monkeypatch.delenv("ENVELOPE_CLUSTER_SECRET_FILE", raising=False)
    monkeypatch.delenv("ENVELOPE_CLUSTER_SECRET", raising=False)
    assert cli.run(["inspect", str(tmp_path / "m"), "--verify", "--keyring", str(kms.path)]) == 1
    shown = capsys.readouterr().out
    assert "--cluster-secret FILE" in shown and "cluster_secret=" not in shown
    (library,) = Envelope(kms).verify_key_slots((tmp_path / "m").read_bytes())
    assert "cluster_secret=" in str(library[2])  # the library keeps its words
