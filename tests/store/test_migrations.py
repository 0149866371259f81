"""Migrations build exactly the schema the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, text
from sqlalchemy.exc import DBAPIError

from posgate.store import schema
from posgate.store.engine import make_engine
from posgate.store.migrate import current_revisions, head_revisions, upgrade


# SQLite's reflection cannot read the expression index of migration 0013 (a card's last four
# digits), and says so twice; PostgreSQL's compares it.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index:sqlalchemy.exc.SAWarning")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index:UserWarning")
def test_migrations_match_metadata(db_url):
    engine = make_engine(db_url)
    upgrade(engine)
    upgrade(engine)  # a second run is a no-op
    assert current_revisions(engine) == head_revisions()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), schema.metadata)
    assert diff == []
    engine.dispose()


def _indexes(engine) -> set[str]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            return set(conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'")).scalars())
        return set(conn.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'transactions'")).scalars())


def test_the_last_four_digits_index_survives_later_migrations_both_ways(db_url):
    """SQLite cannot reflect an expression index, so a later migration that copies the
    transactions table (alembic's batch mode) silently drops 0013's index on a card's last four
    digits, and 0013's own downgrade then fails: later migrations alter the table in place."""
    from alembic import command

    from posgate.store.migrate import alembic_config

    engine = make_engine(db_url)
    upgrade(engine)
    assert "ix_transactions_pan_last4" in _indexes(engine)
    cfg = alembic_config()
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0013_growth_indexes")
        conn.commit()
    assert "ix_transactions_pan_last4" in _indexes(engine)
    upgrade(engine)
    assert "ix_transactions_pan_last4" in _indexes(engine)
    engine.dispose()


def test_revision_ids_and_downgrade(db_url):
    engine = make_engine(db_url)
    upgrade(engine, "0001_core")
    assert current_revisions(engine) == ("0001_core",)
    tables = set(inspect(engine).get_table_names())
    assert {"terminals", "transactions", "audit_log", "counters"} <= tables
    with engine.connect() as conn:
        counters = dict(conn.execute(text("SELECT name, value FROM counters")).all())
    assert counters == {"rrn": 0, "auth_code": 0}
    from alembic import command

    from posgate.store.migrate import alembic_config

    cfg = alembic_config()
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
        conn.commit()
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()


def test_audit_log_is_append_only(db_url):
    from datetime import UTC, datetime

    engine = make_engine(db_url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(insert(schema.audit_log), {"at": datetime.now(UTC), "actor": "test", "action": "x"})
    for sql in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(sql))
    if engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text("TRUNCATE audit_log"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT actor FROM audit_log")).scalars().all() == ["test"]
    engine.dispose()
