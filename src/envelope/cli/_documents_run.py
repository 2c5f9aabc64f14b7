"""The structured-document commands' handlers (``envelope.cli._documents`` parses and
dispatches to them; importing this module loads ``envelope.documents``)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from envelope import documents
from envelope._atomic import write_atomic
from envelope._envelope import Envelope
from envelope._keys.cluster import ClusterSecret
from envelope.cli import _common
from envelope.cli._documents import _doc_type
from envelope.documents import _edit
from envelope.documents._core import Opened, detect_format
from envelope.documents._env import flatten
from envelope.documents._merge import merge_opened
from envelope.documents._plain import to_plain
from envelope.documents._rules import (
    RULES_FILE,
    ClearRules,
    Rule,
    find_rules_file,
    match_rule,
)
from envelope.documents._settings import envelope_for_any_rule, envelope_for_rule
from envelope.errors import (
    ConfigError,
    FileAccessError,
    FormatError,
    KeyUnavailableError,
    KmsError,
)
from envelope.settings._env import child_environment

__all__ = [
    "cmd_decrypt",
    "cmd_edit",
    "cmd_encrypt",
    "cmd_exec_files",
    "cmd_merge_driver",
    "cmd_set",
    "cmd_textconv",
    "cmd_unset",
    "cmd_updatekeys",
]


def _explicit_flags(args: argparse.Namespace) -> bool:
    """KMS options given on the command line (they win over the rules file, which wins
    over the ENVELOPE_* environment)."""
    return (
        args.keyring is not None
        or args.kms_key is not None
        or args.kms is not None
        or bool(getattr(args, "allow_key", None))
    )


def _ambient(args: argparse.Namespace) -> bool:
    return any(os.environ.get(v) for v in ("ENVELOPE_KMS", "ENVELOPE_KMS_KEY", "ENVELOPE_KEYRING"))


def _explicit_cluster(args: argparse.Namespace) -> ClusterSecret | None:
    if args.cluster_secret is None:
        return None
    return ClusterSecret.from_file(args.cluster_secret, previous=args.previous_cluster_secret)


def _rules_file(args: argparse.Namespace, file: Path | None) -> Path | None:
    if getattr(args, "rules", None):
        return Path(args.rules)
    found = find_rules_file(file) if file is not None else None
    return found or find_rules_file(Path.cwd())


def _context(args: argparse.Namespace, rule: Rule | None) -> dict[str, str] | None:
    given = _common.parse_context(args.context) or {}
    merged = {**(rule.context if rule else {}), **given}
    return merged or None


def _clear(args: argparse.Namespace, rule: Rule | None) -> ClearRules | None:
    names = ("unencrypted_regex", "encrypted_regex", "unencrypted_suffix", "encrypted_suffix")
    given = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    if given:
        return ClearRules(**given)
    return rule.clear if rule else None


def _for_encrypt(args: argparse.Namespace, file: Path | None) -> tuple[Envelope, Rule | None]:
    """The Envelope that encrypts ``file``: flags, else the matching creation rule.

    Raises:
        ConfigError: neither; names the rules file searched.
    """
    if _explicit_flags(args):
        return _common.make_envelope(
            args, _common.cluster_secret(args, required=not args.no_split)
        ), None
    rules = _rules_file(args, file)
    rule = match_rule(file or Path.cwd(), rules) if rules else None
    if rule is not None:
        return envelope_for_rule(rule, cluster=_explicit_cluster(args)), rule
    if _ambient(args):
        return _common.make_envelope(
            args, _common.cluster_secret(args, required=not args.no_split)
        ), None
    searched = str(rules) if rules else f"{RULES_FILE} from {file or '.'} upward"
    raise ConfigError(
        f"{file or 'stdin'}: no creation rule in {searched} matches this file, and no "
        "--kms/--kms-key/--keyring is given: add a path_regex rule or pass the KMS options"
    )


def _for_decrypt(
    args: argparse.Namespace, file: Path | None, *, migrating: bool = False
) -> Envelope:
    """The Envelope that may decrypt ``file``: flags, the matching rule, else every
    backend the rules file names (decryption only trusts configured keys anyway).
    ``migrating`` (updatekeys) reads a file made under the rules' older key setup."""
    rules = None if _explicit_flags(args) else _rules_file(args, file)
    if rules is None:
        return _common.make_envelope(args, _common.cluster_secret(args, required=False))
    cluster = _explicit_cluster(args)
    accept = migrating or bool(getattr(args, "accept_unsplit", False))
    rule = match_rule(file, rules) if file is not None else None
    if rule is not None:
        return envelope_for_rule(rule, cluster=cluster, accept_unsplit=accept)
    return envelope_for_any_rule(rules, cluster=cluster, accept_unsplit=accept)


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read(documents.MAX_DOCUMENT_BYTES + 1)
    try:
        with open(path, "rb") as f:
            return f.read(documents.MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise FileAccessError(f"cannot read {path}: {exc.strerror}") from None


def _emit(text: str, args: argparse.Namespace, *, mode: int | None = None) -> None:
    out = getattr(args, "output", "-")
    if getattr(args, "in_place", False):
        if args.input == "-":
            raise ValueError("-i/--in-place needs a file, not stdin")
        keep = os.stat(args.input).st_mode & 0o777
        write_atomic(args.input, text.encode(), mode=keep if mode is None else mode)
    elif out == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_atomic(out, text.encode(), mode=args.mode)


def _open(
    args: argparse.Namespace,
    path: str,
    fmt: str | None = None,
    name: str | None = None,
    *,
    migrating: bool = False,
) -> Opened:
    raw = _read(path)
    file = Path(name or path) if path != "-" else None
    env = _for_decrypt(args, file, migrating=migrating)
    return documents.open_document(
        raw, env, format=fmt, name=name or path, context=_common.parse_context(args.context)
    )


def cmd_encrypt(args: argparse.Namespace, fmt: str) -> int:
    """Value-level encryption of a structured file."""
    raw = _read(args.input)
    file = Path(args.input) if args.input != "-" else None
    env, rule = _for_encrypt(args, file)
    context, clear = _context(args, rule), _clear(args, rule)
    _emit(
        documents.encrypt(raw, env, format=fmt, name=args.input, context=context, clear=clear), args
    )
    return 0


def cmd_decrypt(args: argparse.Namespace, fmt: str) -> int:
    """Decryption of a structured file (or one value of it with --extract)."""
    with _open(args, args.input, fmt) as doc:
        text = doc.extract(args.extract) if args.extract else doc.text(args.output_type)
    _emit(text, args, mode=0o600)
    return 0


def cmd_textconv(args: argparse.Namespace) -> int:
    """git diff textconv: the decrypted text, or the file as-is when it is not a
    document or this host lacks its key (so diffs never break)."""
    raw = _read(args.input)
    fmt = _doc_type(args, decrypting=True)
    if fmt is None:
        sys.stdout.buffer.write(raw)
        return 0
    try:
        with _open(args, args.input, fmt) as doc:
            sys.stdout.write(doc.text())
    except (ConfigError, KmsError, KeyUnavailableError) as exc:
        print(
            f"envelope: textconv shows {args.input} encrypted: {exc.cli_message}", file=sys.stderr
        )
        sys.stdout.buffer.write(raw)
    except FormatError:
        sys.stdout.buffer.write(raw)
    return 0


def _type_of(args: argparse.Namespace, path: str) -> str:
    return str(args.input_type or detect_format(path) or "yaml")


def _write_back(path: str, text: str) -> None:
    keep = os.stat(path).st_mode & 0o777
    write_atomic(path, text.encode(), mode=keep)


def cmd_edit(args: argparse.Namespace) -> int:
    """Decrypt into a private memory-backed file, run $EDITOR, re-seal changed values."""
    fmt = _type_of(args, args.input)
    parent = _edit.memory_dir(args.tmpdir, allow_disk=args.allow_disk)
    try:
        with _open(args, args.input, fmt) as doc, _edit.private_dir(parent) as tmp:
            suffix = Path(args.input).suffix if Path(args.input).suffix else ".txt"
            interactive = sys.stdin.isatty() and sys.stderr.isatty()
            result = _edit.edit_loop(doc, tmp / f"edit{suffix}", fmt, interactive=interactive)
    except _edit.Interrupted as exc:  # the scratch files are gone; exit as any command does
        return 128 + exc.signum
    if result is None:
        if not args.quiet:
            print(f"envelope: no change: {args.input} left untouched", file=sys.stderr)
        return 0
    _write_back(args.input, result)
    return 0


def _value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _rewrite(args: argparse.Namespace, change: Callable[[Opened], None]) -> int:
    with _open(args, args.input, _type_of(args, args.input)) as doc:
        change(doc)
        doc.reseal(doc.parsed)
        _write_back(args.input, doc.parsed.handler.dump(doc.parsed))
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    """Sets one value (JSON if it parses as JSON, else the string)."""
    return _rewrite(args, lambda doc: doc.set_value(args.path, _value(args.value)))


def cmd_unset(args: argparse.Namespace) -> int:
    """Removes one value."""
    return _rewrite(args, lambda doc: doc.unset_value(args.path))


def cmd_updatekeys(args: argparse.Namespace) -> int:
    """Rewraps each file's data key for its rule's current custodians and threshold."""
    for path in args.paths:
        new_env, _ = _for_encrypt(args, Path(path))
        with _open(args, path, _type_of(args, path), migrating=True) as doc:
            doc.meta.header = new_env.rekey_document_key(doc.meta.header)
            doc.reseal(doc.parsed)
            _write_back(path, doc.parsed.handler.dump(doc.parsed))
        if not args.quiet:
            slots = ", ".join(f"{s.provider} {s.key_id}" for s in doc.meta.header.slots)
            print(f"{path}: data key now wrapped by {slots}", file=sys.stderr)
    return 0


def cmd_merge_driver(args: argparse.Namespace) -> int:
    """``envelope merge-driver %O %A %B [--path %P]``: merges on decrypted structure and
    writes one valid encrypted file to %A; 1 when a value conflicts (ours kept there)."""
    name = args.path or args.ours
    fmt = _type_of(args, name)
    with (
        _open(args, args.base, fmt, name) as base,
        _open(args, args.ours, fmt, name) as ours,
        _open(args, args.theirs, fmt, name) as theirs,
    ):
        text, conflicts = merge_opened(base, ours, theirs)
        _write_back(args.ours, text)
    for path in conflicts:
        print(f"envelope: merge conflict at {path} in {name} (ours kept)", file=sys.stderr)
    return 1 if conflicts else 0


def cmd_exec_files(args: argparse.Namespace) -> int:
    """Exports the leaves of --file documents (or writes them under --mount) and runs CMD."""
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise ValueError("give the command after --: envelope exec --file F -- CMD ARGS")
    variables: dict[str, str] = {}
    for path in args.file:
        with _open(args, path, _type_of(args, path)) as doc:
            for d in doc.parsed.docs:
                flatten(to_plain(d), path, variables)
    if args.mount is None:
        os.execvpe(command[0], command, child_environment(os.environ, variables))  # noqa: S606
    target = _edit.memory_dir(Path(args.mount), allow_disk=args.allow_disk)
    written: list[Path] = []
    try:
        with _edit.signals_raise():
            for name, value in variables.items():
                f = target / name
                _edit.write_private(f, value)
                written.append(f)
            return subprocess.call(command)
    finally:
        for f in written:
            f.unlink(missing_ok=True)
