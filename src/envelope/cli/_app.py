"""The ``envelope`` command: the parser, and errors mapped to exit codes (never a traceback)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from envelope._exitcodes import ExitCode
from envelope._version import __version__
from envelope.cli import (
    _cluster_secret,
    _documents,
    _inspect,
    _k8s,
    _keyring,
    _keystore,
    _kms_plugin,
    _message,
    _rotation,
)
from envelope.cli._common import EXIT_CODES, Fail, err
from envelope.cli._signals import run_terminable
from envelope.errors import ConfigError, DecryptionError, KeyUnavailableError, KmsError

__all__ = ["build_parser", "main", "run"]


def build_parser() -> argparse.ArgumentParser:
    """The ``envelope`` argument parser, every command registered."""
    parser = argparse.ArgumentParser(
        prog="envelope",
        description="Envelope encryption with a KMS-wrapped data key split with a cluster secret.",
        epilog="examples:\n  envelope quickstart\n  envelope encrypt secret.txt -o secret.env "
        "--cluster-secret cluster.key -c service=billing\n\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"envelope {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or notes")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _k8s.register_quickstart(sub)
    for module in (_keyring, _keystore, _cluster_secret, _message, _k8s):
        module.register(sub)
    _inspect.register(sub)
    _rotation.register(sub)
    _kms_plugin.register(sub)
    _documents.register(sub)  # extends encrypt, decrypt and exec: after them
    return parser


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the ``envelope`` command (SIGTERM/SIGHUP/SIGINT: 128 + signal)."""
    sys.exit(run_terminable(lambda: run(argv)))


def run(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI and returns its exit code (an unexpected exception: one line and
    :attr:`ExitCode.INTERNAL`; Ctrl-C: :attr:`ExitCode.INTERRUPTED`, quietly)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except Fail as exc:
        err(str(exc))
        return exc.code
    except BrokenPipeError:
        return ExitCode.IO
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except Exception as exc:
        code = _code_of(exc)
        if code is None:
            err(_internal(exc))
            return ExitCode.INTERNAL
        err(
            f"{exc.filename or 'I/O'}: {exc.strerror or exc}"
            if isinstance(exc, OSError)
            else str(exc)
        )
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


def _code_of(exc: Exception) -> ExitCode | None:
    """The exit code for an error a command raised (None: a bug, shown as such)."""
    for kinds, code in (
        ((KeyUnavailableError, ConfigError), ExitCode.CONFIG),
        ((DecryptionError,), ExitCode.DECRYPT),
        ((KmsError,), ExitCode.KMS),
        ((ValueError, TypeError), ExitCode.USAGE),
        ((OSError,), ExitCode.IO),
    ):
        if isinstance(exc, kinds):
            return code
    return None
