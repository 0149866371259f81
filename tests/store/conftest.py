"""Fixtures for the storage tests: a migrated database on SQLite and (when reachable) PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from posgate.store.database import Database
from posgate.store.testing import pg_available, temp_pg_database

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(autouse=True)
def _master_key(tmp_path, monkeypatch):
    monkeypatch.setenv("POSGATE_MASTER_KEY_FILE", str(tmp_path / "master.key"))


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'posgate.db'}"
        return
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    with temp_pg_database() as url:
        yield url


@pytest.fixture
def db(db_url) -> Iterator[Database]:
    database = Database.open(db_url)
    yield database
    database.close()
