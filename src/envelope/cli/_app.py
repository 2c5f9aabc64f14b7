"""The ``envelope`` command: the parser, and errors mapped to exit codes (never a traceback)."""

from __future__ import annotations

import argparse
import atexit
import importlib
import os
import sys
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import NoReturn, cast

from envelope import _telemetry
from envelope._exitcodes import ExitCode, exit_code_for
from envelope._version import __version__
from envelope.cli import _envdefaults
from envelope.cli._common import EXIT_CODES, Fail, Subparsers, add_command, err
from envelope.cli._signals import run_terminable
from envelope.cli._suggest import Parser
from envelope.cli._tree import commands
from envelope.errors import EnvelopeError

__all__ = ["COMMANDS", "GLOBAL_FLAGS", "build_parser", "commands_needed", "main", "run"]

#: Flags every command accepts, before or after the subcommand (AWS CLI style).
GLOBAL_FLAGS: tuple[tuple[tuple[str, ...], dict[str, object]], ...] = (
    (("-q", "--quiet"), {"action": "store_true", "help": "no progress bar or notes"}),
)


#: Every top-level command, in the order of ``envelope --help``, and what builds it: each
#: ``module:function`` of envelope.cli, called in turn with the subparsers (``completion``,
#: which reads the whole tree, is added last by :func:`build_parser` itself). A module is
#: imported only when a command of it is built, so a command loads only its own.
COMMANDS: Mapping[str, tuple[str, ...]] = {
    "quickstart": ("_k8s:register_quickstart",),
    "keyring": ("_keyring:register",),
    "keystore": ("_keystore:register",),
    "cluster-secret": ("_cluster_secret:register",),
    "encrypt": ("_message:register_encrypt", "_documents:extend_encrypt"),
    "decrypt": ("_message:register_decrypt", "_documents:extend_decrypt"),
    "init": ("_k8s:register_init",),
    "exec": ("_k8s:register_exec", "_documents:extend_exec"),
    "inspect": ("_inspect:register",),
    "rewrap": ("_rotation:register_rewrap",),
    "reencrypt": ("_rotation:register_reencrypt",),
    "kms-plugin": ("_kms_plugin:register",),
    "edit": ("_documents:register_edit",),
    "set": ("_documents:register_set",),
    "unset": ("_documents:register_unset",),
    "updatekeys": ("_documents:register_updatekeys",),
    "merge-driver": ("_documents:register_merge_driver",),
}


def build_parser(only: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The ``envelope`` argument parser.

    Args:
        only: the top-level commands to build (each with its subcommands, exactly as in
            the whole tree), or None for every command and ``completion``.
            :func:`run` builds only the command its line names (start-up time).

    Raises:
        ValueError: ``only`` names a command that is not in :data:`COMMANDS`.
    """
    unknown = set(only or ()) - COMMANDS.keys()
    if unknown:
        raise ValueError(f"no such command: {', '.join(sorted(unknown))}")
    parser = Parser(
        prog="envelope",
        description="Envelope encryption with a KMS-wrapped data key split with a cluster secret.",
        epilog="examples:\n  envelope quickstart\n  envelope encrypt secret.txt -o secret.env "
        "--cluster-secret cluster.key -c service=billing\n\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"envelope {__version__}")
    for names, options in GLOBAL_FLAGS:
        parser.add_argument(*names, **options)  # type: ignore[arg-type]
    sub = cast(
        "Subparsers[argparse.ArgumentParser]",
        parser.add_subparsers(dest="command", required=True, metavar="COMMAND"),
    )
    for name, steps in COMMANDS.items():
        if only is None or name in only:
            for step in steps:
                _registration(step)(sub)
    if only is None:
        _register_completion(sub, parser)
    _add_global_flags(parser)
    _envdefaults.install(parser)
    return parser


def _registration(step: str) -> Callable[[Subparsers[argparse.ArgumentParser]], None]:
    """The function a :data:`COMMANDS` step (``module:function``) names, imported now."""
    module, function = step.split(":")
    return cast(
        "Callable[[Subparsers[argparse.ArgumentParser]], None]",
        getattr(importlib.import_module(f"envelope.cli.{module}"), function),
    )


def commands_needed(argv: Sequence[str]) -> tuple[str, ...] | None:
    """The top-level commands parsing ``argv`` needs: the one it names (after any global
    flags), none for ``--version``, else None: every command, so that help, completion,
    a usage error and a did-you-mean see the whole tree."""
    global_flags = {name for names, _options in GLOBAL_FLAGS for name in names}
    for word in argv:
        if word in global_flags:
            continue
        if word == "--version":  # argparse prints it and exits as soon as it is read
            return ()
        return (word,) if word in COMMANDS else None
    return None


def _register_completion(
    sub: Subparsers[argparse.ArgumentParser], root: argparse.ArgumentParser
) -> None:
    from envelope.cli import _completion  # noqa: PLC0415 - only the whole tree has completion

    def cmd_completion(args: argparse.Namespace) -> int:
        sys.stdout.write(_completion.script(root, args.shell))
        return ExitCode.OK

    p = add_command(
        sub,
        "completion",
        "print a shell completion script (bash, zsh or fish)",
        "source <(envelope completion bash)",
        cmd_completion,
    )
    p.add_argument("shell", choices=_completion.SHELLS)


def _add_global_flags(root: argparse.ArgumentParser) -> None:
    """The global flags on every subcommand too (given there, they win; absent, the value
    given before the subcommand stays: their default there is SUPPRESS)."""
    for command in commands(root):
        if command.parser is root:
            continue
        taken = {s for a in command.parser._actions for s in a.option_strings}
        for names, options in GLOBAL_FLAGS:
            if not taken & set(names):
                command.parser.add_argument(*names, **{**options, "default": argparse.SUPPRESS})  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the ``envelope`` command (SIGTERM/SIGHUP/SIGINT: 128 + signal).

    OpenTelemetry is reported to only when an ``OTEL_*`` variable is set (as
    ``opentelemetry-instrument`` and the SDK's configuration do): a command that would
    report to the API's no-op providers does not pay for importing it.
    """
    if not any(name.startswith("OTEL_") for name in os.environ):
        _telemetry.disable()
    code = run_terminable(lambda: run(argv))
    if argv is None:  # the program itself (not a caller passing its own argv)
        _leave(code)
    sys.exit(code)


def _leave(code: int) -> NoReturn:
    """Exits with ``code`` without the interpreter's teardown of every module (about a
    tenth of a short command's time, docs/benchmarks.md): the exit handlers run (log and
    telemetry flushes), then stdout and stderr are flushed, then the process ends.

    While a thread that is not a daemon still runs, or a profiler or tracer watches
    (``python -m cProfile -m envelope``, coverage), the ordinary exit is taken instead.
    """
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)
    if any(not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (head), or a stream closed already
            code = code or ExitCode.IO
    os._exit(code)


def _no_terminal_stdin(args: argparse.Namespace) -> None:
    """A command about to read stdin by default while stdin is a terminal: a hint, not a
    silent wait (``-`` typed on purpose reads the terminal).

    Raises:
        Fail: USAGE, naming the command.
    """
    leaf = args._envelope_chain[-1] if getattr(args, "_envelope_chain", ()) else None
    if leaf is None or not sys.stdin.isatty():
        return
    for action in leaf._actions:
        if not action.option_strings and isinstance(
            getattr(args, action.dest, None), _envdefaults.StdStream
        ):
            raise Fail(
                ExitCode.USAGE,
                f"{leaf.prog}: no input file given and stdin is a terminal: give a FILE, "
                "pipe the input in, or pass - to type it",
            )


def run(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI and returns its exit code (an unexpected exception: one line and
    :attr:`ExitCode.INTERNAL`; Ctrl-C: :attr:`ExitCode.INTERRUPTED`, quietly)."""
    words = sys.argv[1:] if argv is None else argv
    # Flags, then ENVELOPE_* variables, then defaults; only the command run is built.
    args = build_parser(commands_needed(words)).parse_args(words)
    try:
        _no_terminal_stdin(args)
        return int(args.func(args))
    except Fail as exc:
        err(str(exc))
        return exc.code
    except BrokenPipeError:
        return ExitCode.IO
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except Exception as exc:
        code = exit_code_for(exc)
        if code is None:
            err(_internal(exc))
            return ExitCode.INTERNAL
        if isinstance(exc, EnvelopeError):
            err(exc.cli_message)
        elif isinstance(exc, OSError):
            err(f"{exc.filename or 'I/O'}: {exc.strerror or exc}")
        else:
            err(str(exc))
        return code


def _internal(exc: BaseException) -> str:
    """One line for a bug: the exception's type and where it was raised, never its message
    (which may hold key material or plaintext)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = f" at {Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno}" if tb else ""
    return (
        f"internal error: {type(exc).__name__}{where} (a bug in envelope "
        f"{__version__}: please report this line)"
    )
