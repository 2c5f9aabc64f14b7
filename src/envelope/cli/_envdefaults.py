"""``ENVELOPE_*`` environment variables as defaults of every flag: flag > variable > default.

Each flag ``--some-flag`` has the variable ``ENVELOPE_SOME_FLAG``, applied generically over
the parser (:func:`install` before parsing, :func:`resolve` after), so a flag added to any
command has its variable, its ``[env: ...]`` line in ``--help`` and its row in docs/cli.md.

The flags of the settings model (``--kms``, ``--kms-key``, ``--cluster-secret``, ...) are
read by :mod:`envelope.settings` from its own table (``ENV_TABLE``, the one place that
reads those variables); here they are only listed. Two keep their older names:
``--cluster-secret`` is ``ENVELOPE_CLUSTER_SECRET_FILE`` (``ENVELOPE_CLUSTER_SECRET`` holds
the part itself) and ``--passphrase-file`` is ``ENVELOPE_KEYRING_PASSPHRASE_FILE``.
``--force`` and ``--version`` have none (:data:`NO_VARIABLE` says why).

Values: a switch takes ``1/true/yes/on`` or ``0/false/no/off``; a repeatable flag
(``-c``, ``--previous-cluster-secret``, ``--file``) takes a comma-separated list.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import Any

from envelope.cli._tree import commands, flag_actions, long_flag
from envelope.settings import ENV_TABLE

__all__ = [
    "NO_VARIABLE",
    "StdStream",
    "env_flag",
    "env_names",
    "given_flags",
    "install",
    "reads_here",
    "resolve",
]

#: Flags deliberately without a variable, and why.
NO_VARIABLE: Mapping[str, str] = {
    "--force": "one left set would silently replace files and keys",
    "--version": "a key version, while images commonly set `ENVELOPE_VERSION` to the tool's own",
}
#: Older names still read after the generic one.
_ALIASES: Mapping[str, tuple[str, ...]] = {"--listen": ("ENVELOPE_KMS_PLUGIN_LISTEN",)}
_SETTINGS: Mapping[str, tuple[str, ...]] = {flag: names for _path, names, flag in ENV_TABLE}
_LISTS = (
    argparse._AppendAction,
    argparse._AppendConstAction,
    argparse._CountAction,
    argparse._ExtendAction,
)
_SWITCHES = (argparse._StoreConstAction, argparse._StoreTrueAction, argparse._StoreFalseAction)
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


class StdStream(str):
    """``-`` as a default (stdin or stdout implied, not typed): ``-o -`` given is a plain str."""

    __slots__ = ()


class _NotGiven:
    def __repr__(self) -> str:
        return "<not given>"


_NOT_GIVEN = _NotGiven()


def generic_name(flag: str) -> str:
    """``ENVELOPE_KMS_REGION`` for ``--kms-region``."""
    return "ENVELOPE_" + flag.lstrip("-").replace("-", "_").upper()


def env_flag(action: argparse.Action) -> str:
    """The flag a variable is named after: the one spelling the destination (``--rules``
    of ``--config/--rules``, whose value is ``rules``), else the longest."""
    for option in action.option_strings:
        if option.lstrip("-").replace("-", "_") == action.dest:
            return option
    return long_flag(action)


def env_names(action: argparse.Action) -> tuple[str, ...]:
    """The variables that give ``action``'s value, the first set winning (``()``: none)."""
    if not action.option_strings or isinstance(
        action, (argparse._HelpAction, argparse._VersionAction)
    ):
        return ()
    flag = env_flag(action)
    if flag in NO_VARIABLE:
        return ()
    if flag in _SETTINGS:
        return _SETTINGS[flag]
    return (generic_name(flag), *_ALIASES.get(flag, ()))


def reads_here(action: argparse.Action) -> bool:
    """This module (not the settings model) reads the action's variables."""
    return bool(env_names(action)) and env_flag(action) not in _SETTINGS


def _with_env_help(action: argparse.Action) -> None:
    names = env_names(action)
    if not names or action.help == argparse.SUPPRESS:
        return
    text = "[env: " + ", ".join(f"${n}" for n in names) + "]"
    if text not in (action.help or ""):
        action.help = f"{action.help} {text}" if action.help else text


def install(root: argparse.ArgumentParser) -> None:
    """Prepares every parser of the tree: defaults marked, ``[env: ...]`` in the help."""
    for command in commands(root):
        for action in command.parser._actions:
            if action.default == "-" and not isinstance(action.default, StdStream):
                action.default = StdStream("-")
        for action in flag_actions(command.parser):
            _with_env_help(action)
            if action.default == argparse.SUPPRESS:
                continue
            if not reads_here(action) or hasattr(action, "envelope_default"):
                continue
            action.envelope_default = action.default  # type: ignore[attr-defined]
            action.envelope_required = action.required  # type: ignore[attr-defined]
            action.required = False
            action.default = None if isinstance(action, _LISTS) else _NOT_GIVEN
        if command.is_leaf:
            command.parser.set_defaults(_envelope_chain=command.chain)
    root.envelope_root = True  # type: ignore[attr-defined]  # its parse_args calls resolve


def _convert(parser: argparse.ArgumentParser, action: argparse.Action, name: str, raw: str) -> Any:
    def value(text: str) -> Any:
        try:
            got = parser._get_value(action, text)
        except argparse.ArgumentError as exc:
            parser.error(f"${name}={raw!r} (for {long_flag(action)}): {exc.message}")
        if action.choices is not None and got not in action.choices:
            choices = ", ".join(map(repr, action.choices))
            parser.error(f"${name}={raw!r}: invalid choice (choose from {choices})")
        return got

    if isinstance(action, _SWITCHES):
        word = raw.strip().lower()
        if word not in _TRUE | _FALSE:
            parser.error(f"${name}={raw!r}: use 1/true/yes/on or 0/false/no/off")
        return action.const if word in _TRUE else action.envelope_default  # type: ignore[attr-defined]
    if isinstance(action, argparse._CountAction):
        if not raw.strip().isdigit():
            parser.error(f"${name}={raw!r}: a count (0, 1, 2...)")
        return int(raw)
    if isinstance(action, _LISTS) or action.nargs in ("+", "*"):
        return [value(item.strip()) for item in raw.split(",") if item.strip()]
    return value(raw)


def resolve(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> argparse.Namespace:
    """Fills every flag not given from its variable, else its default (after parsing;
    ``envelope``'s root parser calls it, so ``build_parser().parse_args()`` is complete).

    Raises:
        SystemExit: a variable's value is invalid, or a required flag is neither given nor
            set by its variable (a usage error, status 2).
    """
    if hasattr(args, "_envelope_given"):
        return args  # resolved already (the root parser resolves as it parses)
    env = os.environ if environ is None else environ
    given: set[str] = set()
    for parser in getattr(args, "_envelope_chain", ()):
        for action in parser._actions:
            if not hasattr(action, "envelope_default"):
                continue
            current = getattr(args, action.dest, _NOT_GIVEN)
            if not (current is _NOT_GIVEN or (isinstance(action, _LISTS) and current is None)):
                given.add(action.dest)
                continue
            names = env_names(action)
            name = next((n for n in names if env.get(n) is not None), None)
            if name is not None:
                setattr(args, action.dest, _convert(parser, action, name, env[name]))
                continue
            if action.envelope_required:
                parser.error(
                    f"the following arguments are required: {long_flag(action)} "
                    f"(or set ${names[0]})"
                )
            default = action.envelope_default
            if isinstance(default, str) and not isinstance(default, StdStream):
                default = parser._get_value(action, default)
            setattr(args, action.dest, default)
    args._envelope_given = frozenset(given)
    return args


def given_flags(args: argparse.Namespace) -> frozenset[str]:
    """The dests of the flags typed on the command line (not from a variable or default)."""
    return frozenset(getattr(args, "_envelope_given", frozenset()))
