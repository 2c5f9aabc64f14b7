"""``envelope encrypt``, ``decrypt`` and ``inspect``: one message at a time."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import BinaryIO, cast

from envelope._atomic import atomic_output
from envelope._exitcodes import ExitCode
from envelope._format.inspect import message_info
from envelope._format.message import encode_header, read_header
from envelope.cli._common import (
    Fail,
    Subparsers,
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

__all__ = ["register", "register_inspect"]


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    """Adds ``encrypt`` and ``decrypt``."""
    for name, func in (("encrypt", cmd_encrypt), ("decrypt", cmd_decrypt)):
        files = "secret.txt -o secret.env" if name == "encrypt" else "secret.env -o secret.txt"
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
        if name == "decrypt":
            p.add_argument(
                "--any-context",
                action="store_true",
                help="accept whatever context the message has (instead of -c)",
            )
        add_kms_flags(p)
        add_cluster_flags(p, for_encrypt=name == "encrypt")
        if name == "encrypt":
            p.add_argument(
                "--key-ref",
                metavar="NAME[@VERSION]",
                help="encrypt under a data key from --keystore instead of a fresh one",
            )


def register_inspect(sub: Subparsers[argparse.ArgumentParser]) -> None:
    """Adds ``inspect``."""
    p = add_command(
        sub,
        "inspect",
        "show a message's header: context, key ids, sizes (no keys needed)",
        "envelope inspect secret.env --json",
        cmd_inspect,
    )
    p.add_argument("input", nargs="?", default="-")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--verify",
        action="store_true",
        help="unwrap every key slot this host can use and check it opens the message "
        "(uses the KMS; catches damaged spare/DR slots)",
    )
    add_kms_flags(p)
    add_cluster_flags(p, for_encrypt=False)


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
    env = make_envelope(args, cluster_secret(args, required=False))
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


def cmd_inspect(args: argparse.Namespace) -> int:
    src = open_in(args.input)
    try:
        header = read_header(src)
        header_bytes = src.tell() if src.seekable() else None
        rest = (
            len(src.read())
            if header_bytes is None
            else os.fstat(src.fileno()).st_size - header_bytes
        )
    finally:
        if src is not sys.stdin.buffer:
            src.close()
    info = message_info(header, len(encode_header(header)), rest)
    if args.verify:
        if args.input == "-":
            raise Fail(ExitCode.USAGE, "--verify needs the message as a file, not stdin")
        with open(args.input, "rb") as f:
            checks = make_envelope(args, cluster_secret(args, required=False)).verify_key_slots(
                f.read()
            )
        bad = [c for c in checks if c[2] is not None]
        for provider, key_id, problem in checks:
            print(
                f"{'FAILED' if problem else 'ok':6}  {provider} {key_id}"
                + (f": {problem}" if problem else "")
            )
        if bad:
            raise Fail(
                ExitCode.DECRYPT, f"{len(bad)} of {len(checks)} key slots failed verification"
            )
        return ExitCode.OK
    if args.json:
        print(json.dumps(info.to_json(), indent=2))
        return ExitCode.OK
    print(f"envelope message v{info.version}, suite {info.suite}")
    context = json.dumps(info.context, ensure_ascii=False) if info.context else "(none)"
    print(f"  context:        {context}")
    print(f"  cluster secret: {info.cluster_secret_id or '(none: KMS key alone)'}")
    for w in info.wrapped_keys:
        print(f"  wrapped key:    {w.provider} {w.key_id} ({w.wrapped_bytes} bytes)")
    size = "invalid length" if info.plaintext_bytes is None else f"{info.plaintext_bytes} bytes"
    print(f"  plaintext:      {size} (header {info.header_bytes} B, body {info.body_bytes} B)")
    return ExitCode.OK
