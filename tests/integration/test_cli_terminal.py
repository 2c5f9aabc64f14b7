"""The CLI against a real pseudo-terminal (os.openpty), and the exit codes of issue 17's
findings, as a subprocess: binary never goes to a terminal by accident, a reader of stdin
never waits silently on one, and the same failure gives the same code on every path."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from envelope._exitcodes import ExitCode

GUARD = 60  # seconds: a hang fails the test instead of blocking the run (not a timing check)


def envelope(
    *argv: str, cwd: Path, stdin: int | None = None, stdout: int | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENVELOPE_")}
    env["ENVELOPE_KEYRING"] = str(cwd / "keyring.json")
    return subprocess.run(
        [sys.executable, "-m", "envelope", *argv],
        cwd=cwd,
        env=env,
        stdin=stdin if stdin is not None else subprocess.DEVNULL,
        stdout=stdout if stdout is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=GUARD,
        check=False,
    )


@pytest.fixture
def work(tmp_path: Path) -> Path:
    assert envelope("keyring", "init", cwd=tmp_path).returncode == 0
    assert envelope("cluster-secret", "new", "--out", "part", cwd=tmp_path).returncode == 0
    (tmp_path / "plain.txt").write_text("hello terminal\n")
    sealed = envelope(
        "encrypt", "plain.txt", "-o", "msg.env", "--cluster-secret", "part", cwd=tmp_path
    )
    assert sealed.returncode == 0, sealed.stderr
    return tmp_path


@pytest.fixture
def pty() -> Iterator[tuple[int, int]]:
    master, slave = os.openpty()
    try:
        yield master, slave
    finally:
        os.close(slave)
        os.close(master)


def _drain(master: int) -> bytes:
    os.set_blocking(master, False)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except (BlockingIOError, OSError):
            return out
        if not chunk:
            return out
        out += chunk


def test_encrypt_refuses_binary_to_a_terminal(work: Path, pty: tuple[int, int]) -> None:
    master, slave = pty
    done = envelope("encrypt", "plain.txt", "--cluster-secret", "part", cwd=work, stdout=slave)
    assert done.returncode == ExitCode.USAGE
    assert b"refusing to write an encrypted message (binary) to the terminal" in done.stderr
    assert b"-o -" in done.stderr
    assert _drain(master) == b""


def test_encrypt_writes_to_a_terminal_with_an_explicit_dash(
    work: Path, pty: tuple[int, int]
) -> None:
    master, slave = pty
    done = envelope(
        "encrypt", "plain.txt", "-o", "-", "--cluster-secret", "part", cwd=work, stdout=slave
    )
    assert done.returncode == ExitCode.OK, done.stderr
    assert _drain(master).startswith(b"\x89ENV")


def test_decrypt_prints_plaintext_to_a_terminal(work: Path, pty: tuple[int, int]) -> None:
    master, slave = pty
    done = envelope("decrypt", "msg.env", "--cluster-secret", "part", cwd=work, stdout=slave)
    assert done.returncode == ExitCode.OK, done.stderr
    assert b"hello terminal" in _drain(master)


@pytest.mark.parametrize("command", ["inspect", "encrypt", "decrypt"])
def test_stdin_on_a_terminal_gives_a_hint(work: Path, pty: tuple[int, int], command: str) -> None:
    _master, slave = pty
    done = (
        envelope(command, "-o", "out", cwd=work, stdin=slave)
        if command != "inspect"
        else (envelope(command, cwd=work, stdin=slave))
    )
    assert done.returncode == ExitCode.USAGE
    assert b"no input file given and stdin is a terminal" in done.stderr


def test_a_typed_dash_still_reads_the_terminal(work: Path, pty: tuple[int, int]) -> None:
    master, slave = pty
    # a line, then end-of-file (Ctrl-D; a reader may look for it more than once)
    os.write(master, b"typed secret\n" + b"\x04" * 8)
    done = envelope(
        "encrypt", "-", "-o", "typed.env", "--cluster-secret", "part", cwd=work, stdin=slave
    )
    assert done.returncode == ExitCode.OK, done.stderr
    plain = envelope("decrypt", "typed.env", "--cluster-secret", "part", cwd=work)
    assert plain.stdout == b"typed secret\n"


def test_piped_stdin_is_read_as_before(work: Path) -> None:
    with open(work / "msg.env", "rb") as f:
        done = envelope("inspect", cwd=work, stdin=f.fileno())
    assert done.returncode == ExitCode.OK, done.stderr
    assert b"envelope message" in done.stdout


@pytest.mark.parametrize("output", [[], ["-o", "out.env"]])
def test_a_missing_input_is_io_on_both_paths(work: Path, output: list[str]) -> None:
    done = envelope("encrypt", "nope.txt", *output, "--cluster-secret", "part", cwd=work)
    assert done.returncode == ExitCode.IO, done.stderr


def test_a_missing_output_directory_is_io(work: Path) -> None:
    done = envelope("encrypt", "plain.txt", "-o", "nodir/x", "--cluster-secret", "part", cwd=work)
    assert done.returncode == ExitCode.IO
    assert b"cannot write nodir/x" in done.stderr


def test_bad_mode_names_the_flag_not_a_lambda(work: Path) -> None:
    done = envelope("encrypt", "plain.txt", "-o", "x", "--mode", "999", cwd=work)
    assert done.returncode == ExitCode.USAGE
    assert b"<lambda>" not in done.stderr
    assert b"--mode: '999' is not an octal file mode" in done.stderr


def test_errors_speak_flags_not_parameters(work: Path) -> None:
    again = envelope("keyring", "init", cwd=work)
    assert again.returncode == ExitCode.CONFIG
    assert b"--force" in again.stderr and b"overwrite=" not in again.stderr
    unsplit = envelope("encrypt", "plain.txt", "-o", "u.env", "--no-split", cwd=work)
    assert unsplit.returncode == 0
    refused = envelope("decrypt", "u.env", "--cluster-secret", "part", cwd=work)
    assert refused.returncode == ExitCode.DECRYPT
    assert b"--accept-unsplit" in refused.stderr and b"accept_unsplit=" not in refused.stderr
    needs = envelope("decrypt", "msg.env", cwd=work)
    assert needs.returncode == ExitCode.CONFIG, needs.stderr
    assert b"--cluster-secret FILE" in needs.stderr and b"cluster_secret=" not in needs.stderr


def test_quiet_after_the_subcommand(work: Path) -> None:
    done = envelope(
        "encrypt", "plain.txt", "-q", "-o", "q.env", "--cluster-secret", "part", cwd=work
    )
    assert done.returncode == ExitCode.OK, done.stderr


def test_did_you_mean(work: Path) -> None:
    done = envelope("keyring", "lst", cwd=work)
    assert done.returncode == ExitCode.USAGE
    assert b"did you mean list?" in done.stderr
    flag = envelope("encrypt", "plain.txt", "--clustr-secret", "part", cwd=work)
    assert flag.returncode == ExitCode.USAGE
    assert b"did you mean --cluster-secret" in flag.stderr
