"""What invalid settings raise, and the error type a pydantic model reports them under.

Its own module so that the pydantic bridge (:mod:`envelope.settings._pydantic`) and the
schema it bridges (:mod:`envelope.settings._schema`) both import it, not each other.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SETTINGS_PROBLEMS", "ValidationError"]

#: The error type a pydantic model reports a nested settings model's problems under
#: (``ctx["errors"]``: their records, located relative to the field).
SETTINGS_PROBLEMS = "settings_problems"


class ValidationError(ValueError):
    """Settings that do not validate: one pydantic-shaped record per problem.

    Each record of :meth:`errors` has ``type``, ``loc`` (the field's path), ``msg``,
    ``input`` and maybe ``ctx``, as :class:`pydantic.ValidationError` records do.
    """

    def __init__(self, title: str, errors: list[dict[str, Any]]) -> None:
        self.title = title
        self._errors = errors
        n = len(errors)
        lines = [f"{n} validation error{'' if n == 1 else 's'} for {title}"]
        for e in errors:
            if e["loc"]:
                lines.append(".".join(str(p) for p in e["loc"]))
            lines.append(f"  {e['msg']} [type={e['type']}]")
        super().__init__("\n".join(lines))

    def errors(self) -> list[dict[str, Any]]:
        """The problems, in the order found."""
        return [dict(e) for e in self._errors]

    def error_count(self) -> int:
        """How many problems."""
        return len(self._errors)
