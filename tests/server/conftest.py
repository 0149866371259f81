"""Fixtures for the server tests: a host on a real socket over a migrated database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from serverkit import close_clients

from posgate.host.server import Host, ServerConfig, echo_process
from posgate.store.database import Database
from posgate.store.testing import pg_available, temp_pg_database


@pytest.fixture(autouse=True)
async def _close_clients():
    yield
    await close_clients()


@pytest.fixture(autouse=True)
def _master_key(tmp_path, monkeypatch):
    monkeypatch.setenv("POSGATE_MASTER_KEY_FILE", str(tmp_path / "master.key"))


@pytest.fixture(params=[pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'posgate.db'}"
        return
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    with temp_pg_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'posgate.db'}"


@pytest.fixture
def make_host(db_url):
    """``await make_host(**config)``: an echo host listening on a free port (stopped at teardown)."""
    hosts: list[Host] = []
    dbs: list[Database] = []

    async def make(processor=echo_process, **cfg) -> Host:
        db = Database.open(db_url)
        dbs.append(db)
        host = Host(db, ServerConfig(port=0, **cfg), processor=processor, issuer_factory=None)
        await host.start()
        hosts.append(host)
        return host

    yield make
    for db in dbs:
        db.close()


def pytest_asyncio_loop_factories(config, item):
    """The server runs on uvloop in production: test it there (its transports differ in type)."""
    import uvloop

    return {"uvloop": uvloop.new_event_loop}
