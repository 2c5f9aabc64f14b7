"""Sealing and opening parsed documents: values, aliases, metadata, MAC."""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from envelope._envelope import Envelope
from envelope._format.document_names import format_by_name
from envelope._format.message import Header
from envelope._keys.source import wipe
from envelope.documents._dotenv import DotenvFormat
from envelope.documents._format import (
    MAX_DOCUMENT_BYTES,
    MAX_VALUE_BYTES,
    decode_plain,
    encode_plain,
    format_path,
    is_token,
    open_value,
    parse_path,
    seal_value,
)
from envelope.documents._json import JsonFormat
from envelope.documents._mac import METADATA_KEY, Metadata, check_mac, compute_mac, entry_records
from envelope.documents._parsed import DocumentSyntaxError, Format, Parsed
from envelope.documents._plain import from_plain, to_plain
from envelope.documents._rules import ClearRules
from envelope.documents._secret import is_secret_stream, secret_documents
from envelope.documents._tree import ALIAS, LEAF, Entry, anchor_of, walk
from envelope.documents._yaml import YamlFormat
from envelope.errors import ConfigError, DecryptionError, FormatError

__all__ = ["FORMATS", "Opened", "detect_format", "handler", "open_parsed", "parse", "seal"]

FORMATS = ("yaml", "json", "dotenv", "secret")


def handler(fmt: str) -> Format:
    """The handler of a format name (``secret`` is YAML with the Secret rule).

    Raises:
        ValueError: an unknown format.
    """
    if fmt in ("yaml", "secret"):
        return YamlFormat()
    if fmt == "json":
        return JsonFormat()
    if fmt == "dotenv":
        return DotenvFormat()
    raise ValueError(f"unknown document type {fmt!r}; choose one of {', '.join(FORMATS)}")


def detect_format(name: str | None, text: str | None = None) -> str | None:
    """The format of a file by its extension, else by its content (None: not a
    structured document; such files stay whole-file messages)."""
    if name and (by_name := format_by_name(name)) is not None:
        return by_name
    if text is None:
        return None
    head = text.lstrip()
    if head.startswith("{"):
        return "json"
    lines = [
        ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")
    ]
    if lines and all(DotenvFormat.looks_like(ln) for ln in lines):
        return "dotenv"
    return None


def decode_text(raw: bytes | str, name: str) -> str:
    """The document text; size-checked before anything parses it.

    Raises:
        FormatError: over MAX_DOCUMENT_BYTES. DocumentSyntaxError: not UTF-8.
    """
    size = len(raw.encode("utf-8", "surrogatepass")) if isinstance(raw, str) else len(raw)
    if size > MAX_DOCUMENT_BYTES:
        raise FormatError(f"{name}: {size} bytes is over the {MAX_DOCUMENT_BYTES}-byte limit")
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DocumentSyntaxError(name, line, col, "not UTF-8 text") from None


def parse(raw: bytes | str, fmt: str, name: str) -> Parsed:
    """Size check, decode and parse.

    Raises:
        FormatError, DocumentSyntaxError: as :func:`decode_text` and the handlers.
    """
    text = decode_text(raw, name)
    crlf = "\r\n" in text
    parsed = handler(fmt).parse(text.replace("\r\n", "\n") if crlf else text, name)
    parsed.crlf = crlf
    return parsed


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _top(parsed: Parsed, name: str) -> Any:
    top = parsed.docs[0]
    if not isinstance(top, dict):
        raise FormatError(f"{name}: the first document must be a mapping (it holds the metadata)")
    return top


def take_meta(parsed: Parsed, name: str) -> Metadata:
    """Removes and reads the metadata block.

    Raises:
        FormatError: there is none (not an encrypted document).
        DecryptionError: it is damaged.
    """
    top = parsed.docs[0]
    if not isinstance(top, dict) or METADATA_KEY not in top:
        raise FormatError(f"{name}: not an encrypted document (no '{METADATA_KEY}' metadata)")
    block = top.pop(METADATA_KEY)
    if isinstance(parsed.handler, DotenvFormat):
        try:
            block = json.loads(base64.urlsafe_b64decode(str(block) + "=" * (-len(block) % 4)))
        except (ValueError, binascii.Error):
            raise DecryptionError(f"{name}: the envelope metadata line is damaged") from None
    return Metadata.from_plain(block, name)


def has_meta(parsed: Parsed) -> bool:
    """Whether the document carries an envelope metadata block."""
    top = parsed.docs[0] if parsed.docs else None
    return isinstance(top, dict) and METADATA_KEY in top


def put_meta(parsed: Parsed, meta: Metadata) -> None:
    """Writes the metadata block (last key of the first document)."""
    block: Any = meta.to_plain()
    if isinstance(parsed.handler, DotenvFormat):
        raw = json.dumps(block, separators=(",", ":"), sort_keys=True).encode()
        block = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    parsed.docs[0][METADATA_KEY] = block


def rules_for(parsed: Parsed, fmt: str, clear: ClearRules | None) -> ClearRules:
    """The clear-value rules for a new document (Secret manifests detected)."""
    rules = clear or ClearRules()
    if fmt == "secret" or (fmt == "yaml" and is_secret_stream(parsed.docs)):
        rules = ClearRules(**{**rules.__dict__, "kubernetes_secret": True})
    return rules


@dataclass
class Opened:
    """A decrypted document, still able to re-seal under the same data key."""

    name: str
    parsed: Parsed
    meta: Metadata
    key: bytearray
    #: per encrypted path: (typed plaintext, token), so unchanged values keep their token
    previous: dict[bytes, tuple[bytes, str]] = field(default_factory=dict)

    def text(self, output_format: str | None = None) -> str:
        """The decrypted document text (without metadata), in its own format or as
        ``output_format`` (comments are then lost; dotenv needs a flat mapping).

        Raises:
            ValueError: an unknown format, or dotenv for a nested document.
        """
        if output_format is None or output_format == self.parsed.handler.name:
            return self.parsed.handler.dump(self.parsed)
        out = handler(output_format)
        docs = [from_plain(to_plain(d), output_format) for d in self.parsed.docs]
        return out.dump(Parsed(out, docs))

    def extract(self, expr: str) -> str:
        """The value at path ``expr`` as text: a string as is, anything else as JSON.

        Raises:
            ConfigError: no value there.
        """
        node: Any = self.parsed.docs[0]
        for _, item in parse_path(expr):
            try:
                node = node[item]
            except (KeyError, IndexError, TypeError):
                raise ConfigError(f"{self.name}: no value at {expr}") from None
        value = to_plain(node)
        if isinstance(value, str):
            return value if value.endswith("\n") else value + "\n"
        return json.dumps(value, ensure_ascii=False) + "\n"

    def reseal(self, parsed: Parsed) -> None:
        """Encrypts ``parsed`` (an edit of this document) with this document's data key
        and rules: values equal to before keep their ciphertext."""
        rules = ClearRules.from_record(self.meta.rules, self.name)
        seal(parsed, self.name, self.key, self.meta.header, rules, self.previous)

    def _locate(self, expr: str, *, create: bool) -> tuple[Any, Any]:
        steps = parse_path(expr)
        if not steps:
            raise ValueError("give a path below the top, such as .db.password")
        node: Any = self.parsed.docs[0]
        for kind, item in steps[:-1]:
            try:
                node = node[item]
            except KeyError:
                if not create or kind != "key":
                    raise ConfigError(f"{self.name}: no value at {expr}") from None
                node[item] = self.parsed.handler.new_mapping()
                node = node[item]
            except (IndexError, TypeError):
                raise ConfigError(f"{self.name}: no value at {expr}") from None
        return node, steps[-1][1]

    def set_value(self, expr: str, value: Any) -> None:
        """Sets the value at path ``expr`` (``.a.b``), creating missing mappings.

        Raises:
            ConfigError: the path does not lead to a mapping or sequence item.
        """
        parent, key = self._locate(expr, create=True)
        try:
            old = parent[key] if key in parent or isinstance(key, int) else None
            entry = Entry(LEAF, (), b"", parent, key)
            entry.set(value)
        except (IndexError, TypeError):
            raise ConfigError(f"{self.name}: cannot set {expr}") from None
        relayout = getattr(self.parsed.handler, "relayout", None)
        if relayout is not None and old is not None:
            relayout(entry, old)

    def unset_value(self, expr: str) -> None:
        """Removes the value at path ``expr``.

        Raises:
            ConfigError: there is none.
        """
        parent, key = self._locate(expr, create=False)
        try:
            del parent[key]
        except (KeyError, IndexError, TypeError):
            raise ConfigError(f"{self.name}: no value at {expr}") from None

    def close(self) -> None:
        """Wipes the data key."""
        wipe(self.key)

    def __enter__(self) -> Opened:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _named(name: str) -> DecryptionError:
    return DecryptionError(
        f"{name}: decryption failed: the document was altered (a value, key, order or the "
        "metadata), or its key or context is wrong"
    )


def _replace(parsed: Parsed, e: Entry, node: Any, replaced: dict[int, Any]) -> None:
    old = e.value
    if anchor_of(old):
        replaced[id(old)] = node
    e.set(node)
    relayout = getattr(parsed.handler, "relayout", None)
    if relayout is not None:
        relayout(e, old)


def _plan(parsed: Parsed, name: str, rules: ClearRules) -> tuple[list[Entry], frozenset[int]]:
    secrets = secret_documents(parsed.docs) if rules.kubernetes_secret else frozenset()
    return walk(parsed.docs, name), secrets


def seal(  # noqa: PLR0917 - the document and everything it is sealed with
    parsed: Parsed,
    name: str,
    key: bytes | bytearray,
    header: Header,
    rules: ClearRules,
    previous: Mapping[bytes, tuple[bytes, str]] | None = None,
) -> None:
    """Replaces every encrypted leaf of ``parsed`` by its token, then adds the metadata
    and MAC. ``previous`` tokens are reused for values that did not change.

    Raises:
        ConfigError: the document already has an ``envelope`` key (already encrypted?).
        FormatError: an unsupported value, a value over MAX_VALUE_BYTES.
    """
    top = _top(parsed, name)
    if METADATA_KEY in top:
        raise ConfigError(
            f"{name}: has a top-level '{METADATA_KEY}' key: already encrypted? (the key is "
            "reserved for the metadata)"
        )
    entries, secrets = _plan(parsed, name, rules)
    records: list[tuple[bytes, bytes]] = []
    replaced: dict[int, Any] = {}
    for e in entries:
        if e.kind == ALIAS:
            if id(e.value) in replaced:
                e.set(replaced[id(e.value)])
            continue
        if e.kind != LEAF:
            continue
        if not rules.encrypts(e.path, secrets):
            records.append((b"C", encode_plain(e.value)))
            continue
        plain = encode_plain(e.value)
        if len(plain) > MAX_VALUE_BYTES:
            raise FormatError(f"{name}: the value at {format_path(e.path)} is too large")
        old = previous.get(e.path_bytes) if previous else None
        token = (
            old[1] if old is not None and old[0] == plain else seal_value(key, e.path_bytes, plain)
        )
        _replace(parsed, e, parsed.handler.token(token, anchor_of(e.value)), replaced)
        records.append((b"E", token.encode()))
    meta = Metadata(header, rules.to_record(), _now())
    meta.mac = compute_mac(key, meta, entry_records(entries, records))
    put_meta(parsed, meta)


def open_parsed(
    parsed: Parsed, name: str, envelope: Envelope, context: Mapping[str, str] | None = None
) -> Opened:
    """Checks the MAC, then decrypts every value of ``parsed`` in place.

    Raises:
        FormatError: not an encrypted document. DecryptionError: tampered, swapped,
            added or removed values, edited metadata, a wrong key or context (the
            message names the file, never a value). KeyUnavailableError, KmsError: as
            :meth:`Envelope.decrypt`.
    """
    meta = take_meta(parsed, name)
    try:
        rules = ClearRules.from_record(meta.rules, name)
    except ConfigError:
        raise _named(name) from None
    entries, secrets = _plan(parsed, name, rules)
    records: list[tuple[bytes, bytes]] = []
    encrypted: list[Entry] = []
    for e in entries:
        if e.kind != LEAF:
            continue
        if rules.encrypts(e.path, secrets):
            if not is_token(e.value):
                raise _named(name)
            records.append((b"E", str(e.value).encode()))
            encrypted.append(e)
        else:
            records.append((b"C", encode_plain(e.value)))
    try:
        key = envelope.open_document_key(meta.header, context)
    except DecryptionError as exc:
        if type(exc) is DecryptionError:
            raise _named(name) from None
        raise
    opened = Opened(name, parsed, meta, key)
    try:
        check_mac(key, meta, entry_records(entries, records), name)
        todo = {id(e) for e in encrypted}
        replaced: dict[int, Any] = {}
        for e in entries:
            if e.kind == ALIAS and id(e.value) in replaced:
                e.set(replaced[id(e.value)])
            if id(e) not in todo:
                continue
            token = str(e.value)
            try:
                plain = open_value(key, e.path_bytes, token)
                code, value = decode_plain(plain)
            except DecryptionError:
                raise _named(name) from None
            node = parsed.handler.restore(code, value, anchor_of(e.value))
            _replace(parsed, e, node, replaced)
            opened.previous[e.path_bytes] = (plain, token)
    except BaseException:
        opened.close()
        raise
    return opened
