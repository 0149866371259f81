"""Database access for the console: one engine, read-only and write units of work.

On SQLite the store's engine opens every transaction with ``BEGIN IMMEDIATE`` (the write lock)
unless asked for a read-only one; page loads only read, so they ask for it and never make the
host's group commits wait.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event

import posgate.store.console_schema  # noqa: F401  (registers the console tables on metadata)
from posgate.store.schema import metadata


def make_engine(url: str | None) -> Engine:
    """The store's engine factory when present; else a local one with the same SQLite settings."""
    try:
        from posgate.store.engine import make_engine as store_make_engine
    except ModuleNotFoundError:  # pragma: no cover - the store part always ships it now
        return _local_engine(url or "sqlite:///posgate.db")
    return store_make_engine(url)


def _local_engine(url: str) -> Engine:  # pragma: no cover - fallback only
    engine = create_engine(url, connect_args={"check_same_thread": False} if url.startswith("sqlite") else {})
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    return engine


class Database:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn = conn.execution_options(sqlite_readonly=True)
            with conn.begin():
                yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn


def create_schema(engine: Engine) -> None:
    """Bring a database to the current schema: the store's migrations when available, else
    ``create_all`` (tests of a fresh checkout before the store's migrations landed)."""
    try:
        from posgate.store.migrate import upgrade
    except ModuleNotFoundError:  # pragma: no cover
        metadata.create_all(engine)
        return
    upgrade(engine)
