"""Break-glass flags (docs/break-glass.md): ``envelope keyring unwrap`` (the local
keyring's own recovery tool) and the recovered key of ``envelope decrypt --data-key``."""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import re
import sys
from typing import TYPE_CHECKING

from envelope._atomic import write_atomic
from envelope._exitcodes import ExitCode
from envelope._format.context import canonical_context
from envelope._keys.slots import wipe
from envelope.cli._common import (
    Fail,
    Subparsers,
    add_command,
    add_kms_flags,
    cluster_secret,
    local_kms,
)
from envelope.kms._local import LocalKms
from envelope.kms._types import WrappedKey

if TYPE_CHECKING:
    from envelope._keys.recovered import RecoveredKey

__all__ = ["add_data_key_flag", "recovered_key", "register_keyring_unwrap"]

_SHARE = re.compile(r"([0-9]{1,3})=(.+)", re.DOTALL)


def register_keyring_unwrap(actions: Subparsers[argparse.ArgumentParser]) -> None:
    """Adds ``keyring unwrap``."""
    p = add_command(
        actions,
        "unwrap",
        "unwrap a data key with the local keyring, to a 0600 file or a pipe "
        "(break-glass: the command `envelope inspect` prints for a local slot)",
        "envelope keyring unwrap --key-id kr-... --wrapped BASE64 "
        '--context-json \'{"service":"billing"}\' -o slot-1.key',
        cmd_keyring_unwrap,
    )
    add_kms_flags(p)
    p.add_argument("--key-id", required=True, help="the keyring id the slot names (kr-...)")
    p.add_argument("--wrapped", required=True, metavar="BASE64", help="the slot's wrapped key")
    p.add_argument(
        "--context-json",
        default="{}",
        metavar="JSON",
        help="the message's encryption context as a JSON object (default: none)",
    )
    p.add_argument(
        "-o",
        "--output",
        default="-",
        help="file for the base64 data key, written atomically with mode 0600 "
        "(default: stdout, refused when it is a terminal)",
    )


def _context(text: str) -> dict[str, str]:
    try:
        value = json.loads(text)
    except ValueError:
        raise Fail(ExitCode.USAGE, "--context-json is not JSON") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise Fail(ExitCode.USAGE, "--context-json must be a JSON object of strings")
    return value


def cmd_keyring_unwrap(args: argparse.Namespace) -> int:
    if args.output == "-" and sys.stdout.isatty():
        raise Fail(
            ExitCode.USAGE,
            "refusing to print a data key to a terminal: pass -o FILE or redirect stdout",
        )
    ctx = canonical_context(_context(args.context_json))
    try:
        blob = base64.b64decode(args.wrapped, validate=True)
    except (binascii.Error, ValueError):
        raise Fail(ExitCode.USAGE, "--wrapped is not base64") from None
    kms = local_kms(args)
    key = kms.unwrap(WrappedKey(LocalKms.provider_id, args.key_id, blob), ctx)
    text = bytearray(base64.b64encode(key) + b"\n")
    wipe(key)
    try:
        if args.output == "-":
            sys.stdout.buffer.write(text)
            sys.stdout.buffer.flush()
        else:
            write_atomic(args.output, bytes(text), mode=0o600)
    finally:
        wipe(text)
    return ExitCode.OK


def add_data_key_flag(p: argparse.ArgumentParser) -> None:
    """``--data-key [SLOT=]FILE`` (repeatable) of ``decrypt``."""
    p.add_argument(
        "--data-key",
        action="append",
        default=[],
        metavar="[SLOT=]FILE",
        help="break-glass: decrypt with a data key recovered with the KMS's own CLI "
        "(raw 32 bytes or base64; see `envelope inspect`), no KMS used; for a k-of-n "
        "message give k shares as SLOT=FILE (repeatable)",
    )


def recovered_key(args: argparse.Namespace) -> RecoveredKey:
    """The recovered key of ``--data-key`` (with ``--cluster-secret`` if given).

    Raises:
        Fail: the flags mix a whole key and shares, or repeat a key or slot.
        ConfigError: a key file cannot be read or holds no key.
    """
    # Only --data-key needs the recovered-key module: a plain decrypt does not load it.
    from envelope._keys.recovered import RecoveredKey, load_data_key  # noqa: PLC0415

    given: list[str] = args.data_key
    shares = [m for m in (_SHARE.fullmatch(v) for v in given) if m]
    if shares and len(shares) != len(given):
        raise Fail(ExitCode.USAGE, "give --data-key FILE once, or every share as SLOT=FILE")
    if not shares and len(given) > 1:
        raise Fail(
            ExitCode.USAGE,
            "--data-key FILE is given once (a k-of-n message: give each share as SLOT=FILE)",
        )
    part = cluster_secret(args, required=False)
    accept_unsplit = bool(getattr(args, "accept_unsplit", False))
    if not shares:
        key = load_data_key(given[0])
        try:
            return RecoveredKey(key, cluster_secret=part, accept_unsplit=accept_unsplit)
        finally:
            wipe(key)
    loaded: dict[int, bytearray] = {}
    try:
        for m in shares:
            slot = int(m.group(1))
            if slot in loaded:
                raise Fail(ExitCode.USAGE, f"--data-key gives slot {slot} twice")
            loaded[slot] = load_data_key(m.group(2))
        return RecoveredKey(shares=loaded, cluster_secret=part, accept_unsplit=accept_unsplit)
    finally:
        for share in loaded.values():
            wipe(share)
