"""Database engines: SQLite (the embedded default) and PostgreSQL, set up for a payments host.

SQLite: WAL journal, ``synchronous=FULL`` (a commit is on disk when it returns: power-safe),
a busy timeout, foreign keys on. Python's sqlite3 module opens transactions implicitly and
behind the application's back, which breaks SAVEPOINTs; we switch that off and emit ``BEGIN``
ourselves. Write transactions must take the write lock up front (``BEGIN IMMEDIATE``), or two
connections that both read then write fail with "database is locked" instead of waiting; a
connection that only reads can ask for a deferred ``BEGIN`` with
``conn.execution_options(sqlite_readonly=True)``.

PostgreSQL: ``postgresql://`` URLs are mapped to psycopg 3 (``postgresql+psycopg://``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

DEFAULT_URL = "sqlite:///posgate.db"
SQLITE_BUSY_TIMEOUT_MS = 10_000


def normalise_url(url: str | None) -> str:
    """The SQLAlchemy URL for ``url``: a default file, a bare path, or a PostgreSQL URL made psycopg 3."""
    if not url:
        return DEFAULT_URL
    if "://" not in url:  # a bare file path
        return f"sqlite:///{url}"
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL (None for PostgreSQL or an in-memory SQLite)."""
    u = make_url(normalise_url(url))
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str | None = None, **kw: Any) -> Engine:
    """An engine for ``url`` (default ``sqlite:///posgate.db`` in the working directory)."""
    full = normalise_url(url)
    u = make_url(full)
    if u.get_backend_name() == "sqlite":
        connect_args = dict(kw.pop("connect_args", {}))
        connect_args.setdefault("check_same_thread", False)  # each connection is used by one thread at a time
        connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        connect_args.setdefault("cached_statements", 512)
        engine = create_engine(full, connect_args=connect_args, **kw)
        _configure_sqlite(engine)
        return engine
    kw.setdefault("pool_pre_ping", True)
    return create_engine(full, **kw)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # no implicit BEGIN from the driver; see _on_begin
        cur = dbapi_conn.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        readonly = conn.get_execution_options().get("sqlite_readonly", False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")
