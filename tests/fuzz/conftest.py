"""Every test under tests/fuzz/ carries the ``fuzz`` marker (``-m fuzz`` runs only them)."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/fuzz/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.fuzz)
