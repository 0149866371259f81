"""Databases for tests: a fresh SQLite file, or a fresh PostgreSQL database that is dropped after.

PostgreSQL is looked for at ``$POSGATE_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/test``,
the server CI provides); each test database gets a unique name, so suites running side by side
on one server never see each other's tables.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

PG_ADMIN_URL = os.environ.get("POSGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@cache
def pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(_conninfo(PG_ADMIN_URL), connect_timeout=2):
            return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False


@contextmanager
def temp_pg_database(prefix: str = "posgate_t") -> Iterator[str]:
    """A new, empty PostgreSQL database; yields its URL and drops it afterwards."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = _conninfo(PG_ADMIN_URL)
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
