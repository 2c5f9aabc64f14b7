"""``envelope init`` and ``exec`` (the k8s extra) and ``quickstart``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from envelope._exitcodes import ExitCode, exit_codes_help
from envelope.cli._common import Fail, Subparsers, add_command
from envelope.errors import ConfigError

INIT_CODES = (
    "init exit codes: 0 published, 1 a secret did not decrypt, 3 configuration, "
    "4 KMS unavailable until --timeout, 5 output not writable, 6 output not memory-backed"
)


__all__ = ["register_exec", "register_init", "register_quickstart"]


def register_init(sub: Subparsers[argparse.ArgumentParser]) -> None:
    """Adds ``init``."""
    p = _add(
        sub,
        "init",
        "decrypt a service's secrets into a memory-backed directory (init container)",
        "envelope init --config /etc/envelope/init.yaml --log-format json",
        cmd_init,
    )
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
    _add_refresh_flags(p)


def register_exec(sub: Subparsers[argparse.ArgumentParser]) -> None:
    """Adds ``exec``."""
    p = _add(
        sub,
        "exec",
        "decrypt secrets into environment variables and exec a command",
        "envelope exec --config /etc/envelope/init.yaml -- /app/server --port 8080",
        cmd_exec,
    )
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS")


def _add(
    sub: Subparsers[argparse.ArgumentParser],
    verb: str,
    helptext: str,
    example: str,
    func: Callable[[argparse.Namespace], int],
) -> argparse.ArgumentParser:
    """``verb`` with the config, timeout and log-format flags ``init`` and ``exec`` share."""
    p = add_command(sub, verb, helptext, example, func)
    p.epilog = f"example:\n  {example}\n\n{INIT_CODES}\n\n{exit_codes_help(include_disk=True)}"
    p.add_argument("--config", required=True, help="YAML or JSON config (docs/kubernetes.md)")
    p.add_argument("--timeout", type=float, help="seconds to keep retrying the KMS")
    p.add_argument("--log-format", choices=("text", "json"), default="text")
    return p


def _add_refresh_flags(p: argparse.ArgumentParser) -> None:
    """The sidecar mode's flags (docs/operations.md): health, metrics, on-change actions."""
    g = p.add_argument_group("with --refresh (docs/operations.md)")
    g.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve /healthz and Prometheus /metrics on PORT (0: any free port, logged)",
    )
    g.add_argument(
        "--metrics-address",
        default="127.0.0.1",
        metavar="ADDR",
        help="address to serve them on (default 127.0.0.1; 0.0.0.0 for kubelet probes)",
    )
    g.add_argument(
        "--on-change",
        metavar="CMD",
        help="after a republish that changed the files, run CMD (no shell; split like sh)",
    )
    g.add_argument(
        "--on-change-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="kill --on-change's command after SECONDS (default 30)",
    )
    g.add_argument(
        "--signal",
        metavar="SIG",
        help="after such a republish, send SIG (e.g. SIGHUP) to the app's process",
    )
    g.add_argument("--pid-file", type=Path, metavar="FILE", help="--signal: the app's pid file")
    g.add_argument(
        "--signal-process-name",
        metavar="NAME",
        help="--signal: every process named NAME (shareProcessNamespace: true)",
    )


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
    from envelope.k8s._on_change import OnChange, parse_signal  # noqa: PLC0415 - k8s extra
    from envelope.k8s._runner import Refresh, run_init  # noqa: PLC0415 - needs the k8s extra

    sidecar_flags = {
        "--metrics-port": args.metrics_port is not None,
        "--on-change": args.on_change is not None,
        "--signal": args.signal is not None,
        "--pid-file": args.pid_file is not None,
        "--signal-process-name": args.signal_process_name is not None,
    }
    given = [flag for flag, present in sidecar_flags.items() if present]
    if args.refresh is None and given:
        raise Fail(
            ExitCode.USAGE, f"{', '.join(given)} only apply with --refresh SECONDS (sidecar mode)"
        )
    if args.refresh is not None and args.refresh <= 0:
        raise Fail(ExitCode.USAGE, "--refresh needs a positive number of seconds")
    if args.metrics_port is not None and not 0 <= args.metrics_port <= 65535:
        raise Fail(ExitCode.USAGE, "--metrics-port must be between 0 and 65535")
    if args.on_change_timeout <= 0:
        raise Fail(ExitCode.USAGE, "--on-change-timeout needs a positive number of seconds")
    refresh = None
    if args.refresh is not None:
        try:
            on_change = OnChange(
                command=args.on_change,
                timeout=args.on_change_timeout,
                signal=parse_signal(args.signal) if args.signal else None,
                pid_file=args.pid_file,
                process_name=args.signal_process_name,
            )
        except ConfigError as exc:
            raise Fail(ExitCode.USAGE, str(exc)) from None
        refresh = Refresh(args.refresh, args.metrics_port, args.metrics_address, on_change)
    return run_init(
        args.config,
        timeout=args.timeout,
        allow_disk=args.allow_disk,
        log_format=args.log_format,
        refresh=refresh,
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
