"""The host keeps the AID table (IC parameters) between requests, read again only when it
changed: a contactless tap no longer reads and converts the whole table each time, and a change
made by another process (``posgate admin aid``, the console's /ic-params: here another connection)
is seen by the very next tap — on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

from posgate.dialect.ic_params import DEMO_AIDS
from posgate.store import ic_params
from posgate.store.demo import provision_demo


def _limit(store, aid: str) -> int | None:
    """What CheckNoCvmLimit (posgate.host.participants.ic_params) looks up for a tap."""
    found = next((a for a in store.ic_aids() if a.aid == aid), None)
    return None if found is None else found.cvm_limit


def test_a_change_by_another_connection_is_seen_by_the_next_tap(db) -> None:
    provision_demo(db.engine, db.keyring)
    aid = DEMO_AIDS[0].aid
    with db.engine.connect() as conn:  # the host's commit worker: one connection, unit after unit
        host = db.store(conn)
        with conn.begin():
            assert _limit(host, aid) == DEMO_AIDS[0].cvm_limit
        with db.engine.begin() as admin:  # the console / posgate admin aid add
            ic_params.put_aid(admin, replace(DEMO_AIDS[0], cvm_limit=30000), actor="test")
        with conn.begin():
            assert _limit(host, aid) == 30000
        with db.engine.begin() as admin:  # posgate admin aid remove
            ic_params.remove_aid(admin, aid, actor="test")
        with conn.begin():
            assert _limit(host, aid) is None
        with db.engine.begin() as admin:
            ic_params.put_aid(admin, DEMO_AIDS[0], actor="test")
        with conn.begin():
            assert _limit(host, aid) == DEMO_AIDS[0].cvm_limit


def test_unchanged_aids_are_not_read_again(tmp_path, monkeypatch) -> None:
    from posgate.store.database import Database

    db = Database.open(f"sqlite:///{tmp_path / 'cache.db'}")
    try:
        provision_demo(db.engine, db.keyring)
        with db.engine.connect() as conn:
            host = db.store(conn)
            with conn.begin():
                host.ic_aids()
            statements: list[str] = []
            conn.connection.driver_connection.set_trace_callback(statements.append)
            for _ in range(3):
                with conn.begin():
                    assert _limit(host, DEMO_AIDS[0].aid) == DEMO_AIDS[0].cvm_limit
            conn.connection.driver_connection.set_trace_callback(None)
        assert statements and not [q for q in statements if "FROM ic_aids" in q], statements
    finally:
        db.close()
