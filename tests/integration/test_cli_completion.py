"""``envelope completion bash|zsh|fish``: each shell really loads the script and completes.

bash is always present; zsh and fish are skipped, saying so, where they are not installed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from envelope import cli
from envelope.cli._tree import commands


def script(shell: str, tmp_path: Path) -> Path:
    done = subprocess.run(
        [sys.executable, "-m", "envelope", "completion", shell],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    path = tmp_path / f"envelope.{shell}"
    path.write_text(done.stdout)
    return path


def shell(argv: list[str], tmp_path: Path) -> str:
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def bash_complete(path: Path, words: list[str], tmp_path: Path) -> list[str]:
    quoted = " ".join(f"'{w}'" for w in words)
    program = (
        f"source {path}; COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; "
        'COMP_LINE="${COMP_WORDS[*]}"; _envelope; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    return shell(["bash", "--norc", "--noprofile", "-c", program], tmp_path).split()


def test_bash_loads_the_script(tmp_path: Path) -> None:
    py = sys.executable
    out = shell(
        [
            "bash",
            "--norc",
            "-c",
            f"source <({py} -m envelope completion bash); complete -p envelope",
        ],
        tmp_path,
    )
    assert out.strip() == "complete -o filenames -F _envelope envelope"


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["envelope", "keyr"], ["keyring"]),
        (["envelope", "keyring", "l"], ["list"]),
        (["envelope", "-q", "keystore", "re"], ["rewrap"]),
        (["envelope", "encrypt", "--clus"], ["--cluster-secret"]),
        (["envelope", "encrypt", "--kms", ""], ["aws", "local", "vault"]),
        (["envelope", "completion", "z"], ["zsh"]),  # a positional's choices
        (["envelope", "completion", "bash", "--"], ["--help", "--quiet"]),
    ],
)
def test_bash_completes(tmp_path: Path, words: list[str], expected: list[str]) -> None:
    assert sorted(bash_complete(script("bash", tmp_path), words, tmp_path)) == expected


def test_bash_completes_every_command_and_its_flags(tmp_path: Path) -> None:
    path = script("bash", tmp_path)
    for command in commands(cli.build_parser()):
        if not command.path:
            continue
        *above, last = command.path
        assert last in bash_complete(path, ["envelope", *above, last], tmp_path)
    flags = bash_complete(path, ["envelope", "keyring", "list", "-"], tmp_path)
    assert {"--json", "--keyring", "-q", "--quiet"} <= set(flags)


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed on this machine")
def test_zsh_script_is_valid_and_registers(tmp_path: Path) -> None:
    path = script("zsh", tmp_path)
    shell(["zsh", "-n", str(path)], tmp_path)
    program = (
        f"autoload -U compinit && compinit -u -d {tmp_path}/zcompdump; source {path}; "
        'print -r -- "$_comps[envelope]"; setopt ksharrays; '
        'COMP_WORDS=(envelope keyring ""); COMP_CWORD=2; _envelope; print -r -- "${COMPREPLY[@]}"'
    )
    registered, words = shell(["zsh", "-f", "-c", program], tmp_path).splitlines()
    assert registered == "_bash_complete -o filenames -F _envelope"
    assert set(words.split()) == {"init", "rotate", "list"}


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed on this machine")
def test_fish_script_is_valid_and_completes(tmp_path: Path) -> None:
    path = script("fish", tmp_path)
    shell(["fish", "--no-execute", str(path)], tmp_path)

    def complete(line: str) -> list[str]:
        out = shell(["fish", "--no-config", "-c", f"source {path}; complete -C '{line}'"], tmp_path)
        return [row.split("\t")[0] for row in out.splitlines()]

    assert complete("envelope keyr") == ["keyring"]
    assert sorted(complete("envelope keyring ")) == ["init", "list", "rotate"]
    assert complete("envelope encrypt --clus") == ["--cluster-secret"]
    assert sorted(complete("envelope encrypt --kms ")) == ["aws", "local", "vault"]
