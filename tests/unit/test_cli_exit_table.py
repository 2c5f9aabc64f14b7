"""Every command, walked from the parser, exits with the table's code for the same failure.

A command added to the parser without a row here fails :func:`test_every_command_has_rows`,
so the table cannot silently skip one.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from envelope import cli
from envelope._exitcodes import ExitCode
from envelope.cli._tree import commands, subcommands

MISSING = "no-such-dir/no-such-file"

# command -> [(argv after the command, expected code)]; placeholders: {plain} a text file,
# {msg} an envelope message, {part} a cluster-secret part, {out} a writable output path,
# {missing} a path that does not exist, {file} a regular file (so {file}/x cannot exist).
ROWS: dict[str, list[tuple[list[str], ExitCode]]] = {
    "quickstart": [(["--dir", "{file}/demo"], ExitCode.IO)],
    "keyring init": [(["--keyring", "{file}/keyring.json"], ExitCode.CONFIG)],
    "keyring rotate": [(["--keyring", "{missing}"], ExitCode.CONFIG)],
    "keyring list": [
        (["--keyring", "{missing}"], ExitCode.CONFIG),
        (["--keyring", "{plain}"], ExitCode.CONFIG),  # not a keyring
        (["--passphrase-file", "{missing}"], ExitCode.CONFIG),
    ],
    "keyring unwrap": [
        (["--key-id", "kr-0", "--wrapped", "AAAA", "--keyring", "{missing}"], ExitCode.CONFIG),
        (["--key-id", "kr-0", "--wrapped", "AAAA"], ExitCode.CONFIG),  # not this keyring's
    ],
    "keystore put": [(["svc/dek"], ExitCode.CONFIG)],
    "keystore get": [(["svc/dek"], ExitCode.CONFIG)],
    "keystore list": [([], ExitCode.CONFIG)],
    "keystore rewrap": [(["svc/dek"], ExitCode.CONFIG)],
    "cluster-secret new": [(["--out", "{missing}"], ExitCode.IO)],
    "cluster-secret id": [(["{missing}"], ExitCode.CONFIG), (["{plain}"], ExitCode.CONFIG)],
    "encrypt": [
        (["{missing}", "--cluster-secret", "{part}"], ExitCode.IO),
        (["{missing}", "-o", "{out}", "--cluster-secret", "{part}"], ExitCode.IO),
        (["{plain}", "-o", "{missing}", "--cluster-secret", "{part}"], ExitCode.IO),
        (["{plain}", "-o", "{out}", "--cluster-secret", "{missing}"], ExitCode.CONFIG),
        (["{plain}", "-o", "{out}", "--no-split", "--keyring", "{missing}"], ExitCode.CONFIG),
        (["{plain}", "-o", "{out}", "--mode", "999"], ExitCode.USAGE),
    ],
    "decrypt": [
        (["{missing}", "--cluster-secret", "{part}"], ExitCode.IO),
        (["{missing}", "-o", "{out}", "--cluster-secret", "{part}"], ExitCode.IO),
        (["{msg}", "-o", "{missing}", "--cluster-secret", "{part}"], ExitCode.IO),
        (["{msg}", "-o", "{out}", "--cluster-secret", "{missing}"], ExitCode.CONFIG),
        (["{msg}", "-o", "{out}", "--keyring", "{missing}"], ExitCode.CONFIG),
        (["{plain}", "-o", "{out}", "--cluster-secret", "{part}"], ExitCode.DECRYPT),
    ],
    "inspect": [(["{missing}"], ExitCode.IO), (["{plain}"], ExitCode.DECRYPT)],
    "init": [
        (["--config", "{missing}"], ExitCode.CONFIG),
        (["--config", "{plain}"], ExitCode.CONFIG),
    ],
    "exec": [(["--config", "{missing}", "--", "true"], ExitCode.CONFIG)],
    "rewrap": [(["{missing}"], ExitCode.IO)],
    "reencrypt": [
        (["{missing}", "--cluster-secret", "{part}", "--accept-unsplit"], ExitCode.IO),
        (["{msg}", "--cluster-secret", "{missing}", "--accept-unsplit"], ExitCode.CONFIG),
    ],
    "kms-plugin": [
        (["--listen", "unix:///nonexistent/x.sock", "--custodians", "{missing}"], ExitCode.CONFIG)
    ],
    "edit": [(["{missing}"], ExitCode.IO)],
    "set": [(["{missing}", ".a", "1"], ExitCode.IO)],
    "unset": [(["{missing}", ".a"], ExitCode.IO)],
    "updatekeys": [
        (["{missing}", "--cluster-secret", "{part}"], ExitCode.IO),
        (["{msg}"], ExitCode.CONFIG),
    ],
    "merge-driver": [(["{missing}", "{missing}", "{missing}"], ExitCode.IO)],
    "completion": [(["tcsh"], ExitCode.USAGE)],
}


def _leaves() -> list[str]:
    return [" ".join(c.path) for c in commands(cli.build_parser()) if c.is_leaf]


def _groups() -> list[str]:
    return [" ".join(c.path) for c in commands(cli.build_parser()) if c.path and not c.is_leaf]


def _run(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        try:
            code = cli.run(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, err.getvalue()


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    for name in list(__import__("os").environ):
        if name.startswith(("ENVELOPE_", "VAULT_", "BAO_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ENVELOPE_KEYRING", str(tmp_path / "keyring.json"))
    assert _run(["keyring", "init"])[0] == 0
    assert _run(["cluster-secret", "new", "--out", "part"])[0] == 0
    (tmp_path / "plain.txt").write_text("hello\n")
    (tmp_path / "file").write_text("a regular file\n")
    argv = ["encrypt", "plain.txt", "-o", "msg.env", "--cluster-secret", "part"]
    assert _run(argv)[0] == 0
    yield {
        "plain": "plain.txt",
        "msg": "msg.env",
        "part": "part",
        "out": "out.bin",
        "missing": MISSING,
        "file": "file",
    }


def test_every_command_has_rows() -> None:
    assert sorted(_leaves()) == sorted(ROWS)


@pytest.mark.parametrize(
    ("command", "argv", "expected"),
    [(c, a, e) for c, rows in ROWS.items() for a, e in rows],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_failure_exits_with_the_tables_code(
    files: dict[str, str], command: str, argv: list[str], expected: ExitCode
) -> None:
    full = [*command.split(), *(a.format(**files) for a in argv)]
    code, err = _run(full)
    assert code == expected, (full, err)
    assert "Traceback" not in err and "internal error" not in err
    assert err.strip(), "a failure says why"


@pytest.mark.parametrize("command", _leaves())
def test_unknown_flag_is_a_usage_error_with_a_suggestion(
    files: dict[str, str], command: str
) -> None:
    parser = next(c.parser for c in commands(cli.build_parser()) if " ".join(c.path) == command)
    positionals = [
        str(a.choices[0]) if a.choices else "x"  # type: ignore[index]
        for a in parser._actions
        if not a.option_strings and a.nargs not in ("?", "*", "...")
    ]
    code, err = _run([*command.split(), "--quitt", *positionals])
    assert code == ExitCode.USAGE, err
    assert "unrecognized arguments: --quitt (did you mean --quiet" in err


@pytest.mark.parametrize("group", ["", *_groups()])
def test_unknown_subcommand_is_a_usage_error(files: dict[str, str], group: str) -> None:
    code, err = _run([*group.split(), "no-such-command"])
    assert code == ExitCode.USAGE, err
    assert "invalid choice" in err


@pytest.mark.parametrize("group", ["", *_groups()])
def test_a_mistyped_subcommand_gets_the_closest(files: dict[str, str], group: str) -> None:
    parser = next(c.parser for c in commands(cli.build_parser()) if " ".join(c.path) == group)
    name = next(iter(subcommands(parser)))
    code, err = _run([*group.split(), name[:-1] + "x"])
    assert code == ExitCode.USAGE
    assert f"did you mean {name}" in err


def test_a_mistyped_choice_gets_the_closest(files: dict[str, str]) -> None:
    code, err = _run(["encrypt", "{plain}".format(**files), "--kms", "awss"])
    assert code == ExitCode.USAGE
    assert "did you mean aws?" in err
