"""Did-you-mean for mistyped subcommands, flags and choices (difflib, no dependency).

:class:`Parser` is the ``envelope`` parser class (its subparsers inherit it): an unknown
flag is reported by the command that was given it, with the closest flags of that command.
"""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

__all__ = ["Parser", "did_you_mean"]

_CHOICE = re.compile(r"invalid choice: '(?P<given>[^']*)' \(choose from (?P<choices>.*)\)")


def did_you_mean(given: str, candidates: Iterable[str]) -> str:
    """`` (did you mean X?)`` for the closest candidates, or ``""``."""
    close = difflib.get_close_matches(given, list(candidates), n=3, cutoff=0.6)
    if not close:
        return ""
    return f" (did you mean {' or '.join(close)}?)"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors suggest the closest subcommand, flag or choice."""

    def _flags(self) -> list[str]:
        return [s for a in self._actions for s in a.option_strings if s.startswith("--")]

    def _is_leaf(self) -> bool:
        return not any(isinstance(a, argparse._SubParsersAction) for a in self._actions)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """As ArgumentParser's; a command (a leaf) reports its own unknown flags, and the
        root fills the flags not given from their variables (:mod:`._envdefaults`).

        Raises:
            SystemExit: a usage error (status 2), after printing it.
        """
        ns, extras = super().parse_known_args(args, namespace)
        if self._is_leaf() and extras:
            self.error(self._unrecognized(extras))
        if getattr(self, "envelope_root", False):  # the whole line parsed: fill from ENVELOPE_*
            from envelope.cli._envdefaults import resolve  # noqa: PLC0415 - it imports _tree

            resolve(ns)
        return ns, extras

    def _unrecognized(self, extras: Sequence[str]) -> str:
        flags = self._flags()
        hints = [
            did_you_mean(word.split("=", 1)[0], flags) for word in extras if word.startswith("-")
        ]
        return f"unrecognized arguments: {' '.join(extras)}" + "".join(h for h in hints if h)

    def error(self, message: str) -> NoReturn:
        """Prints the usage and ``message`` with a suggestion, then exits 2.

        Raises:
            SystemExit: always (status 2).
        """
        found = _CHOICE.search(message)
        if found:
            choices = re.findall(r"'([^']*)'", found["choices"])
            message += did_you_mean(found["given"], choices)
        elif message.startswith("unrecognized arguments: ") and "did you mean" not in message:
            message = self._unrecognized(message.removeprefix("unrecognized arguments: ").split())
        super().error(message)
