"""The fuzz tests' example budget: bounded in the default suite, bigger in CI
(``ENVELOPE_FUZZ_EXAMPLES=N``, which ``.ci/run`` sets)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("ENVELOPE_FUZZ_EXAMPLES", "120"))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)
