"""``envelope cluster-secret new|id``: create or identify cluster-secret parts."""

from __future__ import annotations

import argparse
from pathlib import Path

from envelope._atomic import write_atomic
from envelope._exitcodes import ExitCode
from envelope._keys.cluster import ClusterSecret
from envelope.cli._common import Subparsers, add_command
from envelope.errors import ConfigError, FileAccessError

__all__ = ["register"]


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    """Adds ``cluster-secret`` and its actions."""
    cs = sub.add_parser("cluster-secret", help="create or identify cluster-secret parts")
    css = cs.add_subparsers(dest="cluster_command", required=True, metavar="ACTION")
    p = add_command(
        css,
        "new",
        "write a new random 32-byte part (mode 0600)",
        "envelope cluster-secret new --out cluster.key",
        cmd_cluster_secret_new,
    )
    p.add_argument("--out", required=True, help="file to write")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p = add_command(
        css,
        "id",
        "print a part's id (safe to share)",
        "envelope cluster-secret id cluster.key",
        cmd_cluster_secret_id,
    )
    p.add_argument("file", type=Path)


def cmd_cluster_secret_new(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and not args.force:
        raise ConfigError(
            f"{out} exists; pass --force to replace it (messages made with it become unreadable)"
        )
    secret = ClusterSecret.generate()
    try:
        write_atomic(out, bytes(secret.current.material), mode=0o600)
    except OSError as exc:
        raise FileAccessError(f"cannot write {out}: {exc.strerror}") from None
    print(f"wrote cluster-secret part {secret.current.id} to {out}")
    print(f"  kubectl create secret generic <service>-cluster-secret --from-file=part={out}")
    return ExitCode.OK


def cmd_cluster_secret_id(args: argparse.Namespace) -> int:
    print(ClusterSecret.from_file(args.file).current.id)
    return ExitCode.OK
