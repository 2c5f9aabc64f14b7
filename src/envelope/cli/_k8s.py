"""``envelope init`` and ``exec`` (the k8s extra) and ``quickstart``."""

from __future__ import annotations

import argparse
from pathlib import Path

from envelope._exitcodes import exit_codes_help
from envelope.cli._common import Subparsers, add_command

INIT_CODES = (
    "init exit codes: 0 published, 1 a secret did not decrypt, 3 configuration, "
    "4 KMS unavailable until --timeout, 5 output not writable, 6 output not memory-backed"
)


__all__ = ["register"]


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    """Adds ``init`` and ``exec``."""
    for verb, helptext, example, func in (
        (
            "init",
            "decrypt a service's secrets into a memory-backed directory (init container)",
            "envelope init --config /etc/envelope/init.yaml --log-format json",
            cmd_init,
        ),
        (
            "exec",
            "decrypt secrets into environment variables and exec a command",
            "envelope exec --config /etc/envelope/init.yaml -- /app/server --port 8080",
            cmd_exec,
        ),
    ):
        p = add_command(sub, verb, helptext, example, func)
        p.epilog = f"example:\n  {example}\n\n{INIT_CODES}\n\n{exit_codes_help(include_disk=True)}"
        p.add_argument("--config", required=True, help="YAML or JSON config (docs/kubernetes.md)")
        p.add_argument("--timeout", type=float, help="seconds to keep retrying the KMS")
        p.add_argument("--log-format", choices=("text", "json"), default="text")
        if verb == "init":
            p.add_argument(
                "--allow-disk",
                action="store_true",
                help="allow a disk-backed output directory (not recommended)",
            )
            p.add_argument(
                "--refresh",
                type=float,
                metavar="SECONDS",
                help="keep running and republish every SECONDS (native sidecar mode)",
            )
        else:
            p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS")


def register_quickstart(sub: Subparsers[argparse.ArgumentParser]) -> None:
    """Adds ``quickstart``."""
    q = add_command(
        sub,
        "quickstart",
        "encrypt and decrypt a real secret with a local keyring and a cluster-secret part",
        "envelope quickstart --dir ./envelope-demo",
        cmd_quickstart,
    )
    q.add_argument(
        "--dir", type=Path, help="keep the demo files here (default: a temporary directory)"
    )


def cmd_init(args: argparse.Namespace) -> int:
    from envelope.k8s._runner import run_init  # noqa: PLC0415 - needs the k8s extra

    return run_init(
        args.config,
        timeout=args.timeout,
        allow_disk=args.allow_disk,
        log_format=args.log_format,
        refresh=args.refresh,
    )


def cmd_exec(args: argparse.Namespace) -> int:
    from envelope.k8s._runner import run_exec  # noqa: PLC0415 - needs the k8s extra

    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    return run_exec(args.config, command, timeout=args.timeout, log_format=args.log_format)


def cmd_quickstart(args: argparse.Namespace) -> int:
    from envelope.cli._quickstart import run  # noqa: PLC0415 - only this command needs it

    return run(args.dir)


# -- parser ---------------------------------------------------------------------------
