"""docs/cli.md and ``--help`` list every flag's ``ENVELOPE_*`` variable, from the parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from envelope import cli
from envelope.cli._envdefaults import NO_VARIABLE, env_flag, env_names, generic_name
from envelope.cli._reference import markdown
from envelope.cli._tree import commands, flag_actions, long_flag

ROOT = Path(__file__).resolve().parents[2]
#: Settings flags that keep an older variable name (docs/cli.md says why).
OLDER_NAMES = {
    "--cluster-secret": "ENVELOPE_CLUSTER_SECRET_FILE",
    "--passphrase-file": "ENVELOPE_KEYRING_PASSPHRASE_FILE",
    "--allow-key": "ENVELOPE_ALLOWED_KEYS",  # a list of patterns, as kms.allowed_keys
}


def test_the_page_matches_the_parser() -> None:
    page = (ROOT / "docs" / "cli.md").read_text()
    assert page == markdown(cli.build_parser()), (
        "docs/cli.md is out of date: python -m envelope.cli._reference > docs/cli.md"
    )


def test_the_page_is_in_the_site_nav() -> None:
    assert "cli.md" in (ROOT / "mkdocs.yml").read_text()


def _every_flag() -> list[tuple[str, str]]:
    return [
        (c.name, long_flag(a))
        for c in commands(cli.build_parser())
        for a in flag_actions(c.parser)
        if c.is_leaf
    ]


@pytest.mark.parametrize(("command", "flag"), _every_flag())
def test_every_flag_has_its_envelope_variable(command: str, flag: str) -> None:
    parser = next(c.parser for c in commands(cli.build_parser()) if c.name == command)
    action = next(a for a in flag_actions(parser) if long_flag(a) == flag)
    names = env_names(action)
    if flag in NO_VARIABLE:
        assert names == ()
        return
    assert names[0] == OLDER_NAMES.get(env_flag(action), generic_name(env_flag(action)))
    help_text = " ".join(parser.format_help().split())
    assert f"${names[0]}" in help_text


def test_one_variable_means_one_thing() -> None:
    """A variable shared by several commands sets the same destination in each (so
    ``ENVELOPE_CONFIG``, init's config file, is not also the documents' rules file)."""
    seen: dict[str, set[str]] = {}
    for command in commands(cli.build_parser()):
        for action in flag_actions(command.parser):
            for name in env_names(action):
                seen.setdefault(name, set()).add(action.dest)
    assert all(len(dests) == 1 for dests in seen.values()), {
        n: d for n, d in seen.items() if len(d) > 1
    }
    assert "rules" in seen["ENVELOPE_RULES"] and seen["ENVELOPE_CONFIG"] == {"config"}


def test_help_of_the_root_lists_the_global_variable() -> None:
    assert "$ENVELOPE_QUIET" in cli.build_parser().format_help()
