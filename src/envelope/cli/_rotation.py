"""``envelope rewrap`` and ``reencrypt``: rotate many messages, resumably."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path

from envelope._envelope import Envelope
from envelope._exitcodes import ExitCode
from envelope._keys.cluster import ClusterSecret
from envelope._rotation import Summary, envelope_files, reencrypt_paths, rewrap_paths
from envelope.cli._common import (
    Fail,
    Subparsers,
    add_allow_key_flag,
    add_cluster_flags,
    add_command,
    add_kms_flags,
    cluster_secret,
    err,
    key_store,
    kms_backend,
    make_envelope,
)
from envelope.cli._progress import progress_files
from envelope.errors import ConfigError

__all__ = ["register_reencrypt", "register_rewrap"]


def register_rewrap(sub: Subparsers[argparse.ArgumentParser]) -> None:
    """Adds ``rewrap``."""
    p = add_command(
        sub,
        "rewrap",
        "re-wrap messages' data keys under the newest KEK version, in place (bodies untouched); "
        "files or directories; resumable with --state",
        "envelope rewrap secrets/ --state rewrap.journal",
        cmd_rewrap,
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p.add_argument("--state", type=Path, help="journal of finished files: rerun to resume")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_kms_flags(p)
    add_allow_key_flag(p)


def register_reencrypt(sub: Subparsers[argparse.ArgumentParser]) -> None:
    """Adds ``reencrypt``."""
    p = add_command(
        sub,
        "reencrypt",
        "re-encrypt messages under a new cluster-secret part (new data key, same context)",
        "envelope reencrypt secrets/ --cluster-secret new.part --previous-cluster-secret old.part",
        cmd_reencrypt,
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p.add_argument("--state", type=Path, help="journal of finished files: rerun to resume")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_kms_flags(p)
    add_cluster_flags(p, for_encrypt=False)


def _existing(paths: list[Path]) -> list[Path]:
    """The paths given, each checked to exist before any file is touched.

    Raises:
        Fail: IO, naming the first one that does not exist.
    """
    for path in paths:
        if not os.path.exists(path):
            raise Fail(ExitCode.IO, f"cannot read {path}: No such file or directory")
    return paths


def _summary_json(summary: Summary, total: int) -> str:
    return json.dumps(
        {
            "total": total,
            "done": [str(p) for p in summary.done],
            "skipped": [str(p) for p in summary.skipped],
            "failed": [{"path": str(p), "reason": reason} for p, reason in summary.failed_cli],
        },
        indent=2,
    )


def _rotation(args: argparse.Namespace, run: Callable[..., Summary], *envs: Envelope) -> int:
    files = list(envelope_files(_existing(args.paths)))
    tick, done = progress_files(len(files), args.quiet)
    try:
        summary = run(*envs, files, state=args.state, progress=tick)
    finally:
        done()
    if args.json:
        print(_summary_json(summary, len(files)))
    for path, reason in summary.failed_cli:
        err(f"{path}: {reason}")
    if not args.quiet and not args.json:
        print(
            f"{len(summary.done)} done, {len(summary.skipped)} already done (journal), "
            f"{len(summary.failed)} failed, of {len(files)} files"
        )
    if summary.failed:
        raise Fail(
            ExitCode.DECRYPT,
            f"{len(summary.failed)} of {len(files)} files failed; rerun to retry them",
        )
    return ExitCode.OK


def cmd_rewrap(args: argparse.Namespace) -> int:
    _existing(args.paths)
    return _rotation(args, rewrap_paths, make_envelope(args))


def cmd_reencrypt(args: argparse.Namespace) -> int:
    _existing(args.paths)
    kms = kms_backend(args)
    store = key_store(args)
    new_part = cluster_secret(args, required=True)
    old_files = [*args.previous_cluster_secret]
    if not old_files and not args.accept_unsplit:
        raise ConfigError(
            "reencrypt needs the old part: --previous-cluster-secret FILE (or, for messages "
            "sealed without a cluster part, --accept-unsplit)"
        )
    assert new_part is not None
    old = new_part
    if old_files:
        older = ClusterSecret.from_file(old_files[0], previous=old_files[1:]).parts()
        old = ClusterSecret(new_part.current, older)
    return _rotation(
        args,
        reencrypt_paths,
        Envelope(kms, old, keystore=store, accept_unsplit=args.accept_unsplit),
        Envelope(kms, new_part, keystore=store),
    )
