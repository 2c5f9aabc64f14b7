"""A settings model as the type of a pydantic model's field (``envelope init``'s config).

Imported only by pydantic, when it builds such a model's schema: the settings model
validates the field's value itself (with the pydantic validation context), and reports
its problems as one :data:`~envelope.settings._schema.SETTINGS_PROBLEMS` error whose
``ctx["errors"]`` are its records; :func:`~envelope.settings.config_error` shows them
one line each, located under the field.
"""

from __future__ import annotations

from typing import Any

from pydantic_core import PydanticCustomError, core_schema

from envelope.settings._problems import SETTINGS_PROBLEMS, ValidationError

__all__ = ["core_schema_for"]


def core_schema_for(model: type[Any]) -> core_schema.CoreSchema:
    """The pydantic-core schema of a field of type ``model`` (a settings
    :class:`~envelope.settings._schema.Model`; typed loosely so that this module does not
    import the schema module, which imports it on use)."""

    def validate(value: Any, info: core_schema.ValidationInfo) -> Any:
        try:
            return model.model_validate(value, context=info.context)
        except ValidationError as exc:
            problems = exc.errors()
            summary = "; ".join(str(e["msg"]) for e in problems)
            raise PydanticCustomError(
                SETTINGS_PROBLEMS, "{summary}", {"summary": summary, "errors": problems}
            ) from None

    return core_schema.with_info_plain_validator_function(validate)
