"""The benchmark runner (``python -m benchmarks``): which modules are suites, and that
naming a module without ``run`` fails; the helpers that put process state back."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from benchmarks import __main__ as runner
from benchmarks.servers import environment, logger_to_file


@pytest.fixture
def bench_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "bench_ready.py").write_text("def run(quick):\n    return None\n")
    (tmp_path / "bench_old.py").write_text("def main():\n    pass\n\nrunner = main\n")
    (tmp_path / "helper.py").write_text("def run(quick):\n    return None\n")
    monkeypatch.setattr(runner, "HERE", tmp_path)
    return tmp_path


def test_list_names_only_modules_that_define_run(
    bench_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert runner.modules() == ["old", "ready"]
    assert runner.main(["list"]) == 0
    assert capsys.readouterr().out.split() == ["ready"]


def test_naming_a_module_without_run_fails_and_names_the_file(
    bench_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        runner.main(["run", "--quick", "old"])
    assert exit_info.value.code != 0
    assert "benchmarks/bench_old.py" in capsys.readouterr().err


def test_naming_an_unknown_suite_fails(bench_dir: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        runner.main(["run", "--quick", "nope"])
    assert exit_info.value.code != 0


def test_every_benchmark_module_of_the_project_is_a_suite() -> None:
    assert runner.modules(), "no benchmarks/bench_*.py found"
    assert runner.suites() == runner.modules()


def test_environment_puts_back_set_and_unset_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_TEST_SET", "before")
    monkeypatch.delenv("BENCH_TEST_UNSET", raising=False)
    with pytest.raises(RuntimeError), environment(BENCH_TEST_SET="x", BENCH_TEST_UNSET="y"):
        assert os.environ["BENCH_TEST_SET"] == "x"
        assert os.environ["BENCH_TEST_UNSET"] == "y"
        raise RuntimeError("a suite failed half-way")
    assert os.environ["BENCH_TEST_SET"] == "before"
    assert "BENCH_TEST_UNSET" not in os.environ


def test_logger_to_file_restores_the_logger_and_closes_its_handler(tmp_path: Path) -> None:
    logger = logging.getLogger("benchmarks.test.logger")
    kept = logging.NullHandler()
    logger.addHandler(kept)
    logger.setLevel(logging.WARNING)
    handler = logging.FileHandler(tmp_path / "log")
    with logger_to_file(logger.name, handler, logging.INFO):
        assert logger.handlers == [handler]
        assert not logger.propagate
        logger.info("line")
    assert logger.handlers == [kept]
    assert logger.propagate
    assert logger.level == logging.WARNING
    assert handler.stream is None  # closed
    assert "line" in (tmp_path / "log").read_text()
    logger.removeHandler(kept)
