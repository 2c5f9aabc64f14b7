"""CLI for structured documents (``envelope.documents``): value-level encrypt/decrypt of
YAML, JSON, dotenv and Secret files, ``edit``, ``set``, ``unset``, ``updatekeys``,
``exec --file``, and the git ``textconv`` / ``merge-driver`` integration.

``register(subparsers)`` adds the new commands and extends ``encrypt``, ``decrypt`` and
``exec``: a file whose type is detected (extension or content, or ``--input-type``) is
handled here; anything else keeps the whole-file behaviour.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
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

__all__ = ["register"]

TYPES = ("yaml", "json", "dotenv", "secret")
MAGIC = b"\x89ENV"
Handler = Callable[[argparse.Namespace], int]


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


def _doc_type(args: argparse.Namespace, *, decrypting: bool) -> str | None:
    """The document type of ``args.input``, or None for a whole-file message."""
    given = getattr(args, "input_type", None)
    if given:
        return None if given == "binary" else str(given)
    if args.input == "-":
        return None
    try:
        if not stat.S_ISREG(os.stat(args.input).st_mode):
            return None  # a FIFO or device can be read once: a whole-file message
        with open(args.input, "rb") as f:
            head = f.read(65536)
    except OSError:
        return None
    if head.startswith(MAGIC):
        return None
    fmt = detect_format(args.input)
    if fmt is None and decrypting:  # by content, only when it carries our metadata
        text = head.decode("utf-8", "replace")
        found = detect_format(None, text)
        marker = {"json": '"envelope":', "dotenv": "\nenvelope="}.get(found or "", "\nenvelope:\n")
        fmt = (found or "yaml") if marker in "\n" + text else None
    return fmt


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


def _dispatch(
    original: Handler, ours: Callable[[argparse.Namespace, str], int], *, decrypting: bool
) -> Handler:
    def run(args: argparse.Namespace) -> int:
        if decrypting and getattr(args, "textconv", False):
            return cmd_textconv(args)
        fmt = _doc_type(args, decrypting=decrypting)
        if fmt is None:
            if getattr(args, "extract", None) or getattr(args, "in_place", False):
                raise ValueError(
                    f"{args.input}: --extract and -i work on structured documents only"
                )
            return original(args)
        return ours(args, fmt)

    return run


def _type_of(args: argparse.Namespace, path: str) -> str:
    return str(args.input_type or detect_format(path) or "yaml")


def _write_back(path: str, text: str) -> None:
    keep = os.stat(path).st_mode & 0o777
    write_atomic(path, text.encode(), mode=keep)


def cmd_edit(args: argparse.Namespace) -> int:
    """Decrypt into a private memory-backed file, run $EDITOR, re-seal changed values."""
    fmt = _type_of(args, args.input)
    parent = _edit.memory_dir(args.tmpdir, allow_disk=args.allow_disk)
    with _open(args, args.input, fmt) as doc, _edit.private_dir(parent) as tmp:
        suffix = Path(args.input).suffix if Path(args.input).suffix else ".txt"
        interactive = sys.stdin.isatty() and sys.stderr.isatty()
        result = _edit.edit_loop(doc, tmp / f"edit{suffix}", fmt, interactive=interactive)
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


def _exec(original: Handler) -> Handler:
    def run(args: argparse.Namespace) -> int:
        if args.file:
            return cmd_exec_files(args)
        if not args.config:
            raise ValueError("exec needs --config FILE (init config) or --file DOCUMENT")
        return original(args)

    return run


def _doc_options(p: argparse.ArgumentParser, *, keys: bool = True) -> None:
    g = p.add_argument_group("structured documents (docs/documents.md)")
    g.add_argument("--input-type", choices=(*TYPES, "binary"), help="override type detection")
    taken = any("--config" in a.option_strings for a in p._actions)
    g.add_argument(
        *(("--rules",) if taken else ("--config", "--rules")),
        dest="rules",
        metavar="FILE",
        help="rules file (default: the nearest .envelope.yaml from the file upward)",
    )
    if keys:
        _common.add_context_flag(p)
        _common.add_kms_flags(p)
        _common.add_cluster_flags(p, for_encrypt=True)


def _clear_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("values left clear (still covered by the MAC)")
    for name in ("unencrypted_regex", "encrypted_regex", "unencrypted_suffix", "encrypted_suffix"):
        g.add_argument("--" + name.replace("_", "-"), dest=name, metavar="TEXT")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds the document commands and extends ``encrypt``, ``decrypt`` and ``exec``
    (call after those are defined)."""
    enc, dec, exe = sub.choices["encrypt"], sub.choices["decrypt"], sub.choices["exec"]
    for p, decrypting, ours in ((enc, False, cmd_encrypt), (dec, True, cmd_decrypt)):
        _doc_options(p, keys=False)
        p.add_argument("-i", "--in-place", action="store_true", help="rewrite the file itself")
        p.set_defaults(func=_dispatch(p.get_default("func"), ours, decrypting=decrypting))
    _clear_options(enc)
    dec.add_argument("--output-type", choices=TYPES[:3], help="write decrypted as this type")
    dec.add_argument("--extract", metavar="PATH", help="print one value, e.g. '.db.password'")
    dec.add_argument("--textconv", action="store_true", help="git diff textconv mode")
    for action in exe._actions:
        if action.dest == "config":
            action.required = False
    exe.add_argument("--file", action="append", default=[], help="encrypted document (repeatable)")
    exe.add_argument("--mount", metavar="DIR", help="write the values as files in DIR instead")
    exe.add_argument("--allow-disk", action="store_true", help="allow a disk-backed --mount DIR")
    _doc_options(exe)
    exe.set_defaults(func=_exec(exe.get_default("func")))

    def add(name: str, help_: str, func: Handler) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=func)
        return p

    p = add(
        "edit", "edit an encrypted document in $EDITOR (only changed values re-encrypted)", cmd_edit
    )
    p.add_argument("input", metavar="FILE")
    p.add_argument("--tmpdir", type=Path, help="memory-backed scratch directory")
    p.add_argument("--allow-disk", action="store_true", help="allow a disk-backed scratch dir")
    _doc_options(p)
    p = add("set", "set one value of an encrypted document: envelope set F '.a.b' VALUE", cmd_set)
    p.add_argument("input", metavar="FILE")
    p.add_argument("path", metavar="PATH")
    p.add_argument("value", metavar="VALUE", help="JSON, or else taken as a string")
    _doc_options(p)
    p = add("unset", "remove one value of an encrypted document", cmd_unset)
    p.add_argument("input", metavar="FILE")
    p.add_argument("path", metavar="PATH")
    _doc_options(p)
    p = add("updatekeys", "rewrap documents' data keys for the current rules", cmd_updatekeys)
    p.add_argument("paths", nargs="+", metavar="FILE")
    _doc_options(p)
    p = add(
        "merge-driver",
        "git merge driver: envelope merge-driver %%O %%A %%B --path %%P",
        cmd_merge_driver,
    )
    p.add_argument("base")
    p.add_argument("ours")
    p.add_argument("theirs")
    p.add_argument("--path", help="the file's path in the repository (%%P)")
    _doc_options(p)
