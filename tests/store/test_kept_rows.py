"""SqlHostStore.keep_rows(): on SQLite the host's writer keeps terminal and card rows from one
unit of work to the next; another connection's commit, our own writes and rollbacks must never
leave a kept row different from the database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import update

from posgate.store import schema as s
from posgate.store.database import Database
from posgate.store.demo import provision_demo

PAN = "6212142000000000012"
TID = "10000001"


@pytest.fixture
def sqlite_db(tmp_path, monkeypatch) -> Iterator[Database]:
    monkeypatch.setenv("POSGATE_MASTER_KEY_FILE", str(tmp_path / "master.key"))
    db = Database.open(f"sqlite:///{tmp_path / 'posgate.db'}")
    provision_demo(db.engine, db.keyring)
    yield db
    db.close()


@pytest.fixture
def writer(sqlite_db):
    """The host's writer: one connection, units begun and committed on the driver, rows kept."""
    conn = sqlite_db.engine.connect()
    store = sqlite_db.store(conn, driver=True)
    store.keep_rows()

    @contextmanager
    def unit(rollback: bool = False):
        cur = store.driver.cursor()
        cur.execute("BEGIN IMMEDIATE")
        store.begin_unit()
        try:
            yield store
        except BaseException:
            store.driver.rollback()
            store.forget()
            raise
        if rollback:
            store.driver.rollback()
            store.forget()
        else:
            store.driver.commit()
        cur.close()

    yield store, unit
    conn.close()


def fresh(db: Database):
    with db.unit_of_work() as store:
        return store.terminal(TID), store.card(store.pan_hash(PAN))


def test_rows_are_kept_and_our_own_writes_keep_them_exact(sqlite_db, writer):
    store, unit = writer
    with unit() as st:
        h = st.pan_hash(PAN)
        card = st.card(h)
        st.update_card(h, balance=card.balance - 100, pin_tries=1, pin_tries_day="2026-11-22")
    with unit() as st:
        kept = st.card(h)
        assert kept is st.card(h)  # served from what was kept: no second read
        st.update_terminal(TID, mac_failures=2)
        assert st.terminal(TID).mac_failures == 2  # an update drops the kept terminal row
    t, c = fresh(sqlite_db)
    with unit() as st:
        assert st.card(h) == c and st.card(h).balance == card.balance - 100
        assert st.terminal(TID) == t


def test_another_connections_commit_drops_the_kept_rows(sqlite_db, writer):
    store, unit = writer
    with unit() as st:
        h = st.pan_hash(PAN)
        before = st.card(h)
        assert st.terminal(TID).status == "active"
    # The console, posgate admin...: another connection commits.
    with sqlite_db.engine.begin() as conn:
        conn.execute(update(s.cards).where(s.cards.c.pan_hash == h).values(balance=before.balance + 5, state="lost"))
        conn.execute(update(s.terminals).where(s.terminals.c.terminal_id == TID).values(status="suspended"))
    with unit() as st:
        assert st.card(h).balance == before.balance + 5 and st.card(h).state == "lost"
        assert st.terminal(TID).status == "suspended"


def test_a_rolled_back_unit_leaves_nothing_kept(sqlite_db, writer):
    store, unit = writer
    with unit() as st:
        h = st.pan_hash(PAN)
        balance = st.card(h).balance
    with unit(rollback=True) as st:
        st.update_card(h, balance=balance - 999)
        assert st.card(h).balance == balance - 999  # inside the unit: its own write
    with unit() as st:
        assert st.card(h).balance == balance  # the rollback undid it, and nothing stale is served


def test_only_on_sqlite_with_the_driver_connection(sqlite_db):
    with sqlite_db.engine.connect() as conn:
        with pytest.raises(RuntimeError):
            sqlite_db.store(conn).keep_rows()  # not on the driver: units are SQLAlchemy's


def _sale(store, stan: str):
    from datetime import UTC, datetime

    from posgate.host.ports import TxnRecord

    now = datetime(2026, 11, 22, 1, 2, 3, tzinfo=UTC)
    return TxnRecord(
        id=None, created_at=now, day="2026-11-22", terminal_id=TID, merchant_id="898100012340001",
        batch_no="000001", stan=stan, mti="0200", operation="sale", processing_code="000000", amount=100,
        currency="156", pan_hash=store.pan_hash(PAN), pan_masked="621214*********0012", pan_enc=None,
        card_organisation="CUP", entry_mode="021", response_code="00", auth_code="000001", rrn="000000000001",
        status="approved", original_id=None, refunded_amount=0, request_digest="d" * 64, reply=b"r", trace=[],
    )  # fmt: skip


def test_stans_on_file_are_kept_exact(sqlite_db, writer):
    store, unit = writer
    with unit() as st:
        assert st.find_by_stan(TID, "000001", "000007") == []
        st.insert_transaction(_sale(st, "000007"))
        assert [r.stan for r in st.find_by_stan(TID, "000001", "000007")] == ["000007"]  # our own insert
    with unit() as st:
        assert [r.stan for r in st.find_by_stan(TID, "000001", "000007")] == ["000007"]
        assert st.find_by_stan(TID, "000001", "000008") == []
    # Another connection records a message with a STAN this writer has never seen.
    with sqlite_db.unit_of_work() as other:
        other.insert_transaction(_sale(other, "000008"))
    with unit() as st:
        assert [r.stan for r in st.find_by_stan(TID, "000001", "000008")] == ["000008"]
    with unit(rollback=True) as st:
        st.insert_transaction(_sale(st, "000009"))
    with unit() as st:
        assert st.find_by_stan(TID, "000001", "000009") == []  # rolled back: not on file


def test_numbers_reserved_on_the_writer_keep_the_kept_rows(sqlite_db, writer):
    store, unit = writer
    with unit() as st:
        h = st.pan_hash(PAN)
        card = st.card(h)
    ids = sqlite_db.ids
    before = ids.available("rrn")
    ids.top_up(before + 10, sqlite_writer=store.driver)  # short: a block is reserved on the writer
    assert ids.available("rrn") >= before + 10
    mine = {ids.take("rrn") for _ in range(20)}
    with unit() as st:
        assert st.card(h) is card  # our own commit: nothing dropped
    # Another process's reservation (its own connection) never overlaps the writer's.
    from posgate.store.sql import IdAllocator

    other = IdAllocator(sqlite_db.engine, block=50)
    theirs = {other.take("rrn") for _ in range(20)}
    assert not mine & theirs
