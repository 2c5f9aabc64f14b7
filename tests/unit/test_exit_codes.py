"""The one exit-code table: the CLI's help, ``envelope init`` and the docs agree with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from envelope import cli
from envelope._exitcodes import ExitCode, exit_codes_summary
from envelope.cli._k8s import INIT_CODES

ROOT = Path(__file__).resolve().parents[2]
INIT_EXIT_CODES = {
    ExitCode.OK,
    ExitCode.DECRYPT,
    ExitCode.CONFIG,
    ExitCode.KMS,
    ExitCode.IO,
    ExitCode.DISK,
}


def test_the_table() -> None:
    assert [(c.name, c.value) for c in ExitCode] == [
        ("OK", 0),
        ("DECRYPT", 1),
        ("USAGE", 2),
        ("CONFIG", 3),
        ("KMS", 4),
        ("IO", 5),
        ("DISK", 6),
        ("INTERNAL", 70),
        ("INTERRUPTED", 130),
    ]
    assert all(c.description and "\n" not in c.description for c in ExitCode)


def test_readme_lists_the_cli_codes() -> None:
    assert exit_codes_summary() == (
        "(0 ok, 1 decryption failed, 2 usage, 3 configuration, 4 KMS, 5 I/O, "
        "70 internal error, 130 interrupted)"
    )
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert exit_codes_summary() in readme


def _codes_in(text: str) -> set[int]:
    return {int(n) for n in re.findall(r"(?:^|[:,] )(\d) ", text)}


def test_kubernetes_doc_and_init_help_list_the_init_codes() -> None:
    doc = " ".join((ROOT / "docs" / "kubernetes.md").read_text().split())
    bullet = doc.split("**Exit codes**:", 1)[1].split(" - **", 1)[0].strip()
    assert _codes_in(bullet) == INIT_EXIT_CODES
    assert _codes_in(INIT_CODES) == INIT_EXIT_CODES


@pytest.mark.parametrize("argv", [[], ["encrypt"], ["init"]])
def test_help_epilog_is_generated_from_the_table(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        cli.run([*argv, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for code in ExitCode:
        line = f"{code.value} {' '.join(code.description.split())}"
        assert (line in out) == (code is not ExitCode.DISK or argv == ["init"]), line
