"""Value checks for the settings' field types, lax as pydantic's default mode is.

A settings field's annotation becomes one :data:`Check`: it returns the value (coerced:
``"1.5"`` to ``1.5``, a list to a tuple) or :data:`INVALID`, having appended pydantic-shaped
error records (``type``, ``loc``, ``msg``, ``input``, maybe ``ctx``) to ``errors``. Only the
types the settings use are supported: ``str``, ``bool``, ``float``, ``tuple[str, ...]``,
``Literal`` of strings, ``X | None`` and a nested settings model.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, Union, get_args, get_origin

__all__ = ["INVALID", "Check", "Loc", "check_for", "error", "greater_than"]

Loc = tuple[str | int, ...]
#: ``check(value, loc, errors, context)``: the value, or INVALID with errors appended.
Check = Callable[[Any, Loc, list[dict[str, Any]], Mapping[str, Any]], Any]


class _Invalid:
    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()
_TRUE = frozenset(("1", "on", "t", "true", "y", "yes"))
_FALSE = frozenset(("0", "off", "f", "false", "n", "no"))


def error(
    errors: list[dict[str, Any]],
    kind: str,
    loc: Loc,
    msg: str,
    value: Any,
    *,
    ctx: dict[str, Any] | None = None,
) -> Any:
    """Appends one error record (pydantic's shape) and returns :data:`INVALID`."""
    record: dict[str, Any] = {"type": kind, "loc": loc, "msg": msg, "input": value}
    if ctx is not None:
        record["ctx"] = ctx
    errors.append(record)
    return INVALID


def _text(value: Any) -> str | None:
    """A string, or bytes as one (undecodable bytes: a text no number or boolean parses)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode(errors="replace")
    return None


def _str(value: Any, loc: Loc, errors: list[dict[str, Any]], _ctx: Mapping[str, Any]) -> Any:
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode()
        except UnicodeDecodeError:
            msg = "Input should be a valid string, unable to parse raw data as a unicode string"
            return error(errors, "string_unicode", loc, msg, value)
    if not isinstance(value, str):
        return error(errors, "string_type", loc, "Input should be a valid string", value)
    return value


def _bool(value: Any, loc: Loc, errors: list[dict[str, Any]], _ctx: Mapping[str, Any]) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    text = _text(value)
    if text is not None and (text.lower() in _TRUE or text.lower() in _FALSE):
        return text.lower() in _TRUE
    if text is not None or isinstance(value, int):
        msg = "Input should be a valid boolean, unable to interpret input"
        return error(errors, "bool_parsing", loc, msg, value)
    return error(errors, "bool_type", loc, "Input should be a valid boolean", value)


def _float(value: Any, loc: Loc, errors: list[dict[str, Any]], _ctx: Mapping[str, Any]) -> Any:
    if isinstance(value, int | float):
        return float(value)
    text = _text(value)
    if text is None:
        return error(errors, "float_type", loc, "Input should be a valid number", value)
    try:
        return float(text.strip())
    except ValueError:
        msg = "Input should be a valid number, unable to parse string as a number"
        return error(errors, "float_parsing", loc, msg, value)


def greater_than(bound: float, check: Check) -> Check:
    """``check``, then the value must be greater than ``bound`` (pydantic's ``gt``)."""

    def bounded(value: Any, loc: Loc, errors: list[dict[str, Any]], ctx: Mapping[str, Any]) -> Any:
        found = check(value, loc, errors, ctx)
        if found is INVALID or found > bound:
            return found
        msg = f"Input should be greater than {bound}"
        return error(errors, "greater_than", loc, msg, value, ctx={"gt": bound})

    return bounded


def _tuple_of(item: Check) -> Check:
    def tuple_check(
        value: Any, loc: Loc, errors: list[dict[str, Any]], ctx: Mapping[str, Any]
    ) -> Any:
        if not isinstance(value, Iterable) or isinstance(value, str | bytes | bytearray | Mapping):
            return error(errors, "tuple_type", loc, "Input should be a valid tuple", value)
        found = tuple(item(v, (*loc, i), errors, ctx) for i, v in enumerate(value))
        return INVALID if any(v is INVALID for v in found) else found

    return tuple_check


def _literal(choices: tuple[str, ...]) -> Check:
    shown = [repr(c) for c in choices]
    expected = " or ".join([", ".join(shown[:-1]), shown[-1]] if len(shown) > 1 else shown)

    def literal_check(
        value: Any, loc: Loc, errors: list[dict[str, Any]], _ctx: Mapping[str, Any]
    ) -> Any:
        if isinstance(value, str) and value in choices:
            return value
        ctx = {"expected": expected}
        return error(errors, "literal_error", loc, f"Input should be {expected}", value, ctx=ctx)

    return literal_check


def _optional(check: Check) -> Check:
    def optional_check(
        value: Any, loc: Loc, errors: list[dict[str, Any]], ctx: Mapping[str, Any]
    ) -> Any:
        return None if value is None else check(value, loc, errors, ctx)

    return optional_check


_PLAIN: dict[Any, Check] = {str: _str, bool: _bool, float: _float}


def check_for(annotation: Any) -> Check:
    """The check of one field type.

    Raises:
        TypeError: a type the settings layer does not support (a programming error).
    """
    if annotation in _PLAIN:
        return _PLAIN[annotation]
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType) and len(args) == 2 and type(None) in args:
        return _optional(check_for(next(a for a in args if a is not type(None))))
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _tuple_of(check_for(args[0]))
    if origin is Literal and all(isinstance(a, str) for a in args):
        return _literal(args)
    if isinstance(annotation, type) and hasattr(annotation, "validate_at"):
        nested: Check = annotation.validate_at  # a settings model (envelope.settings._schema)
        return nested
    raise TypeError(f"unsupported settings field type: {annotation!r}")
