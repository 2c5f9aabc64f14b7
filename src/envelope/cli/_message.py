"""``envelope encrypt`` and ``decrypt``: one message at a time (``inspect``: _inspect)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO, cast

from envelope._atomic import atomic_output
from envelope._envelope import Envelope
from envelope._exitcodes import ExitCode
from envelope.cli._breakglass import add_data_key_flag, recovered_key
from envelope.cli._common import (
    Fail,
    Subparsers,
    add_allow_key_flag,
    add_cluster_flags,
    add_command,
    add_context_flag,
    add_kms_flags,
    cluster_secret,
    file_mode,
    make_envelope,
    open_in,
    parse_context,
    refuse_binary_to_terminal,
    size,
)
from envelope.cli._progress import progress_bytes
from envelope.errors import DecryptionError

if TYPE_CHECKING:
    from envelope._keys.recovered import RecoveredKey

__all__ = ["register_decrypt", "register_encrypt"]


def register_encrypt(sub: Subparsers[argparse.ArgumentParser]) -> None:
    """Adds ``encrypt``."""
    p = _add(sub, "encrypt", "secret.txt -o secret.env", cmd_encrypt)
    add_kms_flags(p)
    add_cluster_flags(p, for_encrypt=True)
    p.add_argument(
        "--key-ref",
        metavar="NAME[@VERSION]",
        help="encrypt under a data key from --keystore instead of a fresh one",
    )


def register_decrypt(sub: Subparsers[argparse.ArgumentParser]) -> None:
    """Adds ``decrypt``."""
    p = _add(sub, "decrypt", "secret.env -o secret.txt", cmd_decrypt)
    p.add_argument(
        "--any-context",
        action="store_true",
        help="accept whatever context the message has (instead of -c)",
    )
    add_data_key_flag(p)
    add_kms_flags(p)
    add_allow_key_flag(p)
    add_cluster_flags(p, for_encrypt=False)


def _add(
    sub: Subparsers[argparse.ArgumentParser],
    name: str,
    files: str,
    func: Callable[[argparse.Namespace], int],
) -> argparse.ArgumentParser:
    """``name`` with the input, ``-o``, ``--mode`` and ``-c`` both commands share."""
    example = f"envelope {name} {files} --cluster-secret cluster.key -c service=billing"
    p = add_command(sub, name, f"{name} a file or stdin", example, func)
    p.add_argument("input", nargs="?", default="-", help="input file (default: stdin)")
    p.add_argument(
        "-o", "--output", default="-", help="output file, written atomically (default: stdout)"
    )
    p.add_argument(
        "--mode",
        type=file_mode,
        default=0o600,
        help="output file mode (default 0600)",
    )
    add_context_flag(p)
    return p


def cmd_encrypt(args: argparse.Namespace) -> int:
    refuse_binary_to_terminal(args, "an encrypted message")
    env = make_envelope(args, cluster_secret(args, required=not args.no_split))
    context = parse_context(args.context)
    key_ref = args.key_ref
    tick, done = progress_bytes(size(args.input), "encrypting", args.quiet)
    try:
        if args.output == "-":
            src = open_in(args.input)
            try:
                env.encrypt_stream(src, sys.stdout.buffer, context, progress=tick, key_ref=key_ref)
            finally:
                if src is not sys.stdin.buffer:
                    src.close()
            sys.stdout.buffer.flush()
        elif args.input == "-":
            with atomic_output(args.output, mode=args.mode) as out:
                env.encrypt_stream(sys.stdin.buffer, out, context, progress=tick, key_ref=key_ref)
        else:
            env.encrypt_file(
                args.input, args.output, context, mode=args.mode, progress=tick, key_ref=key_ref
            )
    finally:
        done()
    return ExitCode.OK


class _Counted:
    """A binary writer that counts what it passed on."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw, self.count = raw, 0

    def write(self, data: bytes | memoryview) -> int:
        n = self._raw.write(data)
        self.count += len(data)
        return n


def cmd_decrypt(args: argparse.Namespace) -> int:
    env: Envelope | RecoveredKey = (
        recovered_key(args)
        if args.data_key
        else make_envelope(args, cluster_secret(args, required=False))
    )
    context = parse_context(args.context)
    if args.any_context and context is not None:
        raise Fail(ExitCode.USAGE, "give either -c KEY=VALUE or --any-context, not both")
    any_context = args.any_context
    tick, done = progress_bytes(size(args.input), "decrypting", args.quiet)
    try:
        if args.output == "-":
            # Streamed in constant memory: only authenticated chunks reach stdout, and a
            # message that fits in one piece is written only once it verified.
            src = open_in(args.input)
            sink = _Counted(sys.stdout.buffer)
            try:
                env.decrypt_stream(
                    src, cast(BinaryIO, sink), context, progress=tick, any_context=any_context
                )
            except DecryptionError:
                if not sink.count:
                    raise
                raise Fail(
                    ExitCode.DECRYPT,
                    f"decryption failed after {sink.count} authenticated bytes went to stdout: "
                    "the message is truncated or tampered; discard that output",
                ) from None
            finally:
                if src is not sys.stdin.buffer:
                    src.close()
            sys.stdout.buffer.flush()
        elif args.input == "-":
            with atomic_output(args.output, mode=args.mode) as out:
                env.decrypt_stream(
                    sys.stdin.buffer, out, context, progress=tick, any_context=any_context
                )
        else:
            env.decrypt_file(
                args.input,
                args.output,
                context,
                mode=args.mode,
                progress=tick,
                any_context=any_context,
            )
    finally:
        done()
    return ExitCode.OK
