"""Fixtures live in :mod:`tests.console.helpers` (imported by the tests too)."""

from .helpers import browser, env, live, page, template_db  # noqa: F401
from .upstream_kit import linked  # noqa: F401
