"""Walking the ``envelope`` parser: every command, its flags and its subcommands.

Completion, the environment defaults, the reference page and the tests all read the
parser through these functions, so a flag or command added anywhere is covered by all.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Command", "commands", "flag_actions", "long_flag", "subcommands"]


@dataclass(frozen=True)
class Command:
    """One parser of the tree: its words after ``envelope`` and the parsers above it."""

    path: tuple[str, ...]
    parser: argparse.ArgumentParser
    chain: tuple[argparse.ArgumentParser, ...]  # root first, this parser last
    help: str

    @property
    def name(self) -> str:
        """``envelope keyring list``."""
        return " ".join(("envelope", *self.path))

    @property
    def is_leaf(self) -> bool:
        """It runs something (no subcommands below it)."""
        return not subcommands(self.parser)


def subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[argparse.ArgumentParser, str]]:
    """The subcommands of ``parser``: name -> (parser, one-line help)."""
    out: dict[str, tuple[argparse.ArgumentParser, str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                out[name] = (sub, str(helps.get(name, "")))
    return out


def commands(root: argparse.ArgumentParser) -> Iterator[Command]:
    """Every parser of the tree, depth first, the root first."""

    def walk(
        path: tuple[str, ...],
        parser: argparse.ArgumentParser,
        chain: tuple[argparse.ArgumentParser, ...],
        help_: str,
    ) -> Iterator[Command]:
        chain = (*chain, parser)
        yield Command(path, parser, chain, help_)
        for name, (sub, sub_help) in subcommands(parser).items():
            yield from walk((*path, name), sub, chain, sub_help)

    yield from walk((), root, (), root.description or "")


def flag_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The optional (``--flag``) actions of ``parser``, without ``-h``."""
    return [
        a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)
    ]


def long_flag(action: argparse.Action) -> str:
    """The action's longest option string (``--quiet`` for ``-q/--quiet``)."""
    return max(action.option_strings, key=len)
