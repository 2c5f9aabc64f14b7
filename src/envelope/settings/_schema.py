"""The settings models' base: fields declared once (type, default, checks), no pydantic.

A subclass of :class:`Model` declares its fields as annotated class attributes, each with
its default or a :func:`setting` (default, ``before``/``after`` checks, ``gt``), and may
override :meth:`Model._check` for rules across fields. Instances are immutable, compare
and hash by value, pickle, and are validated as pydantic's default (lax) mode validates:
unknown keys refused, strings from the environment coerced where a type allows it, every
problem reported (pydantic's error records, see :class:`ValidationError`).

Inside a pydantic model (``envelope init``'s config) a settings model validates itself
(:mod:`envelope.settings._pydantic`), with the same messages and locations.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar, dataclass_transform, get_type_hints, overload

from envelope.settings._problems import SETTINGS_PROBLEMS, ValidationError
from envelope.settings._types import INVALID, Check, Loc, check_for, error, greater_than

__all__ = [
    "SETTINGS_PROBLEMS",
    "Field",
    "Model",
    "ValidationError",
    "field_problem",
    "setting",
]

T = TypeVar("T")
M = TypeVar("M", bound="Model")
_REQUIRED: Any = object()


class _Problem(Exception):
    """A rule across fields broken, reported at ``field`` (relative to the model)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def field_problem(field: str, message: str) -> Exception:
    """What :meth:`Model._check` raises: a problem reported at ``field`` (a dotted path
    relative to the model), shown as ``message``."""
    return _Problem(field, message)


Before = Callable[[Any], Any]


class Field:
    """One declared field: its type, default and checks (``model_fields`` values)."""

    __slots__ = ("after", "annotation", "before", "check", "default", "default_factory", "gt")

    def __init__(
        self,
        default: Any = _REQUIRED,
        default_factory: Callable[[], Any] | None = None,
        before: Before | None = None,
        after: Before | None = None,
        gt: float | None = None,
    ) -> None:
        self.default, self.default_factory, self.gt = default, default_factory, gt
        self.before = before  # on the raw value; ValueError: a problem
        self.after = after  # on the typed value; ValueError: a problem
        self.annotation: Any = None
        self.check: Check | None = None

    def __repr__(self) -> str:
        return f"Field(annotation={self.annotation!r}, required={self.is_required()})"

    def bind(self, annotation: Any) -> None:
        """Sets the field's type (a Model subclass does, once)."""
        check = check_for(annotation)
        self.annotation = annotation
        self.check = check if self.gt is None else greater_than(self.gt, check)

    def is_required(self) -> bool:
        """No default."""
        return self.default is _REQUIRED and self.default_factory is None

    def get_default(self) -> Any:
        """A default value (a new one from ``default_factory``)."""
        return self.default_factory() if self.default_factory is not None else self.default

    def validate(
        self, value: Any, loc: Loc, errors: list[dict[str, Any]], context: Mapping[str, Any]
    ) -> Any:
        """``value`` checked and coerced, or INVALID (problems appended to ``errors``)."""
        assert self.check is not None  # bound by Model.__init_subclass__
        raw = value
        try:
            if self.before is not None:
                value = self.before(value)
            value = self.check(value, loc, errors, context)
            if value is not INVALID and self.after is not None:
                value = self.after(value)
        except ValueError as exc:
            msg = f"Value error, {exc}"
            return error(errors, "value_error", loc, msg, raw, ctx={"error": exc})
        return value


@overload
def setting(
    *, default: T, before: Before | None = ..., after: Before | None = ..., gt: float | None = ...
) -> T: ...
@overload
def setting(
    *,
    default_factory: Callable[[], T],
    before: Before | None = ...,
    after: Before | None = ...,
    gt: float | None = ...,
) -> T: ...
@overload
def setting(
    *, before: Before | None = ..., after: Before | None = ..., gt: float | None = ...
) -> Any: ...
def setting(
    *,
    default: Any = _REQUIRED,
    default_factory: Callable[[], Any] | None = None,
    before: Before | None = None,
    after: Before | None = None,
    gt: float | None = None,
) -> Any:
    """A field's default and checks: ``before`` sees the raw value, ``after`` the typed one
    (either raises ValueError for a problem); ``gt``: the value must be greater."""
    return Field(default, default_factory, before, after, gt)


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(setting,))
class Model:
    """An immutable settings model (see the module docstring)."""

    model_fields: ClassVar[Mapping[str, Field]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hints = get_type_hints(cls)
        fields: dict[str, Field] = {}
        for name in inspect.get_annotations(cls):
            declared = cls.__dict__.get(name, _REQUIRED)
            field = declared if isinstance(declared, Field) else Field(default=declared)
            field.bind(hints[name])
            fields[name] = field
            if name in cls.__dict__:
                delattr(cls, name)
        cls.model_fields = fields

    def __init__(self, **values: Any) -> None:
        """Validates ``values`` as :meth:`model_validate` does (no context).

        Raises:
            ValidationError: invalid values (every problem).
        """
        errors: list[dict[str, Any]] = []
        found = type(self).validate_at(values, (), errors, {})
        if errors:
            raise ValidationError(type(self).__name__, errors)
        object.__setattr__(self, "__dict__", dict(found.__dict__))

    def _check(self, context: Mapping[str, Any]) -> None:
        """Rules across fields, once every field is valid (none here).

        Raises:
            Exception: :func:`field_problem` or ValueError for a broken rule.
        """

    @classmethod
    def validate_at(
        cls, data: Any, loc: Loc, errors: list[dict[str, Any]], context: Mapping[str, Any]
    ) -> Any:
        """``data`` (a mapping or an instance) as an instance, or INVALID with problems
        appended to ``errors`` (located under ``loc``)."""
        if isinstance(data, cls):
            return data
        if not isinstance(data, Mapping):
            msg = f"Input should be a valid dictionary or instance of {cls.__name__}"
            return error(errors, "model_type", loc, msg, data, ctx={"class_name": cls.__name__})
        before = len(errors)
        values: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            if name in data:
                values[name] = field.validate(data[name], (*loc, name), errors, context)
            elif field.is_required():
                error(errors, "missing", (*loc, name), "Field required", data)
            else:
                values[name] = field.get_default()
        for key, value in data.items():
            if key not in cls.model_fields:
                msg = "Extra inputs are not permitted"
                error(errors, "extra_forbidden", (*loc, key), msg, value)
        if len(errors) > before:
            return INVALID
        made = cls._made(values)
        try:
            made._check(context)
        except _Problem as p:
            ctx = {"field": p.field, "message": p.message}
            return error(errors, "field_problem", loc, p.message, data, ctx=ctx)
        except ValueError as exc:
            return error(
                errors, "value_error", loc, f"Value error, {exc}", data, ctx={"error": exc}
            )
        return made

    @classmethod
    def _made(cls: type[M], values: Mapping[str, Any]) -> M:
        made = object.__new__(cls)
        object.__setattr__(made, "__dict__", dict(values))
        return made

    @classmethod
    def model_validate(cls: type[M], obj: Any, *, context: Mapping[str, Any] | None = None) -> M:
        """``obj`` (a mapping of field values, or an instance) validated.

        ``context`` reaches every model's :meth:`_check` (``envelope.settings`` reads
        its ``discover`` key).

        Raises:
            ValidationError: invalid (every problem, located by field path).
        """
        errors: list[dict[str, Any]] = []
        found = cls.validate_at(obj, (), errors, context or {})
        if errors:
            raise ValidationError(cls.__name__, errors)
        return found  # type: ignore[no-any-return]

    def model_copy(self: M, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> M:
        """A copy with ``update``'s fields replaced, not validated (as pydantic's)."""
        values = copy.deepcopy(self.__dict__) if deep else dict(self.__dict__)
        return type(self)._made({**values, **(update or {})})

    def model_dump(self, *, mode: str = "python", exclude_defaults: bool = False) -> dict[str, Any]:
        """The fields as a nested dict; ``mode="json"``: tuples as lists;
        ``exclude_defaults``: without the fields equal to their default."""
        out: dict[str, Any] = {}
        for name, field in type(self).model_fields.items():
            value = self.__dict__[name]
            if exclude_defaults and not field.is_required() and value == field.get_default():
                continue
            if isinstance(value, Model):
                value = value.model_dump(mode=mode, exclude_defaults=exclude_defaults)
            elif isinstance(value, tuple) and mode == "json":
                value = list(value)
            out[name] = value
        return out

    def __setattr__(self, name: str, value: Any) -> None:
        loc = (name,)
        raise ValidationError(
            type(self).__name__,
            [{"type": "frozen_instance", "loc": loc, "msg": "Instance is frozen", "input": value}],
        )

    def __delattr__(self, name: str) -> None:
        self.__setattr__(name, None)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Model):
            return NotImplemented
        return type(other) is type(self) and other.__dict__ == self.__dict__

    def __hash__(self) -> int:
        return hash((type(self), *self.__dict__.values()))

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return f"{type(self).__name__}({shown})"

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """For a pydantic model with a field of this type: validated by this model."""
        from envelope.settings._pydantic import core_schema_for  # noqa: PLC0415 - on use

        return core_schema_for(cls)
