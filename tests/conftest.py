"""Shared test configuration. Keep it small: fixtures belong next to the tests that use them
unless several test packages need them."""

from __future__ import annotations

import os

from hypothesis import settings

# Our machines are shared and noisy: a per-example deadline would make property tests flaky
# without telling us anything (speed is measured by benchmarks, never asserted by tests).
settings.register_profile("posgate", deadline=None)
# CI (CI=true) runs the same examples every time: a landing must not hinge on which random
# examples one run drew. Developers' runs keep exploring, and what they find is kept in
# .hypothesis/ and fixed at the cause.
settings.register_profile("posgate-ci", deadline=None, derandomize=True, database=None)
settings.load_profile("posgate-ci" if os.environ.get("CI") else "posgate")
