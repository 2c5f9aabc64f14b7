"""Every test under tests/fuzz/ carries the ``fuzz`` marker (``-m fuzz`` runs only them),
and a time limit that grows with the example budget: a bigger ``ENVELOPE_FUZZ_EXAMPLES``
(CI's) must not turn a slow-but-passing property (scrypt on every passphrase-protected
keyring example) into a pytest-timeout failure."""

from __future__ import annotations

import os

import pytest

from tests.fuzz.budget import EXAMPLES

#: Seconds per test: the suite's default 120 s, or 0.12 s an example if more.
TIMEOUT = max(120.0, 0.12 * EXAMPLES)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/fuzz/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.fuzz)
            item.add_marker(pytest.mark.timeout(TIMEOUT))
