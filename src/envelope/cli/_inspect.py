"""``envelope inspect``: a message's header, and how to recover its data key by hand
with the KMS's own tool (break-glass, docs/break-glass.md). Never key material."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from envelope._exitcodes import ExitCode
from envelope._format.message import encode_header, read_header
from envelope.cli._common import (
    Fail,
    Subparsers,
    add_allow_key_flag,
    add_cluster_flags,
    add_command,
    add_kms_flags,
    cluster_secret,
    make_envelope,
    open_in,
)

if TYPE_CHECKING:
    from envelope._format.inspect import MessageInfo
    from envelope._keys.breakglass import MessageRecovery

__all__ = ["register"]


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    """Adds ``inspect``."""
    p = add_command(
        sub,
        "inspect",
        "show a message's header: context, key slots, sizes, and how to recover its data "
        "key with the KMS's own CLI (no keys needed)",
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
    add_allow_key_flag(p)
    add_cluster_flags(p, for_encrypt=False)


def _verify(args: argparse.Namespace) -> int:
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
            + (f": {getattr(problem, 'cli_message', problem)}" if problem else "")
        )
    if bad:
        raise Fail(ExitCode.DECRYPT, f"{len(bad)} of {len(checks)} key slots failed verification")
    return ExitCode.OK


def as_json(info: MessageInfo, recovery: MessageRecovery) -> dict[str, Any]:
    """The ``--json`` document: the header facts, each slot with its recovery, and
    ``break_glass`` (what decryption needs, the decrypt command)."""
    doc = info.to_json()
    for entry, slot in zip(doc["wrapped_keys"], recovery.slots, strict=True):
        entry.update(slot.to_json())
    doc["break_glass"] = recovery.to_json()
    return doc


def print_text(info: MessageInfo, recovery: MessageRecovery) -> None:
    """The human-readable view."""
    print(f"envelope message v{info.version}, suite {info.suite}")
    context = json.dumps(info.context, ensure_ascii=False) if info.context else "(none)"
    print(f"  context:        {context}")
    print(f"  cluster secret: {info.cluster_secret_id or '(none: KMS key alone)'}")
    if info.threshold:
        k, n = info.threshold
        print(f"  key layout:     {k}-of-{n} threshold (each slot wraps one share)")
    for w in info.wrapped_keys:
        print(f"  wrapped key:    {w.provider} {w.key_id} ({w.wrapped_bytes} bytes)")
    size = "invalid length" if info.plaintext_bytes is None else f"{info.plaintext_bytes} bytes"
    print(f"  plaintext:      {size} (header {info.header_bytes} B, body {info.body_bytes} B)")
    print()
    print("break-glass recovery (docs/break-glass.md): unwrap a slot with the KMS's own CLI,")
    print("then decrypt with the recovered key; these commands print no key, they write it")
    for s in recovery.slots:
        print()
        version = "" if s.kek_version is None else f", KEK version {s.kek_version}"
        print(f"  slot {s.slot}: {s.provider} {s.key_id}{version}")
        print(f"    wrapped key (base64): {s.wrapped_b64}")
        for c in s.commands:
            when = f" (if {c.when})" if c.when else ""
            sent = json.dumps(c.kms_context, ensure_ascii=False)
            print(f"    context the KMS sees{when}: {sent}")
            print(f"    recover to {s.output}{when}:")
            print(f"      {c.command}")
        if s.note:
            print(f"    note: {s.note}")
    print()
    print("  decryption needs:")
    for need in recovery.needs:
        print(f"    - {need}")
    print("  then:")
    print(f"    {recovery.decrypt_command}")
    print("  and wipe the recovered key files afterwards: shred -u slot-*.key")


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
    # Imported here: the recovery plans import every KMS backend's module.
    from envelope._format.inspect import message_info  # noqa: PLC0415
    from envelope._keys.breakglass import recovery_plan  # noqa: PLC0415

    info = message_info(header, len(encode_header(header)), rest)
    if args.verify:
        return _verify(args)
    recovery = recovery_plan(header, args.input)
    if args.json:
        print(json.dumps(as_json(info, recovery), indent=2))
    else:
        print_text(info, recovery)
    return ExitCode.OK
