"""Alembic environment for posgate: the tables of ``posgate.store.schema`` (and the console's).

Run by :func:`posgate.store.migrate.upgrade` (``posgate db upgrade``, ``posgate serve``) with a
connection handed in through ``config.attributes["connection"]``, or by the ``alembic`` command
with ``sqlalchemy.url`` from ``alembic.ini``. On PostgreSQL an advisory lock serialises the
upgrade, so several host processes may start at once on one database.
"""

from __future__ import annotations

import importlib
from typing import Any

from alembic import context
from sqlalchemy import text

from posgate.store.engine import make_engine
from posgate.store.schema import metadata

for _module in ("posgate.store.console_schema", "posgate.store.clearing_schema", "posgate.store.payouts_schema"):
    try:  # the console's, clearing's and the payouts' tables live on the same metadata, in their own modules
        importlib.import_module(_module)
    except ModuleNotFoundError as e:
        if e.name != _module:
            raise

MIGRATION_LOCK = 0x706F7367  # "posg": pg_advisory_xact_lock key


def _run(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(context.config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("posgate migrations run online only: posgate db upgrade --db URL")
run_migrations_online()
