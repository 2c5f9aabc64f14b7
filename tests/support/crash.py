"""Crash consistency: SIGKILL the real ``envelope`` CLI at random points and check that
nothing was lost, nothing partial or plaintext is visible, and a rerun completes.

Each *kill* builds a fresh world (keyring, cluster-secret parts, originals) in its own
directory, starts one CLI command as a subprocess, SIGKILLs it after a seeded random delay
inside the command's working time (after interpreter start-up, before it would finish),
then checks:

1. every original still decrypts to its original plaintext (keyring re-read from disk);
2. every file in the directory is one the scenario allows (no temporaries, no partial
   outputs), and the plaintext marker appears in no file but the allowed plaintext ones;
3. the same command, rerun, exits 0 and leaves the finished state, with no stale files.

``python -m tests.support.crash --kills 200 --seed 1`` runs a longer campaign (``.ci/run``
does, under ``timeout``); the default test suite runs a few kills per scenario.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.crash_worlds import SCENARIOS, World

__all__ = ["Campaign", "Outcome", "run_campaign", "run_kill"]


@dataclass
class Outcome:
    """What one kill found (``problems`` empty: nothing lost, nothing visible)."""

    scenario: str
    delay: float
    killed: bool  # False: the command finished before the kill was due
    problems: list[str] = field(default_factory=list)
    stale_hidden: int = 0  # unreferenced hidden entries a kill left (removed by the rerun)
    finished_after: float | None = None  # wall time of a run that finished before its kill


@dataclass
class Campaign:
    """The outcomes of a run, summed up."""

    outcomes: list[Outcome] = field(default_factory=list)
    startup: float = 0.0  # best-of-3 interpreter start-up: kills after it hit the command

    @property
    def kills(self) -> int:
        return sum(o.killed for o in self.outcomes)

    @property
    def problems(self) -> list[str]:
        return [f"{o.scenario} @ {o.delay:.3f}s: {p}" for o in self.outcomes for p in o.problems]

    def summary(self) -> str:
        by: dict[str, list[Outcome]] = {}
        for o in self.outcomes:
            by.setdefault(o.scenario, []).append(o)
        lines = [
            f"{name:16} kills {sum(o.killed for o in os_):4}  finished first "
            f"{sum(not o.killed for o in os_):3}  problems {sum(len(o.problems) for o in os_):3}"
            f"  stale hidden entries (cleaned by rerun) {sum(o.stale_hidden for o in os_)}"
            for name, os_ in by.items()
        ]
        lines.append(
            f"total: {len(self.outcomes)} runs, {self.kills} SIGKILLs delivered "
            f"({sum(o.killed and o.delay > self.startup for o in self.outcomes)} after the "
            f"{self.startup:.2f} s start-up), {len(self.problems)} problems (data lost or visible)"
        )
        return "\n".join(lines)


def _environ(root: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ENVELOPE_", "VAULT_", "AWS_", "BAO_"))
    }
    env.update(
        HOME=str(root),
        ENVELOPE_KEYRING=str(root / "keyring.json"),
        PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
    )
    return env


def _command(world: World) -> list[str]:
    return [sys.executable, "-m", "envelope", "-q", *world.argv]


def _start(world: World) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        _command(world),
        cwd=world.root,
        env=_environ(world.root),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def startup_seconds(root: Path, runs: int = 3) -> float:
    """Wall time of ``envelope --version`` (interpreter and import start-up), best of
    ``runs`` (the first run of a session pays for cold caches)."""
    best = float("inf")
    for _ in range(runs):
        began = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "envelope", "--version"],
            env=_environ(root),
            capture_output=True,
            check=True,
            timeout=120,
        )
        best = min(best, time.monotonic() - began)
    return best


def calibrate(make: Callable[[Path], World], root: Path) -> float:
    """Wall time of one uninterrupted run of a scenario's command (which must succeed).

    Raises:
        AssertionError: the command failed, or its finished state is wrong.
    """
    world = make(root)
    began = time.monotonic()
    done = subprocess.run(
        _command(world), cwd=root, env=_environ(root), capture_output=True, timeout=300, check=False
    )
    took = time.monotonic() - began
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    problems = world.check(finished=True)
    assert not problems, problems
    return took


def run_kill(make: Callable[[Path], World], root: Path, name: str, delay: float) -> Outcome:
    """One kill: set up, start, SIGKILL after ``delay`` s, check, rerun, check."""
    world = make(root)
    began = time.monotonic()
    proc = _start(world)
    try:
        proc.wait(delay)
        killed = False
        finished_after = time.monotonic() - began
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed = True
        finished_after = None
    outcome = Outcome(name, delay, killed, finished_after=finished_after)
    if not killed and proc.returncode != 0:
        assert proc.stderr is not None
        outcome.problems.append(f"exit {proc.returncode}: {proc.stderr.read().decode()[-500:]}")
    if proc.stderr is not None:
        proc.stderr.close()
    outcome.problems += world.check(finished=not killed)
    outcome.stale_hidden = world.stale_hidden()
    rerun = subprocess.run(
        _command(world), cwd=root, env=_environ(root), capture_output=True, timeout=300, check=False
    )
    if rerun.returncode != 0:
        outcome.problems.append(
            f"rerun exit {rerun.returncode}: {rerun.stderr.decode(errors='replace')[-500:]}"
        )
    outcome.problems += [f"after rerun: {p}" for p in world.check(finished=True)]
    if world.stale_hidden():
        outcome.problems.append("after rerun: stale hidden entries remain")
    return outcome


def run_campaign(
    work: Path,
    kills: int,
    *,
    seed: int = 0,
    scenarios: Sequence[str] | None = None,
    budget: float | None = None,
    log: Callable[[str], None] | None = None,
) -> Campaign:
    """``kills`` runs, round robin over ``scenarios`` (default: all), each killed at a
    seeded random point of its working time; stops early when ``budget`` seconds pass."""
    rng = random.Random(seed)
    names = list(scenarios or SCENARIOS)
    began = time.monotonic()
    (work / "startup").mkdir(parents=True, exist_ok=True)
    start = startup_seconds(work / "startup")
    took = {}
    for name in names:
        took[name] = calibrate(SCENARIOS[name], _fresh(work, f"calibrate-{name}"))
        if log:
            log(f"{name}: an uninterrupted run takes {took[name]:.2f} s (start-up {start:.2f} s)")
    campaign = Campaign(startup=start)
    for i in range(kills):
        if budget is not None and time.monotonic() - began > budget:
            break
        name = names[i % len(names)]
        # Most of a short command is interpreter start-up: aim inside the work after it.
        low = min(start * 0.9, took[name] * 0.5)
        delay = rng.uniform(low, max(low, took[name] * 0.8))
        outcome = run_kill(SCENARIOS[name], _fresh(work, f"{i:04d}-{name}"), name, delay)
        campaign.outcomes.append(outcome)
        if outcome.finished_after is not None:  # aim earlier next time
            took[name] = min(took[name], outcome.finished_after)
        if log and outcome.problems:
            log(f"kill {i} ({name} at {delay:.3f} s): {outcome.problems}")
    return campaign


def _fresh(work: Path, name: str) -> Path:
    root = work / name
    root.mkdir(parents=True)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tests.support.crash``: a kill campaign; exit 1 if anything was lost."""
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m tests.support.crash", description=__doc__)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    parser.add_argument("--budget", type=float, help="stop starting kills after SECONDS")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="envelope-crash-") as tmp:
        campaign = run_campaign(
            Path(tmp),
            args.kills,
            seed=args.seed,
            scenarios=args.scenario,
            budget=args.budget,
            log=lambda line: print(line, flush=True),
        )
    print(campaign.summary())
    for problem in campaign.problems:
        print(f"PROBLEM {problem}")
    return 1 if campaign.problems else 0


if __name__ == "__main__":
    sys.exit(main())
