"""One database as the host sees it: engine, master key, RRN/auth-code allocator, units of work.

``Database.open(url)`` makes the engine, applies the migrations, loads the master key and checks
that it is the key this database was written with. ``db.unit_of_work()`` yields a
:class:`~posgate.store.sql.SqlHostStore` inside one transaction, committed on exit (rolled back
on an exception): the shape the server's commit worker, the CLI and the tests all use.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.exc import SQLAlchemyError

from posgate.store import schema as s
from posgate.store.engine import make_engine, normalise_url
from posgate.store.keyring import Keyring, KeyringError, load_keyring
from posgate.store.migrate import upgrade
from posgate.store.sql import IdAllocator, SqlHostStore

KEYRING_CHECK = "keyring_check"


def bind_keyring(conn: Connection, keyring: Keyring) -> None:
    """Record the master key's check value in a new database; refuse a key that does not match."""
    stored = conn.execute(select(s.settings.c.value).where(s.settings.c.key == KEYRING_CHECK)).scalar()
    if stored is None:
        conn.execute(insert(s.settings), {"key": KEYRING_CHECK, "value": keyring.check_value})
    elif stored != keyring.check_value:
        raise KeyringError(
            f"the master key file {keyring.path} is not the one this database was written with; "
            "point $POSGATE_MASTER_KEY_FILE at the right file (keys and card numbers cannot be read otherwise)"
        )


def _keyring_check(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            value = conn.execute(select(s.settings.c.value).where(s.settings.c.key == KEYRING_CHECK)).scalar()
    except SQLAlchemyError:  # no settings table yet (not migrated): a new database
        return None
    return None if value is None else str(value)


@dataclass
class Database:
    url: str
    engine: Engine
    keyring: Keyring
    ids: IdAllocator

    @classmethod
    def open(cls, url: str | None = None, *, key_file: str | Path | None = None, migrate: bool = True) -> Database:
        full = normalise_url(url)
        engine = make_engine(full)
        try:
            # First, since a data migration may encrypt with it. A database already written with
            # a master key (a restored backup, a moved file) never gets a new one made for it:
            # that key could read none of its data.
            keyring = load_keyring(key_file, db_url=full, create=_keyring_check(engine) is None)
            if migrate:
                upgrade(engine, keyring=keyring)
            with engine.begin() as conn:
                bind_keyring(conn, keyring)
        except BaseException:
            engine.dispose()
            raise
        return cls(full, engine, keyring, IdAllocator(engine))

    def store(self, conn: Connection, *, driver: bool = False) -> SqlHostStore:
        """A store on ``conn``; ``driver=True``: the caller begins and commits on the DB-API
        connection itself (``store.driver``), bypassing SQLAlchemy's transaction bookkeeping."""
        return SqlHostStore(conn, self.keyring, self.ids, driver=conn.connection.driver_connection if driver else None)

    @contextmanager
    def unit_of_work(self, reserve: int = 16) -> Iterator[SqlHostStore]:
        """One transaction; ``reserve`` RRNs/auth codes are reserved beforehand (see IdAllocator)."""
        self.ids.top_up(reserve)
        with self.engine.connect() as conn, conn.begin():
            yield self.store(conn)

    def close(self) -> None:
        self.engine.dispose()

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"
