"""Payouts (issue 11) on SQLite and PostgreSQL, and ``posgate admin payouts ...``: fee rules and per-transaction fees, settlement
bank accounts (sealed, maker-checker), T+1 and D0 payouts, the payout file and the bank's return
file, statements; and a property test: over random days of sales, voids, refunds, make-up
adjustments and annulments, every payout is its lines to the fen and the statements add up."""

from __future__ import annotations

import csv
import io
import itertools
import json
import stat
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select, update
from typer.testing import CliRunner

from posgate.cli import app
from posgate.domain.masking import mask_pan
from posgate.store import payouts as po
from posgate.store import schema as s
from posgate.store.database import Database
from posgate.store.demo import provision_demo
from posgate.store.payouts_schema import bank_accounts, payout_lines, payouts

MART, BISTRO = "898100012340001", "898100012340002"
DEBIT, CREDIT, VISA, QR = "6212142000000000012", "6225880000000000010", "4761730000000011", "6288000000000000011"
MART_ACCOUNT = "1001244309300012345"
_stans = itertools.count(1)


def _day_time(day: str, minute: int = 0) -> datetime:
    # 10:00 Asia/Shanghai on that business day
    return datetime.fromisoformat(day).replace(hour=2, minute=minute % 60, tzinfo=UTC)


def add_txn(conn: Any, keyring: Any, *, mid: str = MART, tid: str = "10000001", day: str = "2026-11-02", amount: int = 100_00,
            op: str = "sale", pc: str = "000000", pan: str | None = DEBIT, org: str = "CUP", entry: str = "021",
            batch: str = "000001", original: int | None = None, source: str = "terminal", status: str = "approved") -> int:  # fmt: skip
    stan = next(_stans)
    values = dict(
        created_at=_day_time(day, stan), day=day, terminal_id=tid, merchant_id=mid, batch_no=batch, stan=f"{stan % 1_000_000:06d}",
        mti="0200" if source == "terminal" else "0220", operation=op, processing_code=pc, amount=amount, currency="156",
        pan_hash=keyring.pan_hash(pan) if pan else None, pan_masked=mask_pan(pan) if pan else None, card_organisation=org,
        entry_mode=entry, response_code="00", rrn=f"{stan:012d}", status=status, original_id=original, refunded_amount=0,
        request_digest=f"t-{stan}", source=source,
    )  # fmt: skip
    return int(conn.execute(insert(s.transactions).values(**values).returning(s.transactions.c.id)).scalar_one())


def settle(conn: Any, tid: str = "10000001", batch: str = "000001", mid: str = MART, day: str = "2026-11-02") -> None:
    conn.execute(insert(s.settlements).values(
        at=_day_time(day, 59), day=day, terminal_id=tid, merchant_id=mid, batch_no=batch, stan="000999", terminal_totals={},
        host_totals={}, domestic_result="1", foreign_result="1", status="balanced"))  # fmt: skip


@pytest.fixture
def demo(db: Database) -> Database:
    provision_demo(db.engine, db.keyring)
    return db


# ------------------------------------------------------------------ fee rules


def test_rule_rounds_half_up_and_caps() -> None:
    debit = po.Rule(50, 20_00, "default")
    assert debit.fee(12_34) == 6  # 6.17 fen → 6
    assert debit.fee(1_01) == 1  # 0.505 fen → 1 (half up)
    assert debit.fee(99) == 0  # 0.495 fen → 0
    assert debit.fee(4000_00) == 20_00 and debit.fee(5000_00) == 20_00  # capped at ¥20
    assert po.Rule(38, None, "default").fee(1000_00) == 3_80
    assert debit.fee(0) == 0 and debit.fee(-5) == 0


def test_effective_rules_defaults_overrides_and_the_merchants_rate(demo: Database) -> None:
    with demo.engine.begin() as conn:
        r = po.effective_rules(conn, BISTRO)
        assert (r["debit"].rate_bp, r["debit"].cap, r["debit"].source) == (50, 20_00, "default")
        assert (r["credit"].rate_bp, r["credit"].source) == (38, "merchant_rate")  # Demo Bistro's 0.38 %
        assert (r["qr"].rate_bp, r["d0"].rate_bp) == (38, 5)
        po.set_fee_rule(conn, "*", "qr", 30, None, actor="t")
        po.set_fee_rule(conn, BISTRO, "debit", 45, 15_00, actor="t")
        r = po.effective_rules(conn, BISTRO)
        assert (r["qr"].rate_bp, r["qr"].source) == (30, "acquirer")
        assert (r["debit"].rate_bp, r["debit"].cap, r["debit"].source) == (45, 15_00, "merchant")
        assert po.effective_rules(conn, MART)["debit"].rate_bp == 50
        assert po.remove_fee_rule(conn, BISTRO, "debit", actor="t") and po.effective_rules(conn, BISTRO)["debit"].rate_bp == 50
        with pytest.raises(po.PayoutError):
            po.set_fee_rule(conn, BISTRO, "gold", 10, None, actor="t")
        with pytest.raises(po.PayoutError):
            po.set_fee_rule(conn, "999999999999999", "debit", 10, None, actor="t")
        actions = list(conn.execute(select(s.audit_log.c.action).where(s.audit_log.c.actor == "t")).scalars())
    assert actions == ["fee_rule.set", "fee_rule.set", "fee_rule.removed"]
    assert po.parse_rate("0.50") == 50 and po.parse_rate("0.05%") == 5
    for bad in ("abc", "0.555", "-1", "50"):
        with pytest.raises(po.PayoutError):
            po.parse_rate(bad)


def test_fee_per_card_kind_and_what_voids_refunds_and_makeup_entries_do(demo: Database) -> None:
    k = demo.keyring
    with demo.engine.begin() as conn:
        debit = add_txn(conn, k, amount=5000_00)  # 0.50 % = 25.00, capped at 20.00
        credit = add_txn(conn, k, amount=100_00, pan=CREDIT)  # Mart's rate 0.60 %
        visa = add_txn(conn, k, amount=100_00, pan=VISA, org="VIS")  # foreign 1.50 %
        qr = add_txn(conn, k, amount=100_00, pan=QR, entry="031")  # QR 0.38 %
        unknown = add_txn(conn, k, amount=100_00, pan="6222000000000000001")  # not the issuer's: credit rate
        void = add_txn(conn, k, amount=100_00, op="void", pc="200000", pan=CREDIT, original=credit)
        refund = add_txn(conn, k, amount=50_00, op="refund", pc="200000", pan=QR, original=qr, batch="000000", source="console")
        adj_up = add_txn(conn, k, amount=4000_00, op="adjustment", pc="000000", original=debit, batch="000000", source="makeup")
        adj_down = add_txn(conn, k, amount=40_00, op="adjustment", pc="200000", pan=VISA, org="VIS", original=visa,
                           batch="000000", source="makeup")  # fmt: skip
        annul = add_txn(conn, k, amount=100_00, op="annulment", pc="200000", pan="6222000000000000001", original=unknown,
                        batch="000000", source="makeup")  # fmt: skip
        declined = add_txn(conn, k, amount=100_00, status="declined")
        lines = {x["id"]: x for x in po.lines(conn, MART, "2026-11-02", "2026-11-02")}
    assert declined not in lines
    fee = {i: lines[i]["fee"] for i in lines}
    kind = {i: lines[i]["card_kind"] for i in lines}
    assert (fee[debit], kind[debit]) == (20_00, "debit")
    assert (fee[credit], kind[credit]) == (60, "credit")
    assert (fee[visa], kind[visa]) == (1_50, "foreign")
    assert (fee[qr], kind[qr]) == (38, "qr")
    assert (fee[unknown], kind[unknown]) == (60, "credit")
    assert fee[void] == -60 and lines[void]["amount_signed"] == -100_00  # the void gives the sale's fee back
    assert fee[refund] == 0 and lines[refund]["amount_signed"] == -50_00  # a refund does not
    assert fee[adj_up] == 0  # 5000 → 9000: still capped at 20.00
    assert fee[adj_down] == (60_00 * 150 + 5000) // 10000 - 1_50  # 100 → 60: the fee follows the amount
    assert fee[annul] == -60
    assert all(x["net"] == x["amount_signed"] - x["fee"] for x in lines.values())


# ------------------------------------------------------------------ bank accounts


def test_bank_account_is_sealed_masked_and_changed_by_a_second_person(demo: Database) -> None:
    with demo.engine.begin() as conn:
        acct = po.active_account(conn, MART)
        assert acct is not None and acct["account_masked"] == "1001***********2345" and "account_enc" not in acct
        blob = conn.execute(select(bank_accounts.c.account_enc).where(bank_accounts.c.id == acct["id"])).scalar_one()
        assert MART_ACCOUNT.encode() not in bytes(blob)
        assert demo.keyring.decrypt(blob, po.ACCOUNT_PURPOSE).decode() == MART_ACCOUNT
        for bad in ({"account_number": "12ab"}, {"bank_code": "1234"}, {"bank_name": ""}, {"reason": " "}):
            args = {"account_number": "6214 8301 2345 6789", "bank_name": "招商银行", "account_name": "演示便利店",
                    "bank_code": "308290003020", "reason": "换开户行", **bad}  # fmt: skip
            with pytest.raises(po.PayoutError):
                po.propose_bank_account(conn, demo.keyring, MART, actor="mart-admin", **args)
        cid = po.propose_bank_account(conn, demo.keyring, MART, account_number="6214 8301 2345 6789", bank_name="招商银行",
                                      account_name="演示便利店", bank_code="308290003020", reason="换开户行", actor="mart-admin")  # fmt: skip
        with pytest.raises(po.PayoutError, match="waiting"):
            po.propose_bank_account(conn, demo.keyring, MART, account_number="12345678", bank_name="x", account_name="y",
                                    bank_code="308290003020", reason="again", actor="support")  # fmt: skip
        assert po.active_account(conn, MART)["id"] == acct["id"]  # not before the approval
        with pytest.raises(po.PayoutError, match="second person"):
            po.decide_bank_account(conn, cid, True, actor="mart-admin")
        with pytest.raises(po.PayoutError, match="why"):
            po.decide_bank_account(conn, cid, False, actor="support")
        assert po.decide_bank_account(conn, cid, True, actor="support") == "active"
        with pytest.raises(po.PayoutError, match="decided"):
            po.decide_bank_account(conn, cid, True, actor="admin")
        now = po.active_account(conn, MART)
        assert now["id"] == cid and now["account_masked"] == "6214********6789" and now["decided_by"] == "support"
        statuses = dict(conn.execute(select(bank_accounts.c.id, bank_accounts.c.status).where(bank_accounts.c.merchant_id == MART)).all())
        assert statuses == {acct["id"]: "replaced", cid: "active"}
        audit = conn.execute(select(s.audit_log).where(s.audit_log.c.object_type == "bank_account")).mappings().all()
    assert [a["action"] for a in audit][-2:] == ["bank_account.proposed", "bank_account.approved"]
    assert not any("6214830123456789" in str(dict(a)) or MART_ACCOUNT in str(dict(a)) for a in audit)


# ------------------------------------------------------------------ payouts


def test_t1_payout_takes_settled_lines_less_fees_once(demo: Database) -> None:
    k = demo.keyring
    with demo.engine.begin() as conn:
        a = add_txn(conn, k, amount=100_00)
        b = add_txn(conn, k, amount=300_00, pan=CREDIT)
        later = add_txn(conn, k, tid="10000002", amount=50_00)  # its batch is not settled yet
        settle(conn)
        r = po.build_payouts(conn, "2026-11-03", actor="cli")
        assert [p["merchant_id"] for p in r.built] == [MART]
        p = r.built[0]
        assert (p["business_day"], p["value_date"], p["status"], p["lines"]) == ("2026-11-02", "2026-11-03", "pending", 2)
        assert p["gross"] == 400_00 and p["fees"] == 50 + 1_80 and p["amount"] == 400_00 - 2_30
        ids = set(conn.execute(select(payout_lines.c.transaction_id).where(payout_lines.c.payout_id == p["id"])).scalars())
        assert ids == {a, b}
        again = po.build_payouts(conn, "2026-11-03", actor="cli")
        assert again.built == [] and again.existing == [MART]
        # the other terminal settles the next day: its line goes into the next payout
        settle(conn, tid="10000002", day="2026-11-03")
        nxt = po.build_payouts(conn, "2026-11-04", actor="cli").built
        assert [x["lines"] for x in nxt] == [1] and nxt[0]["amount"] == 50_00 - 25
        assert conn.execute(select(payout_lines.c.payout_id).where(payout_lines.c.transaction_id == later)).scalar() == nxt[0]["id"]
        st = po.statement(conn, MART, "2026-11-02", "2026-11-02")
        assert st["opening"] == 0 and st["paid"] == p["amount"] and st["closing"] == 50_00 - 25  # owed, paid the day after
        st3 = po.statement(conn, MART, "2026-11-03", "2026-11-03")
        assert st3["opening"] == 50_00 - 25 and st3["lines"] == [] and st3["closing"] == 0
        actions = list(conn.execute(select(s.audit_log.c.action).where(s.audit_log.c.object_type == "payout")).scalars())
    assert actions == ["payout.built", "payout.built"]


def test_refunds_beyond_sales_are_carried_not_paid(demo: Database) -> None:
    k = demo.keyring
    with demo.engine.begin() as conn:
        sale = add_txn(conn, k, day="2026-11-01", amount=100_00, batch="000000")
        po.build_payouts(conn, "2026-11-02", actor="cli")
        add_txn(conn, k, day="2026-11-02", amount=80_00, op="refund", pc="200000", original=sale, batch="000000")
        r = po.build_payouts(conn, "2026-11-03", actor="cli")
        assert r.built == [] and r.carried == [{"merchant_id": MART, "business_day": "2026-11-02", "lines": 1, "amount": -80_00}]
        add_txn(conn, k, day="2026-11-03", amount=200_00, batch="000000")
        p = po.build_payouts(conn, "2026-11-04", actor="cli").built[0]
        assert p["lines"] == 2 and p["amount"] == 200_00 - 1_00 - 80_00
        assert po.statement(conn, MART, "2026-11-03", "2026-11-03")["opening"] == -80_00


def test_payout_is_held_without_an_account_and_released_by_an_approved_one(demo: Database) -> None:
    k = demo.keyring
    with demo.engine.begin() as conn:
        conn.execute(update(bank_accounts).where(bank_accounts.c.merchant_id == BISTRO).values(status="replaced"))
        add_txn(conn, k, mid=BISTRO, tid="20000001", amount=100_00, batch="000000")
        p = po.build_payouts(conn, "2026-11-03", actor="cli").built[0]
        assert (p["status"], p["reason"]) == ("held", "no_bank_account")
        assert po.export_payouts(conn, k, "2026-11-03", actor="cli") is None
        cid = po.propose_bank_account(conn, k, BISTRO, account_number="31050161373600009999", bank_name="建设银行",
                                      account_name="演示餐厅", bank_code="105290036005", reason="开户", actor="bistro-admin")  # fmt: skip
        po.decide_bank_account(conn, cid, True, actor="admin")
        assert po.get_payout(conn, p["id"])["status"] == "pending"
        assert po.export_payouts(conn, k, "2026-11-03", actor="cli").count == 1


def _export(conn: Any, k: Any, day: str) -> tuple[po.ExportResult, list[dict[str, str]]]:
    r = po.export_payouts(conn, k, day, actor="cli")
    assert r is not None
    return r, list(csv.DictReader(io.StringIO(r.content.decode("utf-8"))))


def test_payout_file_and_the_banks_return_file(demo: Database) -> None:
    k = demo.keyring
    with demo.engine.begin() as conn:
        add_txn(conn, k, amount=1234_56, batch="000000")
        add_txn(conn, k, mid=BISTRO, tid="20000001", amount=99_99, pan=CREDIT, batch="000000")
        built = po.build_payouts(conn, "2026-11-03", actor="cli").built
        mart, bistro = sorted(built, key=lambda p: p["merchant_id"])
        r, rows = _export(conn, k, "2026-11-03")
        assert not r.content.startswith(b"\xef\xbb\xbf") and b"\r\n" in r.content
        assert r.name == f"posgate-payouts-2026-11-03-{r.file_id:04d}.csv" and r.count == 2 and r.total == mart["amount"] + bistro["amount"]
        assert list(rows[0]) == po.FILE_HEADER
        m = rows[0]
        assert (m["payout_ref"], m["merchant_id"], m["account_number"], m["bank_code"], m["currency"], m["attempt"]) == (
            po.payout_ref(mart["id"]), MART, MART_ACCOUNT, "102290000018", "CNY", "1")
        assert m["amount"] == f"{mart['amount'] // 100}.{mart['amount'] % 100:02d}" and m["account_name"] == "上海演示便利店有限公司"
        assert po.get_payout(conn, mart["id"])["status"] == "exported"
        assert po.export_payouts(conn, k, "2026-11-03", actor="cli") is None  # nothing left to send

        def ret(*lines: str) -> bytes:
            return ("\ufeffpayout_ref,status,amount,bank_ref,reason\r\n" + "\r\n".join(lines) + "\r\n").encode()

        ma, ba = m["amount"], rows[1]["amount"]
        bad_files = [
            ret(f"{m['payout_ref']},paid,{ma},B1,", f"{rows[1]['payout_ref']},paid,1.00,B2,"),  # amount differs
            ret(f"{m['payout_ref']},paid,{ma},B1,", "PO9999999999,paid,1.00,B2,"),  # unknown payout
            ret(f"{m['payout_ref']},paid,{ma},B1,", f"{m['payout_ref']},paid,{ma},B1,"),  # twice
            ret(f"{m['payout_ref']},failed,{ma},B1,"),  # a failure without the bank's reason
            ret(f"{m['payout_ref']},lost,{ma},B1,x"),
            b"ref,state\r\nPO1,paid\r\n", b"\xff\xfe\x00",
        ]  # fmt: skip
        for content in bad_files:
            with pytest.raises(po.PayoutError):
                po.import_return(conn, content, actor="cli")
        assert {po.get_payout(conn, p["id"])["status"] for p in built} == {"exported"}  # nothing changed
        done = po.import_return(conn, ret(f"{m['payout_ref']},paid,{ma},B1,", f"{rows[1]['payout_ref']},failed,{ba},B2,户名不符"),
                                actor="cli")  # fmt: skip
        assert [(d["status"], d["reason"]) for d in done] == [("paid", None), ("failed", "户名不符")]
        assert po.get_payout(conn, mart["id"])["bank_ref"] == "B1"
        assert po.count_failed_payouts(conn) == 1 and po.count_failed_payouts(conn, MART) == 0 and po.count_failed_payouts(conn, BISTRO) == 1
        again = po.import_return(conn, ret(f"{m['payout_ref']},paid,{ma},B1,"), actor="cli")
        assert again == [{"id": mart["id"], "ref": m["payout_ref"], "status": "paid", "already": True}]
        # a failed payout stays out of the files until someone retries it
        assert po.export_payouts(conn, k, "2026-11-04", actor="cli") is None
        with pytest.raises(po.PayoutError):
            po.retry_payout(conn, mart["id"], actor="support")
        po.retry_payout(conn, bistro["id"], actor="support")
        r2, rows2 = _export(conn, k, "2026-11-04")
        assert [x["payout_ref"] for x in rows2] == [rows[1]["payout_ref"]] and rows2[0]["attempt"] == "2"
        # the bank asks for it again: back to pending, in the next file
        po.import_return(conn, ret(f"{rows[1]['payout_ref']},retry,{ba},B3,系统繁忙"), actor="cli")
        assert po.get_payout(conn, bistro["id"])["status"] == "pending"
        _r3, rows3 = _export(conn, k, "2026-11-04")
        assert rows3[0]["attempt"] == "3"
        actions = list(conn.execute(select(s.audit_log.c.action).where(s.audit_log.c.object_id == str(bistro["id"]),
                                                                       s.audit_log.c.object_type == "payout")).scalars())  # fmt: skip
        audit_text = str(conn.execute(select(s.audit_log)).mappings().all())
    assert actions == ["payout.built", "payout.exported", "payout.failed", "payout.retried", "payout.exported", "payout.retried",
                       "payout.exported"]  # fmt: skip
    assert MART_ACCOUNT not in audit_text


def test_d0_pays_todays_settled_amount_at_its_fee_and_t1_the_rest(demo: Database) -> None:
    k = demo.keyring
    now = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)  # 14:00 in Shanghai
    with demo.engine.begin() as conn:
        with pytest.raises(po.PayoutError, match="Nothing settled"):
            po.request_d0(conn, MART, actor="mart-admin", now=now)
        add_txn(conn, k, amount=1000_00)
        settle(conn)
        add_txn(conn, k, tid="10000002", amount=200_00)  # not settled: left for T+1
        q = po.d0_quote(conn, MART, now)
        assert (q["count"], q["base"], q["d0_fee"]) == (1, 1000_00 - 5_00, (995_00 * 5 + 5000) // 10000)
        p = po.request_d0(conn, MART, actor="mart-admin", now=now)
        assert (p["kind"], p["value_date"], p["amount"], p["d0_fee"]) == ("d0", "2026-11-02", q["amount"], q["d0_fee"])
        with pytest.raises(po.PayoutError, match="already"):
            po.request_d0(conn, MART, actor="mart-admin", now=now)
        settle(conn, tid="10000002")
        t1 = po.build_payouts(conn, "2026-11-03", actor="cli").built[0]
        assert t1["lines"] == 1 and t1["amount"] == 200_00 - 1_00
        st = po.statement(conn, MART, "2026-11-02", "2026-11-02")
        assert st["d0_fees"] == q["d0_fee"] and st["paid"] == p["amount"] + t1["amount"] and st["closing"] == 0


def test_month_bounds_and_bad_dates() -> None:
    assert po.month_bounds("2026-02") == ("2026-02-01", "2026-02-28") and po.month_bounds("2026-12")[1] == "2026-12-31"
    for bad in ("2026-13", "x"):
        with pytest.raises(po.PayoutError):
            po.month_bounds(bad)
    with pytest.raises(po.PayoutError):
        po.check_day("2026-02-30")


# ------------------------------------------------------------------ property: statements add up to the payouts


CARDS = [(DEBIT, "CUP", "021", "debit"), (CREDIT, "CUP", "051", "credit"), (VISA, "VIS", "021", "foreign"),
         (QR, "CUP", "031", "qr")]  # fmt: skip
RATES = {"debit": (50, 20_00), "credit": (60, None), "foreign": (150, None), "qr": (38, None)}


def model_fee(kind: str, amount: int) -> int:
    rate, cap = RATES[kind]
    f = (amount * rate + 5000) // 10000 if amount > 0 else 0
    return min(f, cap) if cap is not None else f


@dataclass
class Sale:
    id: int
    day: str
    kind: int
    amount: int
    refunded: int = 0
    voided: bool = False
    annulled: bool = False
    adjusted: int | None = None


ops = st.lists(st.tuples(st.sampled_from(["sale", "sale", "void", "refund", "adjust", "annul"]), st.integers(0, 3),
                         st.integers(1, 1_200_000), st.integers(0, 50)), min_size=1, max_size=8)  # fmt: skip
days_strategy = st.lists(st.tuples(ops, st.booleans()), min_size=1, max_size=4)  # (the day's operations, a D0 at its end)
_merchants = itertools.count(1)


@pytest.fixture(scope="module")
def prop_db(tmp_path_factory: pytest.TempPathFactory) -> Any:
    d = tmp_path_factory.mktemp("payouts-prop")
    db = Database.open(f"sqlite:///{d / 'p.db'}", key_file=d / "p.key")
    provision_demo(db.engine, db.keyring)
    yield db
    db.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(days=days_strategy)
def test_statement_lines_add_up_to_the_payouts_cent_for_cent(prop_db: Database, days: list[tuple[list[tuple[str, int, int, int]], bool]]) -> None:
    from posgate.store.admin import add_merchant

    n = next(_merchants)
    mid, tid = f"8981999{n:08d}", f"9{n:07d}"
    k = prop_db.keyring
    expected_fee: dict[int, int] = {}
    day_names = [f"2026-10-{i + 1:02d}" for i in range(len(days))]
    with prop_db.engine.begin() as conn:
        add_merchant(conn, mid, "测试", "5411", 60, actor="t")
        po.provision_account(conn, k, mid, account_number="1234567890123", bank_name="银行", account_name="户名",
                             bank_code="102290000018", actor="t")  # fmt: skip
        sales: list[Sale] = []
        carry, model_payouts = 0, []
        model_d0 = []
        for day, (day_ops, d0) in zip(day_names, days, strict=True):
            net_day = 0
            for what, card, amount, pick in day_ops:
                pan, org, entry, kind = CARDS[card]
                live = [x for x in sales if not x.voided and not x.annulled]
                target = live[pick % len(live)] if live else None
                if what == "sale" or target is None:
                    tx = add_txn(conn, k, mid=mid, tid=tid, day=day, amount=amount, pan=pan, org=org, entry=entry)
                    sales.append(Sale(tx, day, card, amount))
                    expected_fee[tx] = model_fee(kind, amount)
                    net_day += amount - expected_fee[tx]
                    continue
                tpan, torg, tentry, tkind = CARDS[target.kind]
                base = target.adjusted if target.adjusted is not None else target.amount
                if what == "void" and target.day == day and not target.refunded and target.adjusted is None:
                    tx = add_txn(conn, k, mid=mid, tid=tid, day=day, amount=target.amount, op="void", pc="200000", pan=tpan,
                                 org=torg, entry=tentry, original=target.id)  # fmt: skip
                    conn.execute(update(s.transactions).where(s.transactions.c.id == target.id).values(status="voided"))
                    target.voided = True
                    expected_fee[tx] = -model_fee(tkind, target.amount)
                    net_day += -target.amount - expected_fee[tx]
                elif what == "refund" and base - target.refunded > 0:
                    part = 1 + amount % (base - target.refunded)
                    tx = add_txn(conn, k, mid=mid, tid=tid, day=day, amount=part, op="refund", pc="200000", pan=tpan, org=torg,
                                 entry=tentry, original=target.id)  # fmt: skip
                    target.refunded += part
                    expected_fee[tx] = 0
                    net_day += -part
                elif what == "adjust" and not target.refunded and target.adjusted is None and amount != target.amount:
                    delta = amount - target.amount
                    tx = add_txn(conn, k, mid=mid, tid=tid, day=day, amount=abs(delta), op="adjustment",
                                 pc="000000" if delta > 0 else "200000", pan=tpan, org=torg, entry=tentry, original=target.id,
                                 batch="000000", source="makeup")  # fmt: skip
                    target.adjusted = amount
                    expected_fee[tx] = model_fee(tkind, amount) - model_fee(tkind, target.amount)
                    net_day += delta - expected_fee[tx]
                elif what == "annul" and target.adjusted is None:
                    left = target.amount - target.refunded
                    tx = add_txn(conn, k, mid=mid, tid=tid, day=day, amount=left, op="annulment", pc="200000", pan=tpan,
                                 org=torg, entry=tentry, original=target.id, batch="000000", source="makeup")  # fmt: skip
                    target.annulled = True
                    expected_fee[tx] = -model_fee(tkind, target.amount)
                    net_day += -left - expected_fee[tx]
            settle(conn, tid=tid, mid=mid, day=day)
            # the model: a positive balance is paid out (D0 less its 0.05 % when asked), a negative one carried
            owed = carry + net_day
            d0_fee = (owed * 5 + 5000) // 10000 if d0 and owed > 0 else 0
            if d0 and owed > 0:
                p0 = po.request_d0(conn, mid, actor="t", now=_day_time(day, 59) + timedelta(hours=4))
                assert (p0["amount"], p0["d0_fee"], p0["value_date"]) == (owed - d0_fee, d0_fee, day)
            built = po.build_payouts(conn, po.day_offset(day, 1), actor="t").built
            model_payouts.append(max(owed, 0) - d0_fee)
            model_d0.append(d0_fee)
            carry = min(owed, 0)
            mine = [p for p in built if p["merchant_id"] == mid]
            assert [p["amount"] for p in mine] == ([owed] if owed > 0 and not d0 else [])

        got_fees = {x["id"]: x["fee"] for x in po.lines(conn, mid, day_names[0], day_names[-1])}
        assert got_fees == expected_fee  # every line's fee, cent for cent
        for p in po.list_payouts(conn, mid):
            lines = po.payout_lines_of(conn, p["id"])
            assert sum(x["net"] for x in lines) - p["d0_fee"] == p["amount"] > 0
            assert sum(x["amount_signed"] for x in lines) == p["gross"] and sum(x["fee"] for x in lines) + p["d0_fee"] == p["fees"]
        closing = 0
        for day, paid, fee in zip(day_names, model_payouts, model_d0, strict=True):
            stmt = po.statement(conn, mid, day, day)
            assert stmt["opening"] == closing and stmt["d0_fees"] == fee
            assert stmt["opening"] + sum(x["net"] for x in stmt["lines"]) - stmt["d0_fees"] - stmt["paid"] == stmt["closing"]
            assert stmt["paid"] == paid and stmt["closing"] <= 0  # everything owed was paid; a debt is carried
            closing = stmt["closing"]
        month = po.statement(conn, mid, "2026-10-01", "2026-10-31")
        assert month["opening"] == 0 and month["paid"] == sum(model_payouts) and month["closing"] == carry
        assert month["net"] == sum(model_payouts) + carry and month["d0_fees"] == sum(model_d0)
        assert sum(x["net"] for x in month["lines"]) == month["paid"] + sum(model_d0) + month["closing"]
        assert conn.execute(select(payouts.c.id).where(payouts.c.merchant_id == mid, payouts.c.amount <= 0)).first() is None


# ------------------------------------------------------------------ posgate admin payouts


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    db = Database.open(url)
    provision_demo(db.engine, db.keyring)
    with db.engine.begin() as conn:
        add_txn(conn, db.keyring, day="2026-11-02", amount=500_00, batch="000000")
        add_txn(conn, db.keyring, mid=BISTRO, tid="20000001", day="2026-11-02", amount=88_00, pan=CREDIT, batch="000000")
    db.close()

    def run(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, [*args, "--db", url])

    return run


def test_build_export_return_retry(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = cli("admin", "payouts", "build", "--date", "2026-11-03")
    assert r.exit_code == 0, r.output
    assert f"{MART} business day 2026-11-02: 1 lines, 497.50 CNY (pending)" in r.output
    assert f"{BISTRO} business day 2026-11-02: 1 lines, 87.67 CNY (pending)" in r.output  # Bistro's credit rate 0.38 %
    again = cli("admin", "payouts", "build", "--date", "2026-11-03")
    assert again.exit_code == 0 and "built already" in again.output
    assert cli("admin", "payouts", "build", "--date", "2026-11-31").exit_code == 1

    out = tmp_path / "out"
    out.mkdir()
    r = cli("admin", "payouts", "export", "--date", "2026-11-03", "--dir", str(out))
    assert r.exit_code == 0, r.output
    (path,) = out.iterdir()
    assert f"{path}: 2 payouts, 585.17 CNY" in r.output and MART_ACCOUNT not in r.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    rows = list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8"))))
    assert [x["account_number"] for x in rows][0] == MART_ACCOUNT and [x["amount"] for x in rows] == ["497.50", "87.67"]
    r = cli("admin", "payouts", "export", "--date", "2026-11-03", "--dir", str(out))
    assert r.exit_code == 0 and "no payout waits for a file" in r.output

    listed = json.loads(cli("admin", "payouts", "list", "--json").output)
    assert {x["status"] for x in listed} == {"exported"} and MART_ACCOUNT not in json.dumps(listed)
    mart_ref = next(x["ref"] for x in listed if x["merchant_id"] == MART)
    bistro_ref = next(x["ref"] for x in listed if x["merchant_id"] == BISTRO)

    ret = tmp_path / "return.csv"
    ret.write_text(f"payout_ref,status,amount,bank_ref,reason\n{mart_ref},paid,497.50,B1,\n{bistro_ref},paid,1.00,B2,\n",
                   encoding="utf-8")  # fmt: skip
    r = cli("admin", "payouts", "import-return", str(ret))
    assert r.exit_code == 1 and "the bank returns 1.00" in r.output
    assert {x["status"] for x in json.loads(cli("admin", "payouts", "list", "--json").output)} == {"exported"}
    assert cli("admin", "payouts", "import-return", str(tmp_path / "missing.csv")).exit_code == 1

    ret.write_text(f"payout_ref,status,amount,bank_ref,reason\n{mart_ref},paid,497.50,B1,\n{bistro_ref},failed,87.67,B2,账户已销户\n",
                   encoding="utf-8")  # fmt: skip
    r = cli("admin", "payouts", "import-return", str(ret))
    assert r.exit_code == 0 and f"{mart_ref}: paid" in r.output and f"{bistro_ref}: failed — 账户已销户" in r.output
    failed = cli("admin", "payouts", "list", "--status", "failed")
    assert bistro_ref in failed.output and mart_ref not in failed.output
    assert cli("admin", "payouts", "retry", mart_ref[2:].lstrip("0")).exit_code == 1  # paid: nothing to retry
    r = cli("admin", "payouts", "retry", bistro_ref[2:].lstrip("0"))
    assert r.exit_code == 0 and "next payout file" in r.output
    r = cli("admin", "payouts", "export", "--date", "2026-11-04", "--dir", str(out))
    assert r.exit_code == 0 and "1 payouts, 87.67 CNY" in r.output


def test_failed_count_for_notices_on_an_empty_ledger(tmp_path: Path) -> None:
    db = Database.open(f"sqlite:///{tmp_path / 'n.db'}")
    provision_demo(db.engine, db.keyring)
    with db.engine.begin() as conn:
        assert po.count_failed_payouts(conn) == 0 and po.count_failed_payouts(conn, MART) == 0
    db.close()
