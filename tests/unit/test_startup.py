"""Start-up and exit: most of a short command's time (and a fixed cost of a long one,
docs/benchmarks.md). Each command loads only what it uses, and the program leaves
without the interpreter's teardown, yet with its exit handlers run and output flushed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

#: Modules a whole-file encrypt or decrypt with the local keyring has no use for.
UNUSED_BY_WHOLE_FILE = (
    "envelope._batch",
    "envelope._keys.breakglass",
    "envelope.documents",
    "envelope.kms._aws",
    "envelope.kms._vault",
    "envelope.keystore._s3",
    "pydantic",
    "pydantic_core",
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
