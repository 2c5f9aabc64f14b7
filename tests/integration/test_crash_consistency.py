"""Crash consistency (issue 12): SIGKILL the real CLI at seeded random points of every
file-writing command; nothing is lost, nothing partial or plaintext is visible, and a
rerun completes. A bounded campaign here; ``python -m tests.support.crash`` runs longer."""

from __future__ import annotations

from pathlib import Path

from tests.support.crash import run_campaign
from tests.support.crash_worlds import SCENARIOS, Decrypt, KeystoreRewrap, Rewrap


def test_kills_at_random_points_lose_nothing(tmp_path: Path) -> None:
    campaign = run_campaign(tmp_path, 2 * len(SCENARIOS), seed=12, budget=45)
    print(campaign.summary())
    assert campaign.kills >= len(SCENARIOS) // 2, campaign.summary()
    assert campaign.problems == []


def test_the_checks_see_a_stray_plaintext_temp_and_a_damaged_message(tmp_path: Path) -> None:
    world = Decrypt(tmp_path)
    assert world.check(finished=False) == []
    (tmp_path / ".out.txt.0123456789ab.tmp").write_bytes(world.marker + b"partial")
    assert world.check(finished=False) == ["unexpected file .out.txt.0123456789ab.tmp"]
    (tmp_path / ".out.txt.0123456789ab.tmp").unlink()
    (tmp_path / "out.txt").write_bytes(world.originals[world.sealed][:1000])
    assert world.check(finished=False) == ["out.txt is partial or wrong (1000 bytes)"]


def test_a_complete_replace_temporary_is_stale_not_a_problem(tmp_path: Path) -> None:
    """A kill between linking the finished file to its hidden name and renaming it over
    the target leaves that complete file (docs/threat-model.md); the rerun removes it."""
    world = Rewrap(tmp_path / "w")
    victim = world.sealed[3]
    temp = victim.parent / f".{victim.name}.0123456789ab.tmp"
    temp.write_bytes(victim.read_bytes())
    assert world.check(finished=False) == [] and world.stale_hidden() == 1
    temp.write_bytes(victim.read_bytes()[:-10])  # partial: a problem
    assert world.check(finished=False) == [f"unexpected file msgs/{temp.name}"]
    assert world.stale_hidden() == 0


def test_a_complete_key_store_replace_temporary_is_stale_not_a_problem(tmp_path: Path) -> None:
    """As above for `keystore rewrap`, whose replaced files are key-store versions (a kill
    there was once reported as an unexpected file)."""
    world = KeystoreRewrap(tmp_path / "w")
    versions = tmp_path / "w" / "keys" / "svc" / "dek"
    victim = versions / "v00000013"
    temp = versions / ".v00000013.0123456789ab.tmp"
    temp.write_bytes(victim.read_bytes())
    assert world.check(finished=False) == [] and world.stale_hidden() == 1
    temp.write_bytes(victim.read_bytes()[:-10])  # partial: a problem
    assert world.check(finished=False) == [f"unexpected file keys/svc/dek/{temp.name}"]
    temp.write_bytes((versions / "v00000012").read_bytes())  # another version's key
    assert world.check(finished=False) == [f"unexpected file keys/svc/dek/{temp.name}"]


def test_the_checks_see_a_lost_original(tmp_path: Path) -> None:
    world = Rewrap(tmp_path / "w")
    victim = world.sealed[3]
    victim.write_bytes(victim.read_bytes()[:-10])
    (problem,) = world.check(finished=False)
    assert problem.startswith("msgs/m003.env no longer decrypts")
