"""The bulk history loader writes what the host writes, and the console's search finds in it
exactly what a brute-force filter over every row finds (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
from datetime import date

import pytest
from sqlalchemy import select

from posgate.bench.growth import SEARCH_KINDS, principal, search_queries
from posgate.console import txns
from posgate.console.db import Database as ConsoleDb
from posgate.console.db import make_engine
from posgate.console.fmt import parse_yuan
from posgate.store.bulkload import HistoryPlan, history_pan, history_terminals, load_history
from posgate.store.schema import transactions

ROWS = 20_000
PLAN = HistoryPlan(
    rows=ROWS, merchants=12, days=20, terminals_per_merchant=2, cards=300, end_day=date(2026, 11, 30)
)


@pytest.fixture
def loaded(db):
    seen: list[int] = []
    result = load_history(db, PLAN, progress=lambda done, total: seen.append(done))
    assert result.rows == ROWS and seen[-1] == ROWS
    assert (result.first_day, result.last_day) == ("2026-11-11", "2026-11-30")
    return db


def _all_rows(db):
    t = transactions.c
    with db.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(t.id, t.day, t.terminal_id, t.merchant_id, t.amount, t.pan_hash,
                                                     t.pan_masked, t.pan_enc, t.created_at, t.batch_no, t.stan,
                                                     t.response_code, t.status, t.rrn)).mappings()]  # fmt: skip


def test_rows_are_sealed_and_keyed_as_the_host_writes_them(loaded):
    rows = _all_rows(loaded)
    assert len(rows) == ROWS
    pans = {history_pan(i + 1) for i in range(PLAN.cards)}
    for r in rows[:: ROWS // 200]:
        pan = loaded.keyring.decrypt_pan(r["pan_enc"])  # AES-GCM under the master key, purpose "pan"
        assert pan in pans
        assert r["pan_hash"] == loaded.keyring.pan_hash(pan)  # the keyed hash the host and the search use
        assert r["pan_masked"] == pan[:6] + "*" * 9 + pan[-4:]
        assert pan not in repr(r)  # nothing in clear
    keys = {(r["terminal_id"], r["batch_no"], r["stan"]) for r in rows}
    assert len(keys) == ROWS  # the host's message key stays unique
    assert len({r["rrn"] for r in rows}) == ROWS and all(r["rrn"].startswith("9") for r in rows)
    assert {r["status"] for r in rows} == {"approved", "declined"}
    assert {r["terminal_id"] for r in rows} <= {tid for tid, _ in history_terminals(PLAN)}
    days = sorted({r["day"] for r in rows})
    assert days[0] == "2026-11-11" and days[-1] == "2026-11-30"
    ordered = sorted(rows, key=lambda r: r["id"])
    assert all(a["created_at"] <= b["created_at"] for a, b in zip(ordered, ordered[1:], strict=False))


def _expected(rows, keyring, params, merchant):
    out = rows
    if merchant:
        out = [r for r in out if r["merchant_id"] == merchant]
    if "card" in params:
        card = params["card"]
        if len(card) == 4:
            out = [r for r in out if r["pan_masked"].endswith(card)]
        else:  # each distinct sealed PAN opened once
            clear = {h: keyring.decrypt_pan(r["pan_enc"]) for h, r in {r["pan_hash"]: r for r in out}.items()}
            out = [r for r in out if clear[r["pan_hash"]] == card]
    if "day_from" in params:
        out = [r for r in out if params["day_from"] <= r["day"] <= params["day_to"]]
    if "amount" in params:
        out = [r for r in out if r["amount"] == parse_yuan(params["amount"])]
    if "terminal_id" in params:
        out = [r for r in out if r["terminal_id"] == params["terminal_id"]]
    return sorted(out, key=lambda r: (r["created_at"], r["id"]), reverse=True)


def test_console_search_matches_a_brute_force_filter(loaded):
    rows = _all_rows(loaded)
    queries = list(search_queries(random.Random(3), PLAN, history_terminals(PLAN), "2026-11-11", 4))
    assert {k for k, _, _ in queries} == set(SEARCH_KINDS)
    # one more of each card kind that certainly has rows
    some = rows[123]
    pan = loaded.keyring.decrypt_pan(some["pan_enc"])
    queries += [("card number", {"card": pan}, None), ("card last 4", {"card": pan[-4:]}, None),
                ("first 6 + last 4", {"card": pan[:6] + pan[-4:]}, None)]  # fmt: skip
    console = ConsoleDb(make_engine(loaded.url))
    try:
        for kind, params, merchant in queries:
            q = txns.TxnQuery.from_params(params)
            with console.read() as conn:
                found, total = txns.search(conn, principal(merchant), q, loaded.keyring, limit=ROWS)
            if kind == "first 6 + last 4":
                params = {"card": pan[-4:]}  # every history PAN starts with the same six digits
            want = _expected(rows, loaded.keyring, params, merchant)
            assert total == len(want), (kind, params)
            assert [r["id"] for r in found] == [r["id"] for r in want], (kind, params)
            if kind in ("card number", "card last 4"):
                assert want, "the card searched for has sales"
    finally:
        console.engine.dispose()


def test_last_four_search_uses_its_index(db):
    """The search's last-four expression is the indexed one, literally (SQLite's plan says so)."""
    loaded = db
    if not loaded.is_sqlite:
        pytest.skip("SQLite's EXPLAIN QUERY PLAN")
    q = txns.TxnQuery(card="0012")
    stmt = select(transactions.c.id).where(*txns._conditions(q, principal(None), loaded.keyring))
    with loaded.engine.connect() as conn:
        sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
        plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
    assert "ix_transactions_pan_last4" in plan


def test_bad_plans_are_refused(db):
    for bad in (HistoryPlan(rows=0), HistoryPlan(rows=10, merchants=0), HistoryPlan(rows=10, days=0),
                HistoryPlan(rows=10, merchants=100_000)):  # fmt: skip
        with pytest.raises(ValueError):
            load_history(db, bad)
    with db.engine.connect() as conn:
        assert conn.execute(select(transactions.c.id)).first() is None  # nothing written
