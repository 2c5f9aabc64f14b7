"""Start-up and exit: most of a short command's time (and a fixed cost of a long one,
docs/benchmarks.md). Each command loads only what it uses, and the program leaves
without the interpreter's teardown, yet with its exit handlers run and output flushed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from envelope import cli
from envelope.cli._app import COMMANDS, commands_needed
from envelope.cli._tree import Command, commands, subcommands

#: Modules a whole-file encrypt or decrypt with the local keyring has no use for.
UNUSED_BY_WHOLE_FILE = (
    "envelope._batch",
    "envelope._keys.breakglass",
    "envelope._keys.recovered",  # decrypt --data-key only
    "envelope._rotation",
    "envelope.documents",
    "envelope.kms._aws",
    "envelope.kms._vault",
    "envelope.keystore._s3",
    "pydantic",
    "pydantic_core",
    "cryptography",  # a plain local keyring seals with the native kernel; scrypt needs it
    # The other commands' CLI modules: only the command run is built.
    "envelope.cli._cluster_secret",
    "envelope.cli._completion",
    "envelope.cli._inspect",
    "envelope.cli._k8s",
    "envelope.cli._keyring",
    "envelope.cli._keystore",
    "envelope.cli._kms_plugin",
    "envelope.cli._rotation",
)

_PROBE = """
import json, sys
from envelope.cli import run
code = run(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _modules_after(args: list[str], env: dict[str, str], cwd: Path) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=False,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["code"] == 0, done.stderr
    return set(report["modules"])


@pytest.fixture
def keyring_env(tmp_path: Path) -> dict[str, str]:
    import os

    env = {**os.environ, "ENVELOPE_KEYRING": str(tmp_path / "keyring.json")}
    subprocess.run(
        [sys.executable, "-m", "envelope", "keyring", "init"],
        env=env,
        check=True,
        capture_output=True,
    )
    return env


def test_whole_file_commands_skip_the_modules_they_do_not_use(
    tmp_path: Path, keyring_env: dict[str, str]
) -> None:
    (tmp_path / "data.bin").write_bytes(b"\x00payload")
    enc = _modules_after(
        ["encrypt", "--no-split", "data.bin", "-o", "data.env"], keyring_env, tmp_path
    )
    dec = _modules_after(["decrypt", "data.env", "-o", "data.out"], keyring_env, tmp_path)
    assert (tmp_path / "data.out").read_bytes() == b"\x00payload"
    for loaded in (enc, dec):
        assert not {m for m in loaded for unused in UNUSED_BY_WHOLE_FILE if m == unused}


def test_a_document_still_goes_to_the_document_commands(
    tmp_path: Path, keyring_env: dict[str, str]
) -> None:
    (tmp_path / "app.yaml").write_text("db:\n  password: hunter2\n")
    loaded = _modules_after(
        ["encrypt", "--no-split", "app.yaml", "-o", "app.enc.yaml"], keyring_env, tmp_path
    )
    assert "envelope.documents" in loaded
    text = (tmp_path / "app.enc.yaml").read_text()
    assert "db:" in text and "hunter2" not in text  # value-level: keys stay readable


def _described(command: Command) -> list[object]:
    """What a parser is to its user: help, every action, its defaults (the handler by name)."""
    actions = [
        (
            type(a).__name__,
            a.option_strings,
            a.dest,
            a.nargs,
            a.const,
            repr(a.default),
            a.type,
            a.choices if a.option_strings or not a.choices else list(a.choices),
            a.required,
            a.help,
            a.metavar,
            repr(getattr(a, "envelope_default", None)),
        )
        for a in command.parser._actions
    ]
    defaults = {
        k: getattr(v, "__qualname__", v)
        for k, v in command.parser._defaults.items()
        if k != "_envelope_chain"
    }
    chain = [p.prog for p in command.parser._defaults.get("_envelope_chain", ())]
    return [command.parser.format_help(), actions, defaults, chain]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_command_built_alone_is_the_one_in_the_whole_tree(name: str) -> None:
    whole = {c.path: c for c in commands(cli.build_parser()) if c.path[:1] == (name,)}
    alone = cli.build_parser([name])
    assert list(subcommands(alone)) == [name]
    built = {c.path: c for c in commands(alone) if c.path}
    assert built.keys() == whole.keys()
    for path, command in built.items():
        assert _described(command) == _described(whole[path]), path


def test_the_whole_tree_lists_every_command_in_order_then_completion() -> None:
    assert list(subcommands(cli.build_parser())) == [*COMMANDS, "completion"]
    with pytest.raises(ValueError, match="no such command: nope"):
        cli.build_parser(["nope"])


@pytest.mark.parametrize(
    ("argv", "needed"),
    [
        (["encrypt", "f", "-o", "g"], ("encrypt",)),
        (["-q", "--quiet", "keyring", "list"], ("keyring",)),
        (["--version"], ()),
        (["-q", "--version", "encrypt"], ()),
        (["encrypt", "--version"], ("encrypt",)),
        # Anything else is parsed by the whole tree: help, completion, mistakes.
        ([], None),
        (["-h", "encrypt"], None),
        (["--help"], None),
        (["completion", "bash"], None),
        (["encrpyt", "f"], None),
        (["--vers"], None),  # an abbreviation argparse expands
        (["-qh"], None),
        (["--", "encrypt"], None),
    ],
)
def test_the_commands_a_command_line_needs(argv: list[str], needed: tuple[str, ...] | None) -> None:
    assert commands_needed(argv) == needed


def test_the_root_errors_and_suggestions_still_see_every_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.run(["encrpyt", "f"])
    assert exc.value.code == 2
    shown = capsys.readouterr().err
    assert "'merge-driver', 'completion')" in shown  # every command to choose from
    assert "(did you mean encrypt or reencrypt or decrypt?)" in shown
    with pytest.raises(SystemExit) as exc:  # a command built alone suggests its own flags
        cli.run(["encrypt", "--no-splt", "f"])
    assert exc.value.code == 2
    assert (
        "arguments: --no-splt (did you mean --no-split or --in-place?)" in capsys.readouterr().err
    )
    with pytest.raises(SystemExit) as exc:
        cli.run(["--help"])
    assert exc.value.code == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in [*COMMANDS, "completion"])
    with pytest.raises(SystemExit) as exc:
        cli.run(["-q", "--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("envelope ")


_PROGRAM = """
import atexit, sys, threading
atexit.register(lambda: print("exit handlers ran", file=sys.stderr))
if sys.argv[1] == "profiled":
    sys.setprofile(lambda *args: None)
if sys.argv[1] == "with-worker":
    done = threading.Event()
    def work():
        done.wait(0.5)
        print("worker finished", file=sys.stderr)
    threading.Thread(target=work).start()
from envelope.cli import main
sys.argv = ["envelope", *sys.argv[2:]]
try:
    main()
finally:  # the ordinary exit (SystemExit) passes here; os._exit does not
    print("ordinary exit", file=sys.stderr)
"""


@pytest.mark.parametrize("worker", ["alone", "with-worker", "profiled"])
def test_the_program_runs_exit_handlers_and_flushes_its_output(
    tmp_path: Path, keyring_env: dict[str, str], worker: str
) -> None:
    plain = b"flushed on the way out\n" * 1000
    keyring_env = {k: v for k, v in keyring_env.items() if k != "PYTHONUNBUFFERED"}
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM, worker, "encrypt", "--no-split", "-", "-o", "-"],
        input=plain,
        capture_output=True,
        env=keyring_env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert b"exit handlers ran" in done.stderr
    if worker == "with-worker":  # a thread still running is waited for, as ever
        assert b"worker finished" in done.stderr
    # Alone, the interpreter's teardown is skipped; with a thread to wait for or a
    # profiler to report (python -m cProfile), the ordinary exit is taken.
    assert (b"ordinary exit" in done.stderr) == (worker != "alone")
    (tmp_path / "msg").write_bytes(done.stdout)
    back = subprocess.run(
        [sys.executable, "-m", "envelope", "decrypt", "msg", "-o", "-"],
        capture_output=True,
        env=keyring_env,
        cwd=tmp_path,
        check=True,
    )
    assert back.stdout == plain  # every byte of stdout reached the pipe
    shown = subprocess.run(  # print()ed text, still in stdout's buffer at exit
        [sys.executable, "-c", _PROGRAM, worker, "inspect", "msg"],
        capture_output=True,
        env=keyring_env,
        cwd=tmp_path,
        check=True,
    )
    assert shown.stdout.startswith(b"envelope message v1") and b"plaintext:" in shown.stdout


def test_a_closed_pipe_at_exit_is_an_io_error_not_a_traceback(
    tmp_path: Path, keyring_env: dict[str, str]
) -> None:
    (tmp_path / "big").write_bytes(bytes(8 << 20))
    done = subprocess.run(
        f"{sys.executable} -m envelope encrypt --no-split big -o - | head -c 1 >/dev/null;"
        " echo ${PIPESTATUS[0]}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        env=keyring_env,
        cwd=tmp_path,
        check=True,
    )
    assert done.stdout.split() == [b"5"]  # ExitCode.IO
    assert b"Traceback" not in done.stderr
