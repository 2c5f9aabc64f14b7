"""A one-pass parser of well-formed v1 headers (docs/format.md): the hot path of
:func:`envelope._format.message.parse_header`, which falls back to its checked,
field-by-field parser (whose FormatError says what is wrong) whenever this one
returns None. The two accept exactly the same headers
(tests/unit/test_parser_robustness.py compares them on mutated headers)."""

from __future__ import annotations

import struct

from envelope._format.context import (
    MAX_CONTEXT_KEY_BYTES,
    MAX_CONTEXT_PAIRS,
    MAX_CONTEXT_VALUE_BYTES,
    Context,
)
from envelope._format.header import (
    MAX_KEY_ID_BYTES,
    MAX_KEY_SLOTS,
    MAX_PROVIDER_ID_BYTES,
    MAX_SPLIT_ID_BYTES,
    MAX_WRAPPED_BYTES,
    SPLIT_CLUSTER_SECRET,
    SPLIT_THRESHOLD,
    SUITES,
    Header,
    KeySlot,
    SplitDescriptor,
)

__all__ = ["parse_well_formed"]

_U16 = struct.Struct(">H").unpack_from


def parse_well_formed(b: bytes) -> Header | None:
    """The header in ``b`` when it is well formed, else None (no reason given): the
    checks of :func:`_parse_checked` over one bytes object with inline offsets, without
    a call per field (a message's header is parsed on every uncached decrypt)."""
    try:
        last = _last_bound
        if last is not None and b.startswith(last[0]):
            # The bound section is self-delimiting: a header that starts with a whole
            # well-formed one has exactly that one (the common case: one context).
            bound, suite, context, split = last
            pos = len(bound)
        else:
            found = _parse_bound(b)
            if found is None:
                return None
            pos, suite, context, split = found
            _remember_bound((b[:pos], suite, context, split))
        slots = _parse_slots_well_formed(b, pos)
    except (IndexError, struct.error, UnicodeDecodeError):
        return None
    return None if slots is None else Header(suite, context, split, slots)


#: The bound section last parsed, with its suite, context and split (replaced whole).
_last_bound: tuple[bytes, int, Context, SplitDescriptor] | None = None


def _remember_bound(found: tuple[bytes, int, Context, SplitDescriptor]) -> None:
    global _last_bound  # noqa: PLW0603 - a one-entry memo, replaced whole
    _last_bound = found


def _parse_bound(b: bytes) -> tuple[int, int, Context, SplitDescriptor] | None:
    """The end, suite, context and split of the well-formed bound section at the start
    of ``b``, else None (or IndexError, struct.error, UnicodeDecodeError)."""
    end = len(b)
    suite, n = _U16(b, 0)[0], _U16(b, 2)[0]
    if suite not in SUITES or n > MAX_CONTEXT_PAIRS:
        return None
    pos, prev = 4, b""  # every key is longer than b"", so the first is in order
    pairs = []
    for _ in range(n):
        klen = _U16(b, pos)[0]
        kb = b[pos + 2 : pos + 2 + klen]
        pos += 2 + klen
        if not 1 <= klen <= MAX_CONTEXT_KEY_BYTES or pos > end or kb <= prev:
            return None
        vlen = _U16(b, pos)[0]
        value = b[pos + 2 : pos + 2 + vlen]
        pos += 2 + vlen
        if vlen > MAX_CONTEXT_VALUE_BYTES or pos > end:
            return None
        pairs.append((kb.decode("utf-8"), value.decode("utf-8")))
        prev = kb
    kind = b[pos]
    pos += 1
    if kind & ~(SPLIT_CLUSTER_SECRET | SPLIT_THRESHOLD):
        return None
    threshold = None
    if kind & SPLIT_THRESHOLD:
        k, m = b[pos], b[pos + 1]
        pos += 2
        if not 1 <= k <= m <= MAX_KEY_SLOTS:
            return None
        threshold = (k, m)
    sid = None
    if kind & SPLIT_CLUSTER_SECRET:
        slen = b[pos]
        raw = b[pos + 1 : pos + 1 + slen]
        pos += 1 + slen
        if not 1 <= slen <= MAX_SPLIT_ID_BYTES or pos > end:
            return None
        sid = raw.decode("ascii")
    return pos, suite, tuple(pairs), SplitDescriptor(sid, threshold)


def _parse_slots_well_formed(b: bytes, pos: int) -> tuple[KeySlot, ...] | None:
    """The well-formed key slots from ``pos`` to the end of ``b``, else None (or an
    exception, as :func:`_parse_bound`)."""
    end = len(b)
    n = b[pos]
    pos += 1
    if not 1 <= n <= MAX_KEY_SLOTS:
        return None
    slots = []
    for _ in range(n):
        plen = b[pos]
        provider = b[pos + 1 : pos + 1 + plen]
        pos += 1 + plen
        klen = _U16(b, pos)[0]
        key_id = b[pos + 2 : pos + 2 + klen]
        pos += 2 + klen
        wlen = _U16(b, pos)[0]
        wrapped = b[pos + 2 : pos + 2 + wlen]
        pos += 2 + wlen
        if (
            not 1 <= plen <= MAX_PROVIDER_ID_BYTES
            or not 1 <= klen <= MAX_KEY_ID_BYTES
            or not 1 <= wlen <= MAX_WRAPPED_BYTES
            or pos > end
        ):
            return None
        slots.append(KeySlot(provider.decode("ascii"), key_id.decode("utf-8"), wrapped))
    return tuple(slots) if pos == end else None
