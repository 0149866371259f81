"""SqlHostStore.prefetch() (PostgreSQL, issue 12): a batch's terminals, duplicate checks and
transaction ids read ahead in one round trip, its writes in psycopg's pipeline mode. What it
answers must be exactly what the database holds; a failure inside pipeline mode must leave the
unit to be run again on the plain path."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from test_kept_rows import PAN, TID, _sale  # tests/store is on sys.path (pytest prepend mode)

from posgate.store.database import Database
from posgate.store.demo import provision_demo
from posgate.store.testing import pg_available, temp_pg_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_db(tmp_path, monkeypatch) -> Iterator[Database]:
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    monkeypatch.setenv("POSGATE_MASTER_KEY_FILE", str(tmp_path / "master.key"))
    with temp_pg_database() as url:
        db = Database.open(url)
        provision_demo(db.engine, db.keyring)
        yield db
        db.close()


@pytest.fixture
def worker(pg_db):
    """A commit worker's connection: units run on the driver, in pipeline mode, read ahead."""
    conn = pg_db.engine.connect()
    store = pg_db.store(conn, driver=True)

    @contextmanager
    def unit(keys, inserts=4):
        try:
            with store.driver.pipeline() as pipeline:
                store.begin_unit()
                store.prefetch(keys, inserts, pipeline)
                yield store
        except BaseException:
            store.end_pipeline()
            store.driver.rollback()
            store.forget()
            raise
        store.end_pipeline()
        store.driver.commit()

    yield store, unit
    conn.close()


def test_read_ahead_answers_as_the_database_would(pg_db, worker):
    store, unit = worker
    with pg_db.unit_of_work() as other:
        first_id = other.insert_transaction(_sale(other, "000007"))
        plain = other.terminal(TID)
    keys = [(TID, "000001", "000007"), (TID, "000001", "000008"), ("99999999", "000001", "000001"), None]
    with unit(keys) as st:
        assert st.terminal(TID) == plain  # the row read ahead (and locked) gives the same record
        assert [r.id for r in st.find_by_stan(TID, "000001", "000007")] == [first_id]  # on file: read
        assert st.find_by_stan(TID, "000001", "000008") == []  # known absent
        assert ("99999999", "000001", "000001") not in st._absent  # an unknown terminal is not locked: not trusted
        new_id = st.insert_transaction(_sale(st, "000008"))
        newer = st.insert_transaction(_sale(st, "000009"))
        assert first_id < new_id < newer  # ids drawn from the sequence, in order
        # our own insert: found now (the key left the absent set), even before a sync
        assert [r.id for r in st.find_by_stan(TID, "000001", "000008")] == [new_id]
        st.update_terminal(TID, mac_failures=3)
        assert st.terminal(TID).mac_failures == 3  # an update drops the row read ahead
    with pg_db.unit_of_work() as other:
        assert [r.stan for r in other.find_by_stan(TID, "000001", "000008")] == ["000008"]
        assert other.terminal(TID).mac_failures == 3


def test_a_failure_in_pipeline_mode_rolls_back_the_unit(pg_db, worker):
    store, unit = worker
    with pytest.raises(Exception) as raised:
        with unit([(TID, "000001", "000021")]) as st:
            st.insert_transaction(_sale(st, "000021"))
            st.insert_transaction(_sale(st, "000021"))  # the same message key twice: refused by the database
            st.card(st.pan_hash(PAN))  # the error surfaces at the next read, not at the INSERT
    assert type(raised.value).__name__ == "UniqueViolation"
    with unit([(TID, "000001", "000021")]) as st:  # nothing kept from the failed unit
        assert st.find_by_stan(TID, "000001", "000021") == []


def test_only_for_postgresql(tmp_path, monkeypatch):
    monkeypatch.setenv("POSGATE_MASTER_KEY_FILE", str(tmp_path / "k"))
    db = Database.open(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        with db.engine.connect() as conn, pytest.raises(RuntimeError):
            db.store(conn, driver=True).prefetch([], 1)
    finally:
        db.close()
