"""The one formatter of pydantic validation errors: field path, problem, fix, did-you-mean."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from envelope.errors import ConfigError

__all__ = ["config_error", "field_problem", "fields_at"]


def field_problem(field: str, message: str) -> PydanticCustomError:
    """A model-level error reported at ``field`` (relative to the model that raises it)."""
    return PydanticCustomError("field_problem", "{message}", {"field": field, "message": message})


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    stack = [annotation]
    while stack:
        ann = stack.pop()
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            found.append(ann)
        stack.extend(getattr(ann, "__args__", ()))
    return found


def fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names allowed where ``loc``'s last element sits (for did-you-mean hints)."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        models = _models_in(field.annotation)
        current = models[0] if models else None
    return list(current.model_fields) if current is not None else []


def _line(err: Any, model: type[BaseModel], hint: Callable[[str], str]) -> str:
    loc = tuple(err["loc"])
    ctx = err.get("ctx") or {}
    if err["type"] == "field_problem":
        loc = (*loc, *str(ctx["field"]).split("."))
    path = ".".join(str(p) for p in loc) or "(top level)"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        allowed = fields_at(model, loc)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        fix = f"; did you mean '{close[0]}'?" if close else f"; allowed: {', '.join(allowed)}"
        msg = f"unknown field '{loc[-1]}'{fix}"
    elif err["type"] == "missing":
        msg = "this field is required"
    return f"  {path}{hint(path)}: {msg}"


def config_error(
    exc: ValidationError,
    model: type[BaseModel],
    source: str,
    hint: Callable[[str], str] = lambda _path: "",
) -> ConfigError:
    """A :class:`ConfigError` with one line per problem of ``exc``.

    Args:
        exc: what pydantic found.
        model: the model validated (to list the fields a misspelt key could mean).
        source: where the values came from (a file name, "the command line").
        hint: extra text after a field's path, such as the flag and environment variable.
    """
    lines = [f"invalid envelope {source}:"]
    lines += [_line(err, model, hint) for err in exc.errors()]
    return ConfigError("\n".join(lines))
