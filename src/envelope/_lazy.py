"""Package attributes imported on first use (PEP 562), so that a command loads only the
modules it uses (start-up time, docs/benchmarks.md)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_getattr"]


def lazy_getattr(
    package: str, names: Mapping[str, str], namespace: dict[str, Any]
) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``.

    Args:
        package: the package's ``__name__``.
        names: each lazy attribute and the submodule that defines it (``"_aws"``).
        namespace: the package's ``globals()``: an attribute once imported is stored
            there, so later lookups never come back here.

    Returns:
        The function to assign to the package's ``__getattr__``; it raises
        AttributeError for a name not in ``names``.
    """

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    return __getattr__
