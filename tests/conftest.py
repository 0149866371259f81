"""Shared test configuration. Keep it small: fixtures belong next to the tests that use them
unless several test packages need them."""

from __future__ import annotations

from hypothesis import settings

# Our machines are shared and noisy: a per-example deadline would make property tests flaky
# without telling us anything (speed is measured by benchmarks, never asserted by tests).
settings.register_profile("posgate", deadline=None)
settings.load_profile("posgate")
