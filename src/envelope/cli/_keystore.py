"""``envelope keystore put|get|list|rewrap``: data keys stored apart from messages."""

from __future__ import annotations

import argparse
import json

from envelope._envelope import Envelope
from envelope._exitcodes import ExitCode
from envelope._format.message import parse_header
from envelope.cli._common import (
    Subparsers,
    add_command,
    add_context_flag,
    add_kms_flags,
    key_store,
    kms_backend,
    parse_context,
)

__all__ = ["register"]


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    """Adds ``keystore`` and its actions."""
    ks = sub.add_parser("keystore", help="data keys stored apart from messages (S3 or a directory)")
    kss = ks.add_subparsers(dest="keystore_command", required=True, metavar="ACTION")
    p = add_command(
        kss,
        "put",
        "store a new version of a named data key (one KMS call)",
        "envelope keystore put service-a/dek --kms aws --kms-key alias/service-a "
        "--keystore s3://bucket/keys",
        cmd_keystore_put,
    )
    p.add_argument("name")
    add_context_flag(p)
    add_kms_flags(p)
    p = add_command(
        kss,
        "get",
        "show a stored key's version, context and wrapping (no key bytes)",
        "envelope keystore get service-a/dek --keystore s3://bucket/keys --json",
        cmd_keystore_get,
    )
    p.add_argument("name")
    p.add_argument("--version", type=int)
    p.add_argument("--json", action="store_true")
    add_kms_flags(p)
    p = add_command(
        kss,
        "list",
        "list stored key names and versions",
        "envelope keystore list service-a/ --keystore s3://bucket/keys",
        cmd_keystore_list,
    )
    p.add_argument("prefix", nargs="?", default="")
    p.add_argument("--json", action="store_true", help="print the names and versions as JSON")
    add_kms_flags(p)
    p = add_command(
        kss,
        "rewrap",
        "rewrap a stored key under the newest KEK version (conditional write)",
        "envelope keystore rewrap service-a/dek --all --keystore s3://bucket/keys",
        cmd_keystore_rewrap,
    )
    p.add_argument("name")
    p.add_argument("--version", type=int, help="the version to rewrap (default: newest)")
    p.add_argument("--all", action="store_true", help="rewrap every version")
    p.add_argument("--json", action="store_true", help="print the rewrapped versions as JSON")
    add_kms_flags(p)


def cmd_keystore_put(args: argparse.Namespace) -> int:
    env = Envelope(kms_backend(args), keystore=key_store(args, required=True))
    version = env.store_new_key(args.name, parse_context(args.context))
    print(f"stored a new data key {args.name}@{version} in {args.keystore}")
    return ExitCode.OK


def cmd_keystore_get(args: argparse.Namespace) -> int:
    store = key_store(args, required=True)
    assert store is not None
    stored = store.get(args.name, args.version)
    header, _ = parse_header(stored.blob)
    info = {
        "name": stored.name,
        "version": stored.version,
        "uri": f"{store.uri}/{stored.name}@{stored.version}",
        "context": dict(header.context),
        "wrapped_keys": [
            {"provider": s.provider, "key_id": s.key_id, "wrapped_bytes": len(s.wrapped)}
            for s in header.slots
        ],
    }
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"{info['uri']}")
        print(f"  context:     {json.dumps(info['context']) if info['context'] else '(none)'}")
        for w in header.slots:
            print(f"  wrapped key: {w.provider} {w.key_id} ({len(w.wrapped)} bytes)")
    return ExitCode.OK


def cmd_keystore_list(args: argparse.Namespace) -> int:
    store = key_store(args, required=True)
    assert store is not None
    keys = [(name, store.versions(name)) for name in store.names(args.prefix)]
    if args.json:
        listed = [{"name": name, "versions": versions} for name, versions in keys]
        print(json.dumps({"keystore": store.uri, "keys": listed}, indent=2))
        return ExitCode.OK
    for name, versions in keys:
        print(f"{name}  versions {versions[0]}..{versions[-1]}" if versions else name)
    return ExitCode.OK


def cmd_keystore_rewrap(args: argparse.Namespace) -> int:
    env = Envelope(kms_backend(args), keystore=key_store(args, required=True))
    store = key_store(args, required=True)
    assert store is not None
    targets = store.versions(args.name) if args.all else [args.version]
    rewrapped = []
    for version in targets:
        done = env.rewrap_stored_key(args.name, version)
        rewrapped.append(done)
        if not args.quiet and not args.json:
            print(f"rewrapped {args.name}@{done}")
    if args.json:
        print(json.dumps({"name": args.name, "rewrapped": rewrapped}, indent=2))
    return ExitCode.OK
