"""SqlHostStore on SQLite and PostgreSQL: what goes in comes out, keys and PANs encrypted at rest,
RRNs and auth codes unique across processes. (The pipeline's contract tests, run against both
stores, live in tests/host; see test_contract.py.)"""

from __future__ import annotations

import multiprocessing
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from posgate.host.ports import SettlementRecord, SignOnEntry, TxnRecord
from posgate.store import schema as s
from posgate.store.database import Database
from posgate.store.demo import provision_demo

NOW = datetime(2026, 11, 22, 1, 2, 3, 456789, tzinfo=UTC)
PAN = "6212142000000000012"


def _txn(store, stan="000001", **kw):
    base = TxnRecord(
        id=None, created_at=NOW, day="2026-11-22", terminal_id="10000001", merchant_id="898100012340001",
        batch_no="000001", stan=stan, mti="0200", operation="sale", processing_code="000000", amount=1234,
        currency="156", pan_hash=store.pan_hash(PAN), pan_masked="621214*********0012", pan_enc=store.encrypt_pan(PAN),
        card_organisation="CUP", entry_mode="021", response_code="00", auth_code="000001", rrn="000000000001",
        status="approved", original_id=None, refunded_amount=0, request_digest="d" * 64, reply=b"\x60\x31" + b"r" * 20,
        trace=[["CheckMac", "PREPARED", ""]],
    )  # fmt: skip
    return replace(base, **kw)


def test_terminal_round_trip_with_encrypted_keys(db):
    provision_demo(db.engine, db.keyring)
    with db.unit_of_work() as store:
        store.update_terminal("10000001", pik=b"P" * 16, mak=b"M" * 8, tdk=b"T" * 16, key_scheme="003",
                              signed_on_day="2026-11-22", params={"timeout": 60}, resign_requested=True,
                              last_sign_on_at=NOW)  # fmt: skip
        t = store.terminal("10000001")
        assert (t.pik, t.mak, t.tdk, t.key_scheme, t.params, t.resign_requested) == (b"P" * 16, b"M" * 8, b"T" * 16, "003", {"timeout": 60}, True)
        assert "P" * 16 not in repr(t)
        assert store.merchant_last_sign_on_day("898100012340001") is None  # from the sign-on register, not the terminal row
        assert store.terminal("99999999") is None
        with pytest.raises(ValueError):
            store.update_terminal("10000001", no_such_column=1)
    with db.engine.connect() as conn:
        row = conn.execute(select(s.terminals).where(s.terminals.c.terminal_id == "10000001")).one()
    assert b"P" * 16 not in row.pik_enc and db.keyring.decrypt(row.pik_enc, b"pik") == b"P" * 16
    assert row.last_sign_on_at.replace(tzinfo=UTC) == NOW or row.last_sign_on_at == NOW


def test_transactions(db):
    provision_demo(db.engine, db.keyring)
    with db.unit_of_work() as store:
        sale_id = store.insert_transaction(_txn(store))
        void_id = store.insert_transaction(_txn(store, stan="000002", operation="void", original_id=sale_id, amount=1234))
        store.update_transaction(sale_id, status="voided", signed=True)
        got = store.find_message("10000001", "000001", "000001", "0200")
        assert got is not None and got.id == sale_id and got.status == "voided" and got.signed is True
        assert got.created_at == NOW and got.trace == [["CheckMac", "PREPARED", ""]]
        assert store.decrypt_pan(got.pan_enc) == PAN
        assert [t.id for t in store.children(sale_id)] == [void_id]
        assert [t.id for t in store.find_by_stan("10000001", "000001", "000002")] == [void_id]
        assert {t.id for t in store.find_by_rrn("000000000001")} == {sale_id, void_id}
        assert [t.id for t in store.batch_transactions("10000001", "000001")] == [sale_id, void_id]
        assert store.find_message("10000001", "000001", "000001", "0400") is None
    # committed: visible to a new unit of work; the PAN is not in the row in clear
    with db.engine.connect() as conn:
        raw = conn.execute(select(s.transactions.c.pan_enc, s.transactions.c.pan_hash)).all()
    assert all(PAN.encode() not in r.pan_enc and PAN not in r.pan_hash for r in raw)


def test_activity_sums(db):
    provision_demo(db.engine, db.keyring)
    with db.unit_of_work() as store:
        store.insert_transaction(_txn(store, stan="000001", amount=100))
        store.insert_transaction(_txn(store, stan="000002", amount=200))
        store.insert_transaction(_txn(store, stan="000003", amount=400, response_code="51", status="declined"))
        store.insert_transaction(_txn(store, stan="000004", amount=800, status="reversed"))
        h = store.pan_hash(PAN)
        assert store.card_activity(h, NOW - timedelta(hours=1)) == (2, 300)
        assert store.card_activity(h, NOW + timedelta(seconds=1)) == (0, 0)
        assert store.merchant_activity("898100012340001", "2026-11-22") == 300
        assert store.merchant_activity("898100012340001", "2026-11-21") == 0


def test_sign_ons_batches_settlements_audit(db):
    provision_demo(db.engine, db.keyring)
    with db.unit_of_work() as store:
        store.record_sign_on(SignOnEntry(NOW, "2026-11-22", "10000001", "898100012340001", "sign_on", "daily", "01",
                                         "DEMO0001", "001", "000001", "000009", "00"))  # fmt: skip
        store.open_batch("10000001", "000002", NOW)
        store.open_batch("10000001", "000002", NOW)  # idempotent
        store.close_batch("10000001", "000001", NOW)
        sid = store.insert_settlement(SettlementRecord(None, NOW, "2026-11-22", "10000001", "898100012340001", "000001",
                                                       "000010", {"debit": 1}, {"debit": 1}, "1", "1", 0, None, "balanced"))  # fmt: skip
        store.update_settlement(sid, uploaded=3, upload_end="207")
        got = store.latest_settlement("10000001", "000001")
        assert got is not None and (got.id, got.uploaded, got.upload_end, got.terminal_totals) == (sid, 3, "207", {"debit": 1})
        store.audit(NOW, "host", "terminal.sign_on", "terminal", "10000001", "898100012340001", after={"batch_no": "000001"})
        assert store.setting("nope", "dflt") == "dflt"
        assert list(store.risk_rules()) == []
    with db.engine.connect() as conn:
        batches = {r.batch_no: r.status for r in conn.execute(select(s.batches).where(s.batches.c.terminal_id == "10000001"))}
        assert batches == {"000001": "closed", "000002": "open"}
        assert conn.execute(select(s.sign_ons.c.cause)).scalars().all() == ["daily"]


def test_unit_of_work_rolls_back(db):
    provision_demo(db.engine, db.keyring)
    with pytest.raises(RuntimeError), db.unit_of_work() as store:
        store.insert_transaction(_txn(store))
        raise RuntimeError("boom")
    with db.unit_of_work() as store:
        assert store.find_message("10000001", "000001", "000001", "0200") is None


def test_rrn_and_auth_code_formats(db):
    with db.unit_of_work() as store:
        rrns = [store.next_rrn(NOW) for _ in range(5)]
        codes = [store.next_auth_code() for _ in range(5)]
    assert all(len(r) == 12 and r.isdigit() for r in rrns) and len(set(rrns)) == 5
    assert all(len(c) == 6 and c.isdigit() and c != "000000" for c in codes) and len(set(codes)) == 5


def _take_ids(url: str, key_file: str, n: int, out) -> None:
    import os

    os.environ["POSGATE_MASTER_KEY_FILE"] = key_file
    db = Database.open(url)
    db.ids.block = 7  # small blocks: many reservations interleave between the processes
    got = []
    for _ in range(n):
        db.ids.top_up(1)
        got.append(db.ids.take("rrn"))
    db.close()
    out.put(got)


def test_ids_unique_across_processes(db_url, tmp_path):
    key_file = str(tmp_path / "master.key")
    Database.open(db_url).close()
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_take_ids, args=(db_url, key_file, 60, out)) for _ in range(3)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    taken = [x for r in results for x in r]
    assert len(taken) == 180 and len(set(taken)) == 180


def test_concurrent_debits_are_not_lost(db):
    """Several workers (or host processes) read-modify-write one card: none of the debits is lost
    (PostgreSQL: the card is read FOR UPDATE; SQLite: one writer at a time)."""
    import threading

    provision_demo(db.engine, db.keyring)
    h = db.keyring.pan_hash(PAN)
    with db.unit_of_work() as store:
        start = store.card(h).balance
    errors: list[BaseException] = []

    def debit_many() -> None:
        try:
            for _ in range(25):
                with db.unit_of_work() as store:
                    card = store.card(h)
                    store.update_card(h, balance=card.balance - 1)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=debit_many) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    with db.unit_of_work() as store:
        assert store.card(h).balance == start - 100


def test_unit_caches_only_within_a_unit_of_work(db):
    """begin_unit() (the commit worker's): the merchant row read with the terminal serves the
    request's merchant() once, an update_merchant() drops it, and the risk rules read once per
    unit are read again in the next one. Without begin_unit() nothing is kept."""
    from sqlalchemy import insert

    provision_demo(db.engine, db.keyring)
    mid = "898100012340001"
    with db.engine.connect() as conn:
        store = db.store(conn, driver=True)
        driver = store.driver
        for unit in (False, True):
            if unit:
                store.begin_unit()
            t = store.terminal("10000001")
            assert t is not None and t.merchant_id == mid
            m = store.merchant(mid)
            assert m is not None and m.status == "active" and m.merchant_id == mid
            assert store.merchant(mid) == m  # a second call reads the row again, same content
            store.terminal("10000001")
            store.update_merchant(mid, status="suspended")
            assert store.merchant(mid).status == "suspended"  # the write is seen, not the hint
            store.update_merchant(mid, status="active")
            assert store.risk_rules() == []
            conn.execute(insert(s.risk_rules), {"kind": "merchant_amount", "params": {"max_amount": 1}, "response_code": "61"})
            assert len(store.risk_rules()) == (0 if unit else 1)  # kept for the unit
            if unit:
                driver.commit()
                store.begin_unit()
                assert len(store.risk_rules()) == 1
            conn.execute(s.risk_rules.delete())
            driver.commit()
