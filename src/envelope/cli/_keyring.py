"""``envelope keyring init|rotate|list|unwrap``: the local keyring (the embedded KMS)."""

from __future__ import annotations

import argparse
import json

from envelope._exitcodes import ExitCode
from envelope.cli._breakglass import register_keyring_unwrap
from envelope.cli._common import (
    Subparsers,
    add_command,
    add_kms_flags,
    local_kms,
    passphrase,
)
from envelope.kms._local import LocalKms

__all__ = ["register"]


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    """Adds ``keyring`` and its actions."""
    kr = sub.add_parser("keyring", help="manage the local keyring (the embedded KMS)")
    krs = kr.add_subparsers(dest="keyring_command", required=True, metavar="ACTION")
    p = add_command(
        krs,
        "init",
        "create a local keyring",
        "envelope keyring init --keyring ./keyring.json",
        cmd_keyring_init,
    )
    add_kms_flags(p)
    p.add_argument(
        "--force", action="store_true", help="replace an existing keyring (its keys are lost)"
    )
    p = add_command(
        krs,
        "rotate",
        "add a new KEK version; old versions keep decrypting",
        "envelope keyring rotate && envelope rewrap *.env",
        cmd_keyring_rotate,
    )
    add_kms_flags(p)
    p = add_command(
        krs,
        "list",
        "list the keyring's KEK versions (never key bytes)",
        "envelope keyring list --json",
        cmd_keyring_list,
    )
    add_kms_flags(p)
    p.add_argument("--json", action="store_true")
    register_keyring_unwrap(krs)


def cmd_keyring_init(args: argparse.Namespace) -> int:
    kms = LocalKms.create(args.keyring, passphrase=passphrase(args), overwrite=args.force)
    print(f"created keyring {kms.key_id} at {kms.path}")
    return ExitCode.OK


def cmd_keyring_rotate(args: argparse.Namespace) -> int:
    kms = local_kms(args)
    version = kms.rotate()
    print(f"keyring {kms.key_id}: new wraps now use version {version}")
    return ExitCode.OK


def cmd_keyring_list(args: argparse.Namespace) -> int:
    kms = local_kms(args)
    versions = kms.versions()
    if args.json:
        print(
            json.dumps(
                {
                    "id": kms.key_id,
                    "path": str(kms.path),
                    "current": kms.current_version,
                    "versions": [{"version": v.version, "created": v.created} for v in versions],
                },
                indent=2,
            )
        )
        return ExitCode.OK
    print(f"keyring {kms.key_id} ({kms.path})")
    for v in versions:
        mark = "  (current)" if v.version == kms.current_version else ""
        print(f"  version {v.version}  created {v.created}{mark}")
    return ExitCode.OK
