"""A fallback transaction (a chip card read from its stripe after a chip failure, entry mode 80x,
docs/decisions.md C4) is shown as such on the transaction page (降级交易 / Fallback) and on its
slip."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update

from posgate.console.receipt import build_slip
from posgate.receipt import Slip
from posgate.store import schema as s

from .helpers import MART, Env, _txn, login

CHIP = "6225880000000000010"


def test_the_transaction_page_and_the_slip_say_fallback(env: Env) -> None:
    with env.db.engine.begin() as conn:
        fallback = _txn(conn, env.db.keyring, tid="10000001", mid=MART, stan="000951", amount=30_00, pan=CHIP)
        conn.execute(update(s.transactions).where(s.transactions.c.id == fallback).values(entry_mode="801"))
        plain = _txn(conn, env.db.keyring, tid="10000001", mid=MART, stan="000952", amount=1_00)
    c = login(env.client(), "admin")
    c.cookies.set("posgate_lang", "zh_CN")
    zh = c.get(f"/transactions/{fallback}").text
    assert 'data-testid="fallback">降级交易<' in zh and "刷卡（芯片降级）" in zh
    assert 'data-testid="fallback"' not in c.get(f"/transactions/{plain}").text
    c.cookies.set("posgate_lang", "en")
    assert 'data-testid="fallback">Fallback<' in c.get(f"/transactions/{fallback}").text
    pdf = c.get(f"/transactions/{fallback}/receipt.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_the_slip_built_from_the_record_carries_the_fallback_entry_mode() -> None:
    txn = {"merchant_id": MART, "terminal_id": "10000001", "operation": "sale", "batch_no": "000001", "stan": "000951",
           "amount": 30_00, "entry_mode": "801", "pan_masked": "622588*********0010",
           "created_at": datetime(2026, 12, 3, 2, 0, tzinfo=UTC)}  # fmt: skip
    slip: Slip = build_slip(txn, {"name": "演示便利店"}, None, "Asia/Shanghai")
    assert slip.entry_mode == "fallback"
    txn["entry_mode"] = "021"
    assert build_slip(txn, {"name": "演示便利店"}, None, "Asia/Shanghai").entry_mode == ""
