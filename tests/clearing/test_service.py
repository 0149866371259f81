"""Import, idempotency and maker-checker resolution on a real database (SQLite and PostgreSQL),
with the file written from a real network database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from posgate.clearing.file import ClearingFileError
from posgate.clearing.network_records import build_clearing_file
from posgate.clearing.service import (
    ClearingError,
    DiffFilter,
    decide,
    difference,
    differences,
    import_file,
    propose,
    report,
)
from posgate.console.fmt import today
from posgate.console.settlement import statement
from posgate.store import clearing_schema as cs
from posgate.store import schema as s

from .seed import DATE, EXPECTED, MART, acquirer_day, write_network_day

TZ = "Asia/Shanghai"


def _counts(db) -> dict[str, int]:
    with db.engine.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (cs.clearing_files, cs.clearing_records, cs.clearing_differences, s.transactions, s.audit_log)}  # fmt: skip


@pytest.fixture
def day(db, network_url, tmp_path):
    with db.engine.begin() as conn:
        ids = acquirer_day(conn, db.keyring)
    write_network_day(network_url)
    path = tmp_path / f"IND{DATE[2:]}01ACOM"
    built = build_clearing_file(network_url, DATE, path)
    assert built.records == 6 and (built.debit_count, built.credit_count) == (5, 1)
    return ids, path


def _import(db, path, actor="ops"):
    with db.engine.begin() as conn:
        return import_file(conn, path.read_bytes(), file_name=path.name, actor=actor)


def _diff(db, kind: str) -> dict:
    with db.engine.connect() as conn:
        (d,) = differences(conn, DiffFilter(kind=kind))
    return d


def test_import_matches_every_record(db, day) -> None:
    ids, path = day
    result = _import(db, path)
    assert result.outcomes == EXPECTED and result.records == 6 and result.differences == 5
    with db.engine.connect() as conn:
        rep = report(conn, "2025-06-01")
        recs = conn.execute(select(cs.clearing_records.c.outcome, cs.clearing_records.c.txn_id)
                            .order_by(cs.clearing_records.c.line)).all()  # fmt: skip
    assert [d["kind"] for d in rep["differences"]] == ["duplicate", "amount_mismatch", "response_mismatch", "missing_ours",
                                                       "missing_theirs"]  # fmt: skip
    assert recs[:3] == [("matched", ids["matched"]), ("duplicate", None), ("amount_mismatch", ids["amount"])]
    effects = {d["kind"]: d["effect"] for d in rep["differences"]}
    assert effects == {"amount_mismatch": 5_00, "response_mismatch": 30_00, "missing_ours": 10_00, "duplicate": 0,
                       "missing_theirs": -20_00}  # fmt: skip
    theirs = _diff(db, "missing_theirs")
    assert (
        theirs["txn_id"] == ids["theirs"] and theirs["record_id"] is None and theirs["network_amount"] is None
    )


def test_the_same_file_twice_is_refused_and_changes_nothing(db, day, network_url, tmp_path) -> None:
    _, path = day
    _import(db, path)
    before = _counts(db)
    with pytest.raises(ClearingError, match="imported already") as e:
        _import(db, path)
    assert e.value.status == 409
    second = tmp_path / "second"
    build_clearing_file(network_url, DATE, second, now=datetime(2025, 6, 2, 1, 0, tzinfo=UTC))
    assert second.read_bytes() != path.read_bytes()  # another file (its creation time) for the same day
    with pytest.raises(ClearingError, match="second file for the same day"):
        _import(db, second)
    assert _counts(db) == before


def test_a_bad_file_changes_nothing(db, day) -> None:
    _, path = day
    before = _counts(db)
    data = path.read_bytes()
    broken = data.replace(b" 000000005500 ", b" 0000000055x0 ", 1)
    with pytest.raises(ClearingFileError, match=r"line 4, column \d+ \(amount\)"):
        with db.engine.begin() as conn:
            import_file(conn, broken, file_name=path.name, actor="ops")
    assert _counts(db) == before
    _import(db, path)  # the good one still imports


def test_maker_checker_follow_network_feeds_settlement(db, day) -> None:
    _import(db, day[1])
    d = _diff(db, "amount_mismatch")
    tday = today(TZ)
    with db.engine.connect() as conn:
        net_before = statement(conn, MART, tday, TZ)["net"]
    with db.engine.begin() as conn:
        propose(conn, "alice", d["id"], "follow_network", "network's amount is on the slip")
    with pytest.raises(ClearingError, match="own proposal") as e, db.engine.begin() as conn:
        decide(conn, "alice", d["id"], True, "", TZ)
    assert e.value.status == 403
    with pytest.raises(ClearingError, match="waiting"), db.engine.begin() as conn:
        propose(conn, "bob", d["id"], "keep_ours", "no")
    with db.engine.begin() as conn:
        res = decide(conn, "bob", d["id"], True, "checked the slip", TZ)
    with db.engine.connect() as conn:
        full = difference(conn, d["id"])
        row = (
            conn.execute(select(s.transactions).where(s.transactions.c.id == res["result_txn_id"]))
            .mappings()
            .one()
        )
        st = statement(conn, MART, tday, TZ)
        actions = [
            a
            for (a,) in conn.execute(
                select(s.audit_log.c.action).where(s.audit_log.c.object_type == "clearing_difference")
            )
        ]
    assert full["d"]["status"] == "resolved" and full["d"]["resolved_by"] == "bob"
    assert full["resolutions"][0]["proposed_by"] == "alice" and full["resolutions"][0]["decided_by"] == "bob"
    assert (row["operation"], row["processing_code"], row["amount"], row["source"], row["original_id"]) == \
        ("adjustment", "000000", 5_00, "clearing", d["txn_id"])  # fmt: skip
    assert row["batch_no"] == "000000" and row["day"] == tday
    assert st["gross"] >= 5_00 and st["net"] > net_before  # the merchant's statement counts the adjustment
    assert actions == ["clearing.proposed", "clearing.resolved"]


def test_missing_on_theirs_annuls_ours_and_reject_reopens(db, day) -> None:
    ids, path = day
    _import(db, path)
    d = _diff(db, "missing_theirs")
    with db.engine.begin() as conn:
        propose(conn, "alice", d["id"], "follow_network", "the network never had it")
        with pytest.raises(ClearingError, match="Say why"):
            decide(conn, "bob", d["id"], False, "", TZ)
        decide(conn, "bob", d["id"], False, "ask the network first", TZ)
    assert _diff(db, "missing_theirs")["status"] == "open"
    with db.engine.begin() as conn:
        propose(conn, "carol", d["id"], "follow_network", "network confirmed by phone")
        res = decide(conn, "alice", d["id"], True, "", TZ)
    with db.engine.connect() as conn:
        row = (
            conn.execute(select(s.transactions).where(s.transactions.c.id == res["result_txn_id"]))
            .mappings()
            .one()
        )
        original = (
            conn.execute(select(s.transactions).where(s.transactions.c.id == ids["theirs"])).mappings().one()
        )
        n = len(difference(conn, d["id"])["resolutions"])
    assert (row["operation"], row["processing_code"], row["amount"], row["original_id"]) == (
        "annulment",
        "200000",
        20_00,
        ids["theirs"],
    )
    assert original["status"] == "approved"  # the original row is never changed
    assert n == 2


def test_keep_ours_and_refusals(db, day) -> None:
    _import(db, day[1])
    dup = _diff(db, "duplicate")
    with db.engine.begin() as conn:
        with pytest.raises(ClearingError, match="changes nothing"):
            propose(conn, "alice", dup["id"], "follow_network", "x")
        with pytest.raises(ClearingError, match="Say why"):
            propose(conn, "alice", dup["id"], "keep_ours", " ")
        with pytest.raises(ClearingError, match="Choose"):
            propose(conn, "alice", dup["id"], "delete_it", "x")
        propose(conn, "alice", dup["id"], "keep_ours", "network to reverse its duplicate")
        res = decide(conn, "bob", dup["id"], True, "", TZ)
    assert res == {"status": "approved", "result_txn_id": None}
    with db.engine.begin() as conn, pytest.raises(ClearingError, match="waiting"):
        decide(conn, "carol", dup["id"], True, "", TZ)


def test_two_checkers_at_once_write_one_adjustment(db, day) -> None:
    """The second checker's decision waits for the first one's transaction, then finds nothing
    pending: the ledger gets one row, not two."""
    import threading

    _import(db, day[1])
    d = _diff(db, "missing_ours")
    with db.engine.begin() as conn:
        propose(conn, "alice", d["id"], "follow_network", "cleared by the network")
    first_done, outcome = threading.Event(), {}

    def second() -> None:
        first_done.wait(10)
        try:
            with db.engine.begin() as conn:
                outcome["second"] = decide(conn, "carol", d["id"], True, "", TZ)
        except ClearingError as e:
            outcome["second"] = e

    t = threading.Thread(target=second)
    t.start()
    with db.engine.begin() as conn:
        outcome["first"] = decide(conn, "bob", d["id"], True, "", TZ)
        first_done.set()  # the second starts while the first transaction is still open
    t.join(30)
    assert not t.is_alive()
    assert outcome["first"]["status"] == "approved" and isinstance(outcome["second"], ClearingError)
    with db.engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(s.transactions).where(s.transactions.c.source == "clearing")).scalar_one()
    assert n == 1


def test_what_the_built_in_issuer_authorised_is_no_difference(db, network_url, tmp_path) -> None:
    """Only transactions routed upstream can be in the network's file: a sale the built-in issuer
    approved the same day (route ``issuer``) is neither matched nor "missing on theirs"."""
    from .seed import add_txn

    with db.engine.begin() as conn:
        ids = acquirer_day(conn, db.keyring)
        local = add_txn(conn, db.keyring, stan="000777", amount=77_00, route="issuer")
    write_network_day(network_url)
    path = tmp_path / f"IND{DATE[2:]}01ACOM"
    build_clearing_file(network_url, DATE, path)
    result = _import(db, path)
    assert result.outcomes == EXPECTED and result.differences == 5
    with db.engine.connect() as conn:
        rep = report(conn, "2025-06-01")
    assert local not in {d["txn_id"] for d in rep["differences"]} and local not in ids.values()
