"""The ``envelope`` command line.

Exit codes (also in ``envelope --help``):

====  ======================================================================
0     success
1     decryption failed: tampered, truncated, wrong context, not a message
2     usage error
3     configuration error: missing keyring, cluster secret or key; bad file
4     KMS error
5     input/output error
====  ======================================================================
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO, NoReturn, cast

from envelope._atomic import atomic_output, write_atomic
from envelope._envelope import Envelope
from envelope._format.inspect import message_info
from envelope._format.message import encode_header, parse_header, read_header
from envelope._keys.cluster import ClusterSecret
from envelope._rotation import Summary, envelope_files, reencrypt_paths, rewrap_paths
from envelope._version import __version__
from envelope.errors import (
    ConfigError,
    DecryptionError,
    KeyUnavailableError,
    KmsError,
)
from envelope.keystore._stores import KeyStore
from envelope.kms import KmsBackend
from envelope.kms._local import LocalKms, default_keyring_path
from envelope.settings import (
    KMS_KINDS,
    VAULT_AUTH_METHODS,
    VaultSettings,
    make_keystore,
    make_kms,
)

EXIT_OK, EXIT_DECRYPT, EXIT_USAGE, EXIT_CONFIG, EXIT_KMS, EXIT_IO = 0, 1, 2, 3, 4, 5
PROGRESS_MIN_BYTES = 8 * 1024 * 1024

EXIT_CODES = """exit codes:
  0  success
  1  decryption failed (tampered, truncated, wrong context, not an envelope message)
  2  usage error
  3  configuration error (missing keyring, cluster secret or key; unreadable file)
  4  KMS error
  5  input/output error"""


class _Fail(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _err(message: str) -> None:
    print(f"envelope: error: {message}", file=sys.stderr)


# -- shared options -------------------------------------------------------------------


def _add_keyring(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--kms",
        choices=KMS_KINDS,
        default=os.environ.get("ENVELOPE_KMS", "local"),
        help="KMS backend (default: $ENVELOPE_KMS or local)",
    )
    p.add_argument(
        "--kms-key",
        default=os.environ.get("ENVELOPE_KMS_KEY"),
        help="the KEK in that KMS: AWS key id, ARN or alias/NAME (default: $ENVELOPE_KMS_KEY)",
    )
    p.add_argument("--kms-region", default=os.environ.get("ENVELOPE_KMS_REGION"), help="KMS region")
    p.add_argument(
        "--kms-endpoint", default=os.environ.get("ENVELOPE_KMS_ENDPOINT"), help="KMS endpoint URL"
    )
    env = os.environ.get
    vault = p.add_argument_group("Vault / OpenBao (--kms vault; --kms-key is the transit key)")
    vault.add_argument("--vault-mount", default=env("ENVELOPE_VAULT_MOUNT", "transit"))
    vault.add_argument(
        "--vault-auth",
        choices=VAULT_AUTH_METHODS,
        default=env("ENVELOPE_VAULT_AUTH", "token"),
        help="token ($VAULT_TOKEN), approle, jwt or kubernetes (the pod's token)",
    )
    vault.add_argument(
        "--vault-role", default=env("ENVELOPE_VAULT_ROLE"), help="jwt/kubernetes role"
    )
    vault.add_argument(
        "--vault-jwt-file",
        default=env("ENVELOPE_VAULT_JWT_FILE"),
        help="service-account token (default: the pod's)",
    )
    vault.add_argument("--vault-auth-mount", default=env("ENVELOPE_VAULT_AUTH_MOUNT"))
    vault.add_argument("--vault-token-file", default=env("ENVELOPE_VAULT_TOKEN_FILE"))
    vault.add_argument("--vault-role-id", default=env("ENVELOPE_VAULT_ROLE_ID"))
    vault.add_argument("--vault-secret-id-file", default=env("ENVELOPE_VAULT_SECRET_ID_FILE"))
    vault.add_argument("--vault-ca-bundle", default=env("VAULT_CACERT"))
    vault.add_argument("--vault-client-cert", default=env("VAULT_CLIENT_CERT"))
    vault.add_argument("--vault-client-key", default=env("VAULT_CLIENT_KEY"))
    vault.add_argument("--vault-namespace", default=env("VAULT_NAMESPACE"))
    p.add_argument(
        "--keystore",
        default=os.environ.get("ENVELOPE_KEYSTORE"),
        metavar="URI",
        help="where stored data keys live: s3://bucket/prefix or a directory "
        "(default: $ENVELOPE_KEYSTORE)",
    )
    p.add_argument(
        "--keystore-endpoint",
        default=os.environ.get("ENVELOPE_KEYSTORE_ENDPOINT"),
        help="S3 endpoint URL for the key store",
    )
    p.add_argument(
        "--keyring",
        type=Path,
        help=f"local keyring file (default: $ENVELOPE_KEYRING or {default_keyring_path()})",
    )
    p.add_argument(
        "--passphrase-file",
        type=Path,
        help="file holding the keyring passphrase (default: $ENVELOPE_KEYRING_PASSPHRASE)",
    )


def _add_cluster(p: argparse.ArgumentParser, *, for_encrypt: bool) -> None:
    p.add_argument(
        "--cluster-secret",
        type=Path,
        metavar="FILE",
        help="this service's cluster-secret part (default: $ENVELOPE_CLUSTER_SECRET_FILE)",
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


def _add_context(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="encryption context pair (repeatable); decryption requires the same pairs",
    )


def _passphrase(args: argparse.Namespace) -> str | None:
    if args.passphrase_file is not None:
        try:
            return str(args.passphrase_file.read_text()).rstrip("\n")
        except OSError as exc:
            raise ConfigError(
                f"cannot read passphrase file {args.passphrase_file}: {exc.strerror}"
            ) from None
    return os.environ.get("ENVELOPE_KEYRING_PASSPHRASE")


def _kms(args: argparse.Namespace) -> KmsBackend:
    return make_kms(
        args.kms,
        key=args.kms_key,
        region=args.kms_region,
        endpoint=args.kms_endpoint,
        keyring=args.keyring,
        passphrase=_passphrase(args) if args.kms == "local" else None,
        vault=VaultSettings(
            mount=args.vault_mount,
            auth=args.vault_auth,
            role=args.vault_role,
            jwt_file=args.vault_jwt_file,
            auth_mount=args.vault_auth_mount,
            token_file=args.vault_token_file,
            role_id=args.vault_role_id,
            secret_id_file=args.vault_secret_id_file,
            ca_bundle=args.vault_ca_bundle,
            client_cert=args.vault_client_cert,
            client_key=args.vault_client_key,
            namespace=args.vault_namespace,
        ),
    )


def _local_kms(args: argparse.Namespace) -> LocalKms:
    if args.kms != "local":
        raise _Fail(EXIT_USAGE, "keyring commands manage the local keyring only (--kms local)")
    return LocalKms.open(args.keyring, passphrase=_passphrase(args))


def _keystore(args: argparse.Namespace, *, required: bool = False) -> KeyStore | None:
    if not args.keystore:
        if required:
            raise ConfigError(
                "no key store given: pass --keystore s3://bucket/prefix or a directory"
            )
        return None
    return make_keystore(args.keystore, endpoint=args.keystore_endpoint, region=args.kms_region)


def _envelope(args: argparse.Namespace, cluster: ClusterSecret | None = None) -> Envelope:
    return Envelope(_kms(args), cluster, keystore=_keystore(args))


def _cluster(args: argparse.Namespace, *, required: bool) -> ClusterSecret | None:
    path = args.cluster_secret
    if path is None and (env := os.environ.get("ENVELOPE_CLUSTER_SECRET_FILE")):
        path = Path(env)
    if path is None:
        if required:
            raise ConfigError(
                "no cluster secret given: pass --cluster-secret FILE (create one with "
                "`envelope cluster-secret new --out FILE`), or --no-split to encrypt "
                "with the KMS key alone"
            )
        return None
    return ClusterSecret.from_file(path, previous=args.previous_cluster_secret)


def _context(pairs: Sequence[str]) -> dict[str, str] | None:
    if not pairs:
        return None
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise _Fail(EXIT_USAGE, f"context pair {pair!r} is not KEY=VALUE")
        if key in out:
            raise _Fail(EXIT_USAGE, f"context key {key!r} given twice")
        out[key] = value
    return out


def _progress(
    total: int | None, label: str, quiet: bool
) -> tuple[Callable[[int], None] | None, Callable[[], None]]:
    if quiet or total is None or total < PROGRESS_MIN_BYTES or not sys.stderr.isatty():
        return None, lambda: None
    # Imported only when a bar is shown: rich is slow to import.
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        DownloadColumn,
        Progress,
        TransferSpeedColumn,
    )

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        transient=True,
    )
    task = bar.add_task(label, total=total)
    bar.start()
    return (lambda n: bar.advance(task, n)), bar.stop


def _size(path: str) -> int | None:
    if path == "-":
        return None
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def _open_in(path: str) -> BinaryIO:
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as exc:
        raise _Fail(EXIT_IO, f"cannot read {path}: {exc.strerror}") from None


class _Counted:
    """A binary writer that counts what it passed on."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw, self.count = raw, 0

    def write(self, data: bytes | memoryview) -> int:
        n = self._raw.write(data)
        self.count += len(data)
        return n


# -- commands -------------------------------------------------------------------------


def cmd_encrypt(args: argparse.Namespace) -> int:
    env = _envelope(args, _cluster(args, required=not args.no_split))
    context = _context(args.context)
    key_ref = args.key_ref
    tick, done = _progress(_size(args.input), "encrypting", args.quiet)
    try:
        if args.output == "-":
            src = _open_in(args.input)
            try:
                env.encrypt_stream(src, sys.stdout.buffer, context, progress=tick, key_ref=key_ref)
            finally:
                if src is not sys.stdin.buffer:
                    src.close()
            sys.stdout.buffer.flush()
        elif args.input == "-":
            with atomic_output(args.output, mode=args.mode) as out:
                env.encrypt_stream(sys.stdin.buffer, out, context, progress=tick, key_ref=key_ref)
        else:
            env.encrypt_file(
                args.input, args.output, context, mode=args.mode, progress=tick, key_ref=key_ref
            )
    finally:
        done()
    return EXIT_OK


def cmd_decrypt(args: argparse.Namespace) -> int:
    env = _envelope(args, _cluster(args, required=False))
    context = _context(args.context)
    tick, done = _progress(_size(args.input), "decrypting", args.quiet)
    try:
        if args.output == "-":
            # Streamed in constant memory: only authenticated chunks reach stdout, and a
            # message that fits in one piece (4 MiB) is written only once it verified.
            src = _open_in(args.input)
            sink = _Counted(sys.stdout.buffer)
            try:
                env.decrypt_stream(src, cast(BinaryIO, sink), context, progress=tick)
            except DecryptionError:
                if not sink.count:
                    raise
                raise _Fail(
                    EXIT_DECRYPT,
                    f"decryption failed after {sink.count} authenticated bytes went to stdout: "
                    "the message is truncated or tampered; discard that output",
                ) from None
            finally:
                if src is not sys.stdin.buffer:
                    src.close()
            sys.stdout.buffer.flush()
        elif args.input == "-":
            with atomic_output(args.output, mode=args.mode) as out:
                env.decrypt_stream(sys.stdin.buffer, out, context, progress=tick)
        else:
            env.decrypt_file(args.input, args.output, context, mode=args.mode, progress=tick)
    finally:
        done()
    return EXIT_OK


def cmd_inspect(args: argparse.Namespace) -> int:
    src = _open_in(args.input)
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
    info = message_info(header, len(encode_header(header)), rest)
    if args.verify:
        if args.input == "-":
            raise _Fail(EXIT_USAGE, "--verify needs the message as a file, not stdin")
        with open(args.input, "rb") as f:
            checks = _envelope(args, _cluster(args, required=False)).verify_key_slots(f.read())
        bad = [c for c in checks if c[2] is not None]
        for provider, key_id, problem in checks:
            print(
                f"{'FAILED' if problem else 'ok':6}  {provider} {key_id}"
                + (f": {problem}" if problem else "")
            )
        if bad:
            raise _Fail(EXIT_DECRYPT, f"{len(bad)} of {len(checks)} key slots failed verification")
        return EXIT_OK
    if args.json:
        print(json.dumps(info.to_json(), indent=2))
        return EXIT_OK
    print(f"envelope message v{info.version}, suite {info.suite}")
    context = json.dumps(info.context, ensure_ascii=False) if info.context else "(none)"
    print(f"  context:        {context}")
    print(f"  cluster secret: {info.cluster_secret_id or '(none: KMS key alone)'}")
    for w in info.wrapped_keys:
        print(f"  wrapped key:    {w.provider} {w.key_id} ({w.wrapped_bytes} bytes)")
    size = "invalid length" if info.plaintext_bytes is None else f"{info.plaintext_bytes} bytes"
    print(f"  plaintext:      {size} (header {info.header_bytes} B, body {info.body_bytes} B)")
    return EXIT_OK


def _rotation(args: argparse.Namespace, run: Callable[..., Summary], *envs: Envelope) -> int:
    files = list(envelope_files(args.paths))
    tick, done = _progress_count(len(files), args.quiet)
    try:
        summary = run(*envs, files, state=args.state, progress=tick)
    finally:
        done()
    for path, reason in summary.failed:
        _err(f"{path}: {reason}")
    if not args.quiet:
        print(
            f"{len(summary.done)} done, {len(summary.skipped)} already done (journal), "
            f"{len(summary.failed)} failed, of {len(files)} files"
        )
    if summary.failed:
        raise _Fail(
            EXIT_DECRYPT, f"{len(summary.failed)} of {len(files)} files failed; rerun to retry them"
        )
    return EXIT_OK


def cmd_rewrap(args: argparse.Namespace) -> int:
    return _rotation(args, rewrap_paths, _envelope(args))


def cmd_reencrypt(args: argparse.Namespace) -> int:
    kms = _kms(args)
    store = _keystore(args)
    new_part = _cluster(args, required=True)
    old_files = [*args.previous_cluster_secret]
    if not old_files:
        raise ConfigError("reencrypt needs the old part: --previous-cluster-secret FILE")
    assert new_part is not None
    old = ClusterSecret(
        new_part.current, ClusterSecret.from_file(old_files[0], previous=old_files[1:]).parts()
    )
    return _rotation(
        args,
        reencrypt_paths,
        Envelope(kms, old, keystore=store),
        Envelope(kms, new_part, keystore=store),
    )


def _progress_count(
    total: int, quiet: bool
) -> tuple[Callable[[Path], None] | None, Callable[[], None]]:
    if quiet or total < 2 or not sys.stderr.isatty():
        return None, lambda: None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress  # noqa: PLC0415

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        transient=True,
    )
    task = bar.add_task("files", total=total)
    bar.start()
    return (lambda _path: bar.advance(task)), bar.stop


def cmd_keyring_init(args: argparse.Namespace) -> int:
    kms = LocalKms.create(args.keyring, passphrase=_passphrase(args), overwrite=args.force)
    print(f"created keyring {kms.key_id} at {kms.path}")
    return EXIT_OK


def cmd_keyring_rotate(args: argparse.Namespace) -> int:
    kms = _local_kms(args)
    version = kms.rotate()
    print(f"keyring {kms.key_id}: new wraps now use version {version}")
    return EXIT_OK


def cmd_keyring_list(args: argparse.Namespace) -> int:
    kms = _local_kms(args)
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
        return EXIT_OK
    print(f"keyring {kms.key_id} ({kms.path})")
    for v in versions:
        mark = "  (current)" if v.version == kms.current_version else ""
        print(f"  version {v.version}  created {v.created}{mark}")
    return EXIT_OK


def cmd_keystore_put(args: argparse.Namespace) -> int:
    env = Envelope(_kms(args), keystore=_keystore(args, required=True))
    version = env.store_new_key(args.name, _context(args.context))
    print(f"stored a new data key {args.name}@{version} in {args.keystore}")
    return EXIT_OK


def cmd_keystore_get(args: argparse.Namespace) -> int:
    store = _keystore(args, required=True)
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
    return EXIT_OK


def cmd_keystore_list(args: argparse.Namespace) -> int:
    store = _keystore(args, required=True)
    assert store is not None
    for name in store.names(args.prefix):
        versions = store.versions(name)
        print(f"{name}  versions {versions[0]}..{versions[-1]}" if versions else name)
    return EXIT_OK


def cmd_keystore_rewrap(args: argparse.Namespace) -> int:
    env = Envelope(_kms(args), keystore=_keystore(args, required=True))
    store = _keystore(args, required=True)
    assert store is not None
    targets = store.versions(args.name) if args.all else [args.version]
    for version in targets:
        done = env.rewrap_stored_key(args.name, version)
        if not args.quiet:
            print(f"rewrapped {args.name}@{done}")
    return EXIT_OK


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
        raise ConfigError(f"cannot write {out}: {exc.strerror}") from None
    print(f"wrote cluster-secret part {secret.current.id} to {out}")
    print(f"  kubectl create secret generic <service>-cluster-secret --from-file=part={out}")
    return EXIT_OK


def cmd_cluster_secret_id(args: argparse.Namespace) -> int:
    print(ClusterSecret.from_file(args.file).current.id)
    return EXIT_OK


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


def build_parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="envelope",
        description="Envelope encryption with a KMS-wrapped data key split with a cluster secret.",
        epilog="examples:\n  envelope quickstart\n  envelope encrypt secret.txt -o secret.env "
        "--cluster-secret cluster.key -c service=billing\n\n" + EXIT_CODES,
        formatter_class=raw,
    )
    parser.add_argument("--version", action="version", version=f"envelope {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or notes")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str,
        help_: str,
        example: str,
        func: Callable[[argparse.Namespace], int],
        parent: argparse._SubParsersAction[argparse.ArgumentParser] = sub,
    ) -> argparse.ArgumentParser:
        p = parent.add_parser(
            name,
            help=help_,
            description=help_,
            epilog=f"example:\n  {example}\n\n{EXIT_CODES}",
            formatter_class=raw,
        )
        p.set_defaults(func=func)
        return p

    q = add(
        "quickstart",
        "encrypt and decrypt a real secret with a local keyring and a cluster-secret part",
        "envelope quickstart --dir ./envelope-demo",
        cmd_quickstart,
    )
    q.add_argument(
        "--dir", type=Path, help="keep the demo files here (default: a temporary directory)"
    )

    kr = sub.add_parser("keyring", help="manage the local keyring (the embedded KMS)")
    krs = kr.add_subparsers(dest="keyring_command", required=True, metavar="ACTION")
    p = add(
        "init",
        "create a local keyring",
        "envelope keyring init --keyring ./keyring.json",
        cmd_keyring_init,
        krs,
    )
    _add_keyring(p)
    p.add_argument(
        "--force", action="store_true", help="replace an existing keyring (its keys are lost)"
    )
    p = add(
        "rotate",
        "add a new KEK version; old versions keep decrypting",
        "envelope keyring rotate && envelope rewrap *.env",
        cmd_keyring_rotate,
        krs,
    )
    _add_keyring(p)
    p = add(
        "list",
        "list the keyring's KEK versions (never key bytes)",
        "envelope keyring list --json",
        cmd_keyring_list,
        krs,
    )
    _add_keyring(p)
    p.add_argument("--json", action="store_true")

    ks = sub.add_parser("keystore", help="data keys stored apart from messages (S3 or a directory)")
    kss = ks.add_subparsers(dest="keystore_command", required=True, metavar="ACTION")
    p = add(
        "put",
        "store a new version of a named data key (one KMS call)",
        "envelope keystore put service-a/dek --kms aws --kms-key alias/service-a "
        "--keystore s3://bucket/keys",
        cmd_keystore_put,
        kss,
    )
    p.add_argument("name")
    _add_context(p)
    _add_keyring(p)
    p = add(
        "get",
        "show a stored key's version, context and wrapping (no key bytes)",
        "envelope keystore get service-a/dek --keystore s3://bucket/keys --json",
        cmd_keystore_get,
        kss,
    )
    p.add_argument("name")
    p.add_argument("--version", type=int)
    p.add_argument("--json", action="store_true")
    _add_keyring(p)
    p = add(
        "list",
        "list stored key names and versions",
        "envelope keystore list service-a/ --keystore s3://bucket/keys",
        cmd_keystore_list,
        kss,
    )
    p.add_argument("prefix", nargs="?", default="")
    _add_keyring(p)
    p = add(
        "rewrap",
        "rewrap a stored key under the newest KEK version (conditional write)",
        "envelope keystore rewrap service-a/dek --all --keystore s3://bucket/keys",
        cmd_keystore_rewrap,
        kss,
    )
    p.add_argument("name")
    p.add_argument("--version", type=int, help="the version to rewrap (default: newest)")
    p.add_argument("--all", action="store_true", help="rewrap every version")
    _add_keyring(p)

    cs = sub.add_parser("cluster-secret", help="create or identify cluster-secret parts")
    css = cs.add_subparsers(dest="cluster_command", required=True, metavar="ACTION")
    p = add(
        "new",
        "write a new random 32-byte part (mode 0600)",
        "envelope cluster-secret new --out cluster.key",
        cmd_cluster_secret_new,
        css,
    )
    p.add_argument("--out", required=True, help="file to write")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p = add(
        "id",
        "print a part's id (safe to share)",
        "envelope cluster-secret id cluster.key",
        cmd_cluster_secret_id,
        css,
    )
    p.add_argument("file", type=Path)

    for name, func, verb in (
        ("encrypt", cmd_encrypt, "encrypt"),
        ("decrypt", cmd_decrypt, "decrypt"),
    ):
        files = "secret.txt -o secret.env" if name == "encrypt" else "secret.env -o secret.txt"
        example = f"envelope {name} {files} --cluster-secret cluster.key -c service=billing"
        p = add(name, f"{verb} a file or stdin", example, func)
        p.add_argument("input", nargs="?", default="-", help="input file (default: stdin)")
        p.add_argument(
            "-o", "--output", default="-", help="output file, written atomically (default: stdout)"
        )
        p.add_argument(
            "--mode",
            type=lambda s: int(s, 8),
            default=0o600,
            help="output file mode (default 0600)",
        )
        _add_context(p)
        _add_keyring(p)
        _add_cluster(p, for_encrypt=name == "encrypt")
        if name == "encrypt":
            p.add_argument(
                "--key-ref",
                metavar="NAME[@VERSION]",
                help="encrypt under a data key from --keystore instead of a fresh one",
            )

    init_codes = (
        "init exit codes: 0 published, 1 a secret did not decrypt, 3 configuration, "
        "4 KMS unavailable until --timeout, 5 output not writable, 6 output not memory-backed"
    )
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
        p = add(verb, helptext, example, func)
        p.epilog = f"example:\n  {example}\n\n{init_codes}\n\n{EXIT_CODES}"
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

    p = add(
        "inspect",
        "show a message's header: context, key ids, sizes (no keys needed)",
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
    _add_keyring(p)
    _add_cluster(p, for_encrypt=False)

    p = add(
        "rewrap",
        "re-wrap messages' data keys under the newest KEK version, in place (bodies untouched); "
        "files or directories; resumable with --state",
        "envelope rewrap secrets/ --state rewrap.journal",
        cmd_rewrap,
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p.add_argument("--state", type=Path, help="journal of finished files: rerun to resume")
    _add_keyring(p)
    p = add(
        "reencrypt",
        "re-encrypt messages under a new cluster-secret part (new data key, same context)",
        "envelope reencrypt secrets/ --cluster-secret new.part --previous-cluster-secret old.part",
        cmd_reencrypt,
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p.add_argument("--state", type=Path, help="journal of finished files: rerun to resume")
    _add_keyring(p)
    _add_cluster(p, for_encrypt=False)
    return parser


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the ``envelope`` command."""
    sys.exit(run(argv))


def run(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI and returns its exit code."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except _Fail as exc:
        _err(str(exc))
        return exc.code
    except KeyUnavailableError as exc:
        _err(str(exc))
        return EXIT_CONFIG
    except DecryptionError as exc:
        _err(str(exc))
        return EXIT_DECRYPT
    except ConfigError as exc:
        _err(str(exc))
        return EXIT_CONFIG
    except KmsError as exc:
        _err(str(exc))
        return EXIT_KMS
    except (ValueError, TypeError) as exc:
        _err(str(exc))
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_IO
    except OSError as exc:
        _err(f"{exc.filename or 'I/O'}: {exc.strerror or exc}")
        return EXIT_IO
