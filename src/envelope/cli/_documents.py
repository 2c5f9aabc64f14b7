"""CLI for structured documents (``envelope.documents``): value-level encrypt/decrypt of
YAML, JSON, dotenv and Secret files, ``edit``, ``set``, ``unset``, ``updatekeys``,
``exec --file``, and the git ``textconv`` / ``merge-driver`` integration.

The ``register_*`` functions add the new commands; the ``extend_*`` ones extend
``encrypt``, ``decrypt`` and ``exec`` (called after those are defined): a file whose type
is detected (extension or content, or ``--input-type``) is handled here; anything else
keeps the whole-file behaviour. This module only parses and dispatches; the handlers
(:mod:`envelope.cli._documents_run`) and ``envelope.documents`` are imported when a
document command runs, so a whole-file command never loads them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from envelope._format.document_names import format_by_name
from envelope.cli import _common

__all__ = [
    "MAGIC",
    "extend_decrypt",
    "extend_encrypt",
    "extend_exec",
    "register_edit",
    "register_merge_driver",
    "register_set",
    "register_unset",
    "register_updatekeys",
]

TYPES = ("yaml", "json", "dotenv", "secret")
MAGIC = b"\x89ENV"
Handler = Callable[[argparse.Namespace], int]


def _run(name: str) -> Any:
    """The function ``name`` of :mod:`envelope.cli._documents_run` (imported now)."""
    return getattr(importlib.import_module("envelope.cli._documents_run"), name)


def _handler(name: str) -> Handler:
    """The handler ``name`` of :mod:`envelope.cli._documents_run`, imported when it runs."""

    def run(args: argparse.Namespace) -> int:
        return cast(Handler, _run(name))(args)

    return run


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
    fmt = format_by_name(args.input)
    if fmt is None and decrypting:  # by content, only when it carries our metadata
        from envelope.documents._core import detect_format  # noqa: PLC0415 - see module doc

        text = head.decode("utf-8", "replace")
        found = detect_format(None, text)
        marker = {"json": '"envelope":', "dotenv": "\nenvelope="}.get(found or "", "\nenvelope:\n")
        fmt = (found or "yaml") if marker in "\n" + text else None
    return fmt


def _dispatch(original: Handler, ours: str, *, decrypting: bool) -> Handler:
    def run(args: argparse.Namespace) -> int:
        if decrypting and getattr(args, "textconv", False):
            return cast(Handler, _run("cmd_textconv"))(args)
        fmt = _doc_type(args, decrypting=decrypting)
        if fmt is None:
            if getattr(args, "extract", None) or getattr(args, "in_place", False):
                raise ValueError(
                    f"{args.input}: --extract and -i work on structured documents only"
                )
            return original(args)
        return cast("Callable[[argparse.Namespace, str], int]", _run(ours))(args, fmt)

    return run


def _exec(original: Handler) -> Handler:
    def run(args: argparse.Namespace) -> int:
        if args.file:
            return cast(Handler, _run("cmd_exec_files"))(args)
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


def extend_encrypt(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Gives ``encrypt`` (defined already) its document flags and dispatch."""
    enc = sub.choices["encrypt"]
    _extend_message_command(enc, "cmd_encrypt", decrypting=False)
    _clear_options(enc)


def extend_decrypt(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Gives ``decrypt`` (defined already) its document flags and dispatch."""
    dec = sub.choices["decrypt"]
    _extend_message_command(dec, "cmd_decrypt", decrypting=True)
    dec.add_argument("--output-type", choices=TYPES[:3], help="write decrypted as this type")
    dec.add_argument("--extract", metavar="PATH", help="print one value, e.g. '.db.password'")
    dec.add_argument("--textconv", action="store_true", help="git diff textconv mode")


def _extend_message_command(p: argparse.ArgumentParser, ours: str, *, decrypting: bool) -> None:
    _doc_options(p, keys=False)
    p.add_argument("-i", "--in-place", action="store_true", help="rewrite the file itself")
    p.set_defaults(func=_dispatch(p.get_default("func"), ours, decrypting=decrypting))


def extend_exec(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Gives ``exec`` (defined already) ``--file``: documents instead of an init config."""
    exe = sub.choices["exec"]
    for action in exe._actions:
        if action.dest == "config":
            action.required = False
    exe.add_argument("--file", action="append", default=[], help="encrypted document (repeatable)")
    exe.add_argument("--mount", metavar="DIR", help="write the values as files in DIR instead")
    exe.add_argument("--allow-disk", action="store_true", help="allow a disk-backed --mount DIR")
    _doc_options(exe)
    exe.set_defaults(func=_exec(exe.get_default("func")))


def _add(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_: str, func: str
) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_, description=help_)
    p.set_defaults(func=_handler(func))
    return p


def register_edit(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``edit``."""
    p = _add(
        sub,
        "edit",
        "edit an encrypted document in $EDITOR (only changed values re-encrypted)",
        "cmd_edit",
    )
    p.add_argument("input", metavar="FILE")
    p.add_argument("--tmpdir", type=Path, help="memory-backed scratch directory")
    p.add_argument("--allow-disk", action="store_true", help="allow a disk-backed scratch dir")
    _doc_options(p)


def register_set(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``set``."""
    p = _add(
        sub, "set", "set one value of an encrypted document: envelope set F '.a.b' VALUE", "cmd_set"
    )
    p.add_argument("input", metavar="FILE")
    p.add_argument("path", metavar="PATH")
    p.add_argument("value", metavar="VALUE", help="JSON, or else taken as a string")
    _doc_options(p)


def register_unset(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``unset``."""
    p = _add(sub, "unset", "remove one value of an encrypted document", "cmd_unset")
    p.add_argument("input", metavar="FILE")
    p.add_argument("path", metavar="PATH")
    _doc_options(p)


def register_updatekeys(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``updatekeys``."""
    p = _add(
        sub, "updatekeys", "rewrap documents' data keys for the current rules", "cmd_updatekeys"
    )
    p.add_argument("paths", nargs="+", metavar="FILE")
    _doc_options(p)


def register_merge_driver(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``merge-driver``."""
    p = _add(
        sub,
        "merge-driver",
        "git merge driver: envelope merge-driver %%O %%A %%B --path %%P",
        "cmd_merge_driver",
    )
    p.add_argument("base")
    p.add_argument("ours")
    p.add_argument("theirs")
    p.add_argument("--path", help="the file's path in the repository (%%P)")
    _doc_options(p)
