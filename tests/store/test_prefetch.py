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
    def unit(keys, inserts=4, pans=()):
        try:
            with store.pipelined(keys, inserts, pans):
                yield store
        except BaseException:
            store.driver.rollback()
            store.forget()
            raise
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


def test_cards_read_ahead_stay_exact(pg_db, worker):
    store, unit = worker
    with pg_db.unit_of_work() as other:
        h = other.pan_hash(PAN)
        plain = other.card(h)
    with unit([(TID, "000001", "000031")], pans=[PAN, "6212140000000000000"]) as st:  # a PAN with no card: nothing
        assert st._unit_cards == {h: plain}
        assert st.card(h) is st._unit_cards[h]  # answered from the read-ahead
        st.update_card(h, balance=plain.balance - 100)
        assert st.card(h).balance == plain.balance - 100  # our own write kept it exact
        st.update_card(h, state="lost")  # a change that is not kept as written: dropped, read again
        assert h not in st._unit_cards and st.card(h).state == "lost"
    with pg_db.unit_of_work() as other:
        again = other.card(h)
        assert again.balance == plain.balance - 100 and again.state == "lost"


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


def test_writes_held_in_pipeline_mode_are_seen_and_committed(pg_db, worker):
    store, unit = worker
    with pg_db.unit_of_work() as other:
        h = other.pan_hash(PAN)
        balance = other.card(h).balance
    with unit([(TID, "000001", "000041")]) as st:  # the card not read ahead (a track-only sale)
        st.card(h)
        st.update_card(h, balance=balance - 7)
        st.insert_transaction(_sale(st, "000041"))
        assert st._deferred  # held, not sent
        assert st.card(h).balance == balance - 7  # a read of that card sends them first
        assert not st._deferred
        st.update_card(h, balance=balance - 9)
        st.insert_transaction(_sale(st, "000042"))
    with pg_db.unit_of_work() as other:  # the end of the unit sent what was still held
        assert other.card(h).balance == balance - 9
        assert [r.stan for r in other.find_by_stan(TID, "000001", "000042")] == ["000042"]


def _swipe(track: str, encrypted: bool, stan: str = "000041") -> bytes:
    """A swiped sale's body as the pipeline's read-ahead sees it: no field 2, the card in 35."""
    from posgate.dialect.cup import encode
    from posgate.iso8583.message import Message

    return encode(Message("0200", {3: "000000", 4: "000000000100", 11: stan, 22: "021", 25: "00", 35: track,
                                   41: TID, 42: "898100012340001", 49: "156",
                                   53: "20" + ("1" if encrypted else "0") + "0" * 13,
                                   60: "22000001000500"}))  # fmt: skip


def test_a_swiped_cards_row_is_read_ahead_with_the_tdk_last_seen(pg_db, worker):
    """Issue 12: a swiped sale carries its card number only in track 2, encrypted with the
    terminal's TDK; the card used to be read in a round trip of its own for every sale. With
    the TDK the store last saw for the terminal, the read-ahead finds the card too; without it,
    or with a key that is no longer the terminal's, nothing wrong is read and nothing breaks."""
    from posgate.crypto import cipher_for, encrypt_track
    from posgate.host.server import request_keys

    store, unit = worker
    track = PAN + "=30122010000000000"
    assert request_keys([_swipe(track, False)]) == ([(TID, "000001", "000041")], [PAN])  # clear: no key needed
    assert store.track_key(TID) is None  # not read yet: no hint
    assert request_keys([_swipe("6212140000000000000=3012", True)], store.track_key)[1] == []
    with pg_db.unit_of_work() as other:  # as a sign-on with key scheme 004 leaves it
        other.update_terminal(TID, tdk=bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"))
    with unit([(TID, "000001", "000041")]) as st:
        rec = st.terminal(TID)
    assert rec is not None and rec.tdk is not None
    assert store.track_key(TID) == (rec.tdk, rec.algorithm)
    body = _swipe(encrypt_track(rec.tdk, track, cipher=cipher_for(rec.algorithm)), True)
    keys, pans = request_keys([body], store.track_key)
    assert pans == [PAN]
    h = store.pan_hash(PAN)
    with unit(keys, pans=pans) as st:
        assert h in st._unit_cards  # read (and locked) with the terminals, in the same round trip
        assert st.card(h) is st._unit_cards[h]
    # A TDK that is not the terminal's (changed since): the track reads as another number or
    # as none; at worst a card the request never asks for is read, and the request's own
    # card() still reads its card.
    stale = bytes(16)
    keys, pans = request_keys([body], lambda tid: (stale, rec.algorithm))
    assert PAN not in pans
    with unit(keys, pans=pans) as st:
        assert h not in st._unit_cards
        assert st.card(h) is not None and st.card(h).pan_hash == h
