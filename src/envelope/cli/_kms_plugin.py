"""``envelope kms-plugin``: run the Kubernetes KMS v2 plugin (see docs/kms-plugin.md)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from envelope.cli._common import add_cluster_flags, add_kms_flags, cluster_secret, kms_backend
from envelope.errors import ConfigError
from envelope.kms import KmsBackend

__all__ = ["cmd_kms_plugin", "load_custodians", "register"]

EXAMPLE = (
    "envelope kms-plugin --listen unix:///var/run/kmsplugin/envelope.sock \\\n"
    "      --kms vault --kms-endpoint https://vault:8200 --kms-key k8s-etcd \\\n"
    "      --cluster-secret /etc/envelope/node.key --metrics-port 9464"
)
CUSTODIAN_FIELDS = {"kind", "key", "region", "endpoint", "keyring", "passphrase_file", "vault"}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds the ``kms-plugin`` command to the ``envelope`` parser."""
    help_ = "serve the Kubernetes KMS v2 API (etcd encryption at rest) on a Unix socket"
    p = subparsers.add_parser(
        "kms-plugin",
        help=help_,
        description=help_,
        epilog=f"example:\n  {EXAMPLE}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=cmd_kms_plugin)
    p.add_argument(
        "--listen",
        required=True,
        metavar="unix:///PATH.sock",
        help="the socket kube-apiserver connects to (EncryptionConfiguration endpoint)",
    )
    add_kms_flags(p)
    add_cluster_flags(p, for_encrypt=False)
    p.add_argument(
        "--custodians",
        type=Path,
        metavar="FILE",
        help="JSON file listing several KMS backends (replaces --kms...): "
        '{"custodians": [{"kind": "aws", "key": "alias/k8s"}, {"kind": "vault", ...}]}',
    )
    p.add_argument(
        "--threshold", type=int, metavar="K", help="k-of-n: any K custodians recover a DEK seed"
    )
    p.add_argument(
        "--probe-interval",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="at most one KMS health probe per custodian per interval (default 10)",
    )
    p.add_argument(
        "--cache-ttl",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="unwrapped DEK seeds keep decrypting this long without the KMS (default 3600)",
    )
    p.add_argument("--cache-entries", type=int, default=4096, help="DEK seeds cached at most")
    p.add_argument("--workers", type=int, default=32, help="gRPC handler threads (default 32)")
    p.add_argument(
        "--max-concurrent",
        type=int,
        default=256,
        help="calls admitted at once; more get RESOURCE_EXHAUSTED (default 256)",
    )
    p.add_argument(
        "--socket-owner",
        metavar="USER[:GROUP]",
        help="chown the socket (mode stays 0600) so that kube-apiserver can connect",
    )
    p.add_argument(
        "--grace", type=float, default=10.0, help="seconds in-flight calls get on SIGTERM"
    )
    p.add_argument(
        "--request-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="a call fails with DEADLINE_EXCEEDED after this (or the caller's deadline)",
    )
    p.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics on this TCP port")
    p.add_argument("--metrics-address", default="127.0.0.1", help="metrics bind address")
    p.add_argument("--log-level", default="info", help="debug, info, warning")


def load_custodians(path: Path) -> Callable[[], list[KmsBackend]]:
    """Reads a custodians file; returns a function that builds its backends.

    Raises:
        ConfigError: the file cannot be read, is not the expected JSON, or names an
            unknown field.
    """
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read custodians file {path}: {exc.strerror}") from None
    except ValueError:
        raise ConfigError(f"custodians file {path} is not JSON") from None
    entries = doc.get("custodians") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f'custodians file {path}: expected {{"custodians": [{{...}}, ...]}}')
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("kind"), str):
            raise ConfigError(f"custodians file {path}: entry {i} needs a string 'kind'")
        unknown = set(entry) - CUSTODIAN_FIELDS
        if unknown:
            raise ConfigError(
                f"custodians file {path}: entry {i} has unknown fields {sorted(unknown)}; "
                f"allowed: {sorted(CUSTODIAN_FIELDS)}"
            )
    return lambda: [_custodian(entry, path) for entry in entries]


def _custodian(entry: dict[str, Any], path: Path) -> KmsBackend:
    from envelope.settings import kms_from_mapping  # noqa: PLC0415 - lazy pydantic

    return kms_from_mapping(entry, f"custodians file {path}")


def cmd_kms_plugin(args: argparse.Namespace) -> int:
    """Runs the plugin until SIGTERM; returns 0 after a clean drain.

    Raises:
        ConfigError, KmsError: bad settings or an unusable KMS at start.
    """
    try:
        from envelope.plugin import JsonLogFormatter, parse_owner, serve  # noqa: PLC0415 - grpc
    except ImportError as exc:
        raise ConfigError(
            f"the KMS plugin needs grpcio and protobuf ({exc}): pip install 'envelope-kms[plugin]'"
        ) from None

    # The log lines carry their own fields: skip the per-record process and thread lookups.
    logging.logProcesses = logging.logThreads = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    logger = logging.getLogger("envelope.plugin")
    logger.handlers[:] = [handler]
    logger.propagate = False
    level = logging.getLevelName(str(args.log_level).upper())
    if not isinstance(level, int):
        raise ConfigError(f"--log-level {args.log_level!r}: use debug, info or warning")
    logger.setLevel(level)
    if args.threshold is not None and args.custodians is None:
        raise ConfigError("--threshold needs several custodians: pass --custodians FILE")
    build = load_custodians(args.custodians) if args.custodians else (lambda: [kms_backend(args)])
    serve(
        build,
        args.listen,
        cluster_secret=cluster_secret(args, required=False),
        threshold=args.threshold,
        probe_interval=args.probe_interval,
        cache_ttl=args.cache_ttl,
        cache_entries=args.cache_entries,
        workers=args.workers,
        max_concurrent=args.max_concurrent,
        socket_owner=parse_owner(args.socket_owner) if args.socket_owner else None,
        metrics_port=args.metrics_port,
        metrics_address=args.metrics_address,
        grace=args.grace,
        request_timeout=args.request_timeout,
    )
    return 0
