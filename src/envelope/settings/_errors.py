"""The one formatter of validation errors: field path, problem, fix, did-you-mean.

It reads the records of a settings :class:`~envelope.settings._schema.ValidationError`
and of a :class:`pydantic.ValidationError` (``envelope init``'s config, which nests the
settings models) alike; neither pydantic nor its models are imported here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from envelope.errors import ConfigError
from envelope.settings._schema import SETTINGS_PROBLEMS

__all__ = ["config_error", "fields_at"]


class _Problems(Protocol):
    def errors(self) -> Sequence[Mapping[str, Any]]: ...


def _models_in(annotation: Any) -> list[type]:
    found: list[type] = []
    stack = [annotation]
    while stack:
        ann = stack.pop()
        if isinstance(ann, type) and hasattr(ann, "model_fields"):
            found.append(ann)
        stack.extend(getattr(ann, "__args__", ()))
    return found


def fields_at(model: type, loc: tuple[Any, ...]) -> list[str]:
    """The field names allowed where ``loc``'s last element sits (for did-you-mean hints);
    ``model`` is a settings model or a pydantic model (both list ``model_fields``)."""
    current: type | None = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        field = current.model_fields.get(str(part))  # type: ignore[attr-defined]
        if field is None:
            return []
        models = _models_in(field.annotation)
        current = models[0] if models else None
    return list(current.model_fields) if current is not None else []  # type: ignore[attr-defined]


def _flat(errors: Sequence[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """The records, a nested settings model's (:data:`SETTINGS_PROBLEMS`) each in turn."""
    for err in errors:
        if err["type"] == SETTINGS_PROBLEMS:
            for inner in _flat(err["ctx"]["errors"]):
                yield {**inner, "loc": (*err["loc"], *inner["loc"])}
        else:
            yield err


def _line(err: Mapping[str, Any], model: type, hint: Callable[[str], str]) -> str:
    loc = tuple(err["loc"])
    ctx = err.get("ctx") or {}
    if err["type"] == "field_problem":
        loc = (*loc, *str(ctx["field"]).split("."))
    path = ".".join(str(p) for p in loc) or "(top level)"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        import difflib  # noqa: PLC0415 - only for a misspelt key

        allowed = fields_at(model, loc)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        fix = f"; did you mean '{close[0]}'?" if close else f"; allowed: {', '.join(allowed)}"
        msg = f"unknown field '{loc[-1]}'{fix}"
    elif err["type"] == "missing":
        msg = "this field is required"
    return f"  {path}{hint(path)}: {msg}"


def config_error(
    exc: _Problems,
    model: type,
    source: str,
    hint: Callable[[str], str] = lambda _path: "",
) -> ConfigError:
    """A :class:`ConfigError` with one line per problem of ``exc``.

    Args:
        exc: what validation found (a settings or a pydantic ValidationError).
        model: the model validated (to list the fields a misspelt key could mean).
        source: where the values came from (a file name, "the command line").
        hint: extra text after a field's path, such as the flag and environment variable.
    """
    lines = [f"invalid envelope {source}:"]
    lines += [_line(err, model, hint) for err in _flat(exc.errors())]
    return ConfigError("\n".join(lines))
