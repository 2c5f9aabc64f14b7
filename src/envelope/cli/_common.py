"""What the commands share: flag groups, the settings view of the flags, small helpers."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from envelope import settings as model
from envelope._envelope import Envelope
from envelope._exitcodes import ExitCode, exit_codes_help
from envelope._keys.cluster import ClusterSecret
from envelope.cli._envdefaults import StdStream
from envelope.errors import ConfigError
from envelope.keystore import KeyStore
from envelope.kms import KmsBackend
from envelope.kms._local import LocalKms
from envelope.settings import KMS_KINDS, VAULT_AUTH_METHODS

if TYPE_CHECKING:
    from envelope.settings import Settings

__all__ = [
    "EXIT_CODES",
    "Fail",
    "Subparsers",
    "add_allow_key_flag",
    "add_cluster_flags",
    "add_command",
    "add_context_flag",
    "add_kms_flags",
    "cluster_secret",
    "err",
    "file_mode",
    "key_store",
    "kms_backend",
    "local_kms",
    "make_envelope",
    "open_in",
    "parse_context",
    "passphrase",
    "refuse_binary_to_terminal",
    "settings",
]

EXIT_CODES = exit_codes_help()
Subparsers = argparse._SubParsersAction


class Fail(Exception):
    """A command failed with ``code``; the message is shown, never a traceback."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def err(message: str) -> None:
    """Prints ``envelope: error: message`` on stderr."""
    print(f"envelope: error: {message}", file=sys.stderr)


def add_command(
    parent: Subparsers[argparse.ArgumentParser],
    name: str,
    help_: str,
    example: str,
    func: Callable[[argparse.Namespace], int],
) -> argparse.ArgumentParser:
    """A subcommand with its help, an example and the exit codes in its epilog."""
    p = parent.add_parser(
        name,
        help=help_,
        description=help_,
        epilog=f"example:\n  {example}\n\n{EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=func)
    return p


def file_mode(text: str) -> int:
    """An output file mode in octal (``600``, ``0640``): the ``--mode`` type.

    Raises:
        argparse.ArgumentTypeError: not an octal mode (argparse shows it as a usage error).
    """
    try:
        mode = int(text, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        raise argparse.ArgumentTypeError(f"{text!r} is not an octal file mode such as 600 or 0640")
    return mode


def refuse_binary_to_terminal(args: argparse.Namespace, what: str) -> None:
    """Refuses to write binary ``what`` to a terminal unless ``-o -`` was typed (as age).

    Raises:
        Fail: USAGE, with the way out.
    """
    if isinstance(args.output, StdStream) and sys.stdout.isatty():
        raise Fail(
            ExitCode.USAGE,
            f"refusing to write {what} (binary) to the terminal: pass -o FILE, "
            "redirect stdout, or force it with -o -",
        )


def add_kms_flags(p: argparse.ArgumentParser) -> None:
    """``--kms`` and friends, the Vault group and the key store (defaults: the environment)."""
    p.add_argument("--kms", choices=KMS_KINDS, help="KMS backend (default: local)")
    p.add_argument(
        "--kms-key",
        help="the KEK in that KMS: AWS key id, ARN or alias/NAME",
    )
    p.add_argument("--kms-region", help="KMS region")
    p.add_argument("--kms-endpoint", help="KMS endpoint URL")
    vault = p.add_argument_group("Vault / OpenBao (--kms vault; --kms-key is the transit key)")
    vault.add_argument("--vault-mount")
    vault.add_argument(
        "--vault-auth",
        choices=VAULT_AUTH_METHODS,
        help="token ($BAO_TOKEN, $VAULT_TOKEN, ~/.vault-token), approle, jwt or kubernetes "
        "(the pod's token)",
    )
    vault.add_argument("--vault-role", help="jwt/kubernetes role")
    vault.add_argument("--vault-jwt-file", help="service-account token (default: the pod's)")
    for flag in ("auth-mount", "token-file", "role-id", "secret-id-file"):
        vault.add_argument(f"--vault-{flag}")
    for flag, bao in (
        ("ca-bundle", "CACERT"),
        ("client-cert", "CLIENT_CERT"),
        ("client-key", "CLIENT_KEY"),
        ("namespace", "NAMESPACE"),
    ):
        vault.add_argument(f"--vault-{flag}", help=f"default: $BAO_{bao}, else $VAULT_{bao}")
    add_vault_tls_flags(vault)
    p.add_argument(
        "--keystore",
        metavar="URI",
        help="where stored data keys live: s3://bucket/prefix or a directory",
    )
    p.add_argument("--keystore-endpoint", help="S3 endpoint URL for the key store")
    p.add_argument(
        "--keyring",
        type=Path,
        help="local keyring file (default: $XDG_CONFIG_HOME/envelope/keyring.json, "
        "else ~/.config/envelope/keyring.json)",
    )
    p.add_argument(
        "--passphrase-file",
        type=Path,
        help="file holding the keyring passphrase (or the passphrase itself in "
        "$ENVELOPE_KEYRING_PASSPHRASE)",
    )


def add_allow_key_flag(p: argparse.ArgumentParser) -> None:
    """``--allow-key PATTERN`` (repeatable): a command that only decrypts may then use the
    key a message's slot names instead of ``--kms-key`` (see docs/threat-model.md)."""
    p.add_argument(
        "--allow-key",
        action="append",
        metavar="PATTERN",
        help="without --kms-key: decrypt with the key the message names if it matches "
        "this glob over key ids (an ARN such as arn:aws:kms:eu-west-1:111122223333:key/*, "
        "alias/billing-*, a transit key name, a keyring id; repeatable; default: "
        "$ENVELOPE_ALLOWED_KEYS, comma- or space-separated). The KMS kind, endpoint, "
        "mount and auth still come only from the flags and environment, and the region "
        "too unless an ARN pattern names the key's region",
    )


#: Settings fields of the flags :func:`add_vault_tls_flags` adds (``--vault-ca-path``, ...).
VAULT_TLS_FLAGS = ("ca_path", "skip_verify", "tls_server_name", "timeout")


def add_vault_tls_flags(vault: Any) -> None:
    """``--vault-ca-path``, ``--vault-skip-verify``, ``--vault-tls-server-name`` and
    ``--vault-timeout`` (defaults: ``$BAO_*``, else ``$VAULT_*``, as the bao CLI reads them)."""
    vault.add_argument("--vault-ca-path", help="directory of CA files ($BAO_CAPATH, $VAULT_CAPATH)")
    vault.add_argument(
        "--vault-skip-verify",
        action="store_true",
        default=None,
        help="do not verify the server's certificate ($BAO_SKIP_VERIFY, $VAULT_SKIP_VERIFY)",
    )
    vault.add_argument(
        "--vault-tls-server-name",
        help="SNI name to check the certificate against ($BAO_TLS_SERVER_NAME)",
    )
    vault.add_argument(
        "--vault-timeout",
        help="per-request timeout: seconds or 1m30s ($BAO_CLIENT_TIMEOUT; default 10)",
    )


def add_cluster_flags(p: argparse.ArgumentParser, *, for_encrypt: bool) -> None:
    """``--cluster-secret``, ``--previous-cluster-secret`` (and ``--no-split`` to encrypt)."""
    p.add_argument(
        "--cluster-secret",
        type=Path,
        metavar="FILE",
        help="this service's cluster-secret part (or the part itself in $ENVELOPE_CLUSTER_SECRET)",
    )
    p.add_argument(
        "--previous-cluster-secret",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="an older part still accepted during rotation (repeatable)",
    )
    if for_encrypt:
        p.add_argument(
            "--no-split",
            action="store_true",
            help="encrypt with the KMS key alone, without a cluster-secret part",
        )
    else:
        p.add_argument(
            "--accept-unsplit",
            action="store_true",
            help="with --cluster-secret, also accept messages that record no split "
            "(KMS key alone; while migrating them; each is logged)",
        )


def add_context_flag(p: argparse.ArgumentParser) -> None:
    """``-c KEY=VALUE`` (repeatable)."""
    p.add_argument(
        "-c",
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="encryption context pair (repeatable); decryption requires the same pairs "
        "(none given: only a message without context decrypts)",
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _explicit(args: argparse.Namespace) -> dict[str, Any]:
    """The flags as a settings tree (None: not given, so the environment or default applies)."""
    a = vars(args)
    auth = ("role", "jwt_file", "token_file", "role_id", "secret_id_file")
    tls = ("ca_bundle", "client_cert", "client_key", "namespace", *VAULT_TLS_FLAGS)
    return {
        "kms": {
            "kind": a.get("kms"),
            "key": a.get("kms_key"),
            "region": a.get("kms_region"),
            "endpoint": a.get("kms_endpoint"),
            "keyring": _text(a.get("keyring")),
            "passphrase_file": _text(a.get("passphrase_file")),
            "allowed_keys": a.get("allow_key") or None,
            "vault": {
                "mount": a.get("vault_mount"),
                "auth": {
                    "method": a.get("vault_auth"),
                    "mount": a.get("vault_auth_mount"),
                    **{k: a.get(f"vault_{k}") for k in auth},
                },
                **{k: a.get(f"vault_{k}") for k in tls},
            },
        },
        "cluster_secret": {
            "file": _text(a.get("cluster_secret")),
            "previous": [str(p) for p in a.get("previous_cluster_secret") or ()],
        },
        "keystore": {"uri": a.get("keystore"), "endpoint": a.get("keystore_endpoint")},
    }


def settings(args: argparse.Namespace) -> Settings:
    """The settings the flags give, over the environment (validated by ``envelope.settings``).

    Raises:
        ConfigError: invalid settings (the message names the flag and variable).
    """
    cached: Settings | None = getattr(args, "_settings", None)
    if cached is None:
        # A command with --allow-key only decrypts: its key may come from the message.
        cached = model.Settings.resolve(_explicit(args), decrypt_only="allow_key" in vars(args))
        args._settings = cached
    return cached


def passphrase(args: argparse.Namespace) -> str | None:
    """The local keyring's passphrase (``--passphrase-file`` or the environment)."""
    return model.keyring_passphrase(settings(args).kms)


def kms_backend(args: argparse.Namespace) -> KmsBackend:
    """The KMS backend the flags select."""
    return model.build_kms(settings(args).kms)


def local_kms(args: argparse.Namespace) -> LocalKms:
    """The local keyring (keyring commands manage nothing else)."""
    s = settings(args).kms
    if s.kind != "local":
        raise Fail(ExitCode.USAGE, "keyring commands manage the local keyring only (--kms local)")
    return LocalKms.open(s.keyring, passphrase=model.keyring_passphrase(s))


def key_store(args: argparse.Namespace, *, required: bool = False) -> KeyStore | None:
    """The key store of ``--keystore``, if any."""
    s = settings(args).keystore
    if s is None:
        if required:
            raise ConfigError(
                "no key store given: pass --keystore s3://bucket/prefix or a directory"
            )
        return None
    return model.build_keystore(s)


def make_envelope(args: argparse.Namespace, part: ClusterSecret | None = None) -> Envelope:
    """An Envelope over the selected KMS and key store, with the cluster secret ``part``."""
    return Envelope(
        kms_backend(args),
        part,
        keystore=key_store(args),
        accept_unsplit=bool(getattr(args, "accept_unsplit", False)),
    )


def cluster_secret(args: argparse.Namespace, *, required: bool) -> ClusterSecret | None:
    """The cluster secret of ``--cluster-secret`` or the environment."""
    s = settings(args).cluster_secret
    if s is None:
        if required:
            raise ConfigError(
                "no cluster secret given: pass --cluster-secret FILE (create one with "
                "`envelope cluster-secret new --out FILE`), or --no-split to encrypt "
                "with the KMS key alone"
            )
        return None
    return model.load_cluster_secret(s)


def parse_context(pairs: Sequence[str]) -> dict[str, str] | None:
    """``KEY=VALUE`` pairs as an encryption context."""
    if not pairs:
        return None
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise Fail(ExitCode.USAGE, f"context pair {pair!r} is not KEY=VALUE")
        if key in out:
            raise Fail(ExitCode.USAGE, f"context key {key!r} given twice")
        out[key] = value
    return out


def size(path: str) -> int | None:
    """The size of ``path`` (None for stdin or an unreadable file)."""
    if path == "-":
        return None
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def open_in(path: str) -> BinaryIO:
    """``path`` opened for reading (``-``: stdin)."""
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as exc:
        raise Fail(ExitCode.IO, f"cannot read {path}: {exc.strerror}") from None
