"""Fixtures for the clearing tests: the acquirer's database (SQLite and, when reachable,
PostgreSQL) with the demo merchants and terminals, and a separate network database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from posgate.store.database import Database
from posgate.store.demo import provision_demo
from posgate.store.testing import pg_available, temp_pg_database

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(autouse=True)
def _master_key(tmp_path, monkeypatch):
    monkeypatch.setenv("POSGATE_MASTER_KEY_FILE", str(tmp_path / "master.key"))


def _url(kind: str, tmp_path, name: str) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / name}"
        return
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    with temp_pg_database("posgate_clr") as url:
        yield url


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return str(request.param)


@pytest.fixture
def db(backend, tmp_path) -> Iterator[Database]:
    for url in _url(backend, tmp_path, "acquirer.db"):
        database = Database.open(url)
        provision_demo(database.engine, database.keyring)
        yield database
        database.close()


@pytest.fixture
def network_url(backend, tmp_path) -> Iterator[str]:
    yield from _url(backend, tmp_path, "network.db")
