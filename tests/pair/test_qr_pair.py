"""Scan-to-pay (被扫) through the POS against the real host pipeline, in memory: the product
terminal core with a scanned payment code (22 = 032, the code in 59; docs/decisions.md Q1–Q4)
for every demo code's outcome, the query of the code that waits for the password, void, refund,
a reversal (the reply never arrives) and settlement totals that balance."""

from __future__ import annotations

from posgate.dialect.cup import CODEC
from posgate.dialect.qr import code_from_59
from posgate.terminal.cards import read_qr
from posgate.terminal.machine import Input

from .harness import make_world
from .test_terminal_core_pair import OK, Driver

UP_OK = "6288000000000000011"
UP_WAIT = "6288000000000000029"
UP_POOR = "6288000000000000037"
UP_EXPIRED = "6288000000000000045"
WECHAT = "134567890123456789"
ALIPAY = "281234567890123456"


def signed_on() -> Driver:
    t = Driver(make_world())
    assert t.run(Input("sign_on", scheme="004")).approved
    return t


def balance(t: Driver, code: str) -> int:
    card = t.world.store.card_by_pan(code)
    assert card is not None
    return card.balance


def test_each_demo_code_gets_its_outcome_on_the_wire_as_decided() -> None:
    t = signed_on()
    for code, want in ((UP_OK, "00"), (WECHAT, "00"), (ALIPAY, "00"), (UP_POOR, "51"), (UP_EXPIRED, "54")):
        before = balance(t, code)
        r = t.run(Input("sale", amount=12_00, card=read_qr(code)))
        assert r.response_code == want, (code, r.message)
        assert r.approved == (want == "00")
        assert balance(t, code) == before - (12_00 if want == "00" else 0)
        assert r.pan_masked == code[:6] + "*" * (len(code) - 10) + code[-4:]
        sent = CODEC.decode(t.sent[-1].body)
        assert sent.text(22) == "032" and code_from_59(sent.text(59)) == code
        assert 2 not in sent and 35 not in sent and 52 not in sent
        assert t.state.reversal is None
    approved = [x for x in t.state.txns if x.operation == "sale"]
    assert len(approved) == 3 and all(x.signature == "" for x in approved)  # no signature for QR


def test_waiting_code_is_answered_09_then_approved_by_the_query() -> None:
    t = signed_on()
    before = balance(t, UP_WAIT)
    r = t.run(Input("sale", amount=30_00, card=read_qr(UP_WAIT)))
    assert r.response_code == "09" and not r.approved and r.error == "pending"
    assert t.state.reversal is None
    entry = t.state.txn(r.stan)
    assert entry is not None and entry.status == "qr_pending"
    assert balance(t, UP_WAIT) == before  # nothing taken until the password
    host_sale = next(x for x in t.world.store.txns.values() if x.operation == "sale")
    assert host_sale.status == "pending" and host_sale.response_code == "09"

    q = t.run(Input("qr_query"))
    assert q.approved and q.auth_code and q.rrn == r.rrn, q.message
    sent = CODEC.decode(t.sent[-1].body)
    assert sent.text(3) == "730000" and code_from_59(sent.text(59)) == UP_WAIT
    assert t.state.txn(r.stan).status == "approved"  # type: ignore[union-attr]
    assert balance(t, UP_WAIT) == before - 30_00
    host_sale = t.world.store.transaction(host_sale.id)  # type: ignore[arg-type]
    assert host_sale is not None and host_sale.status == "approved" and host_sale.response_code == "00"

    again = t.run(Input("qr_query", voucher=r.stan))  # asked again: same answer, no second debit
    assert again.approved and balance(t, UP_WAIT) == before - 30_00

    s = t.run(Input("settlement"))
    assert s.approved and s.settlement is not None
    assert (s.settlement["domestic_result"], s.settlement["foreign_result"]) == ("1", "1")


def test_void_and_refund_of_qr_sales_give_the_money_back() -> None:
    t = signed_on()
    before = balance(t, UP_OK)
    sale = t.run(Input("sale", amount=20_00, card=read_qr(UP_OK)))
    assert sale.approved
    void = t.run(Input("void", voucher=sale.stan))  # the code comes from the log
    assert void.approved, void.message
    assert CODEC.decode(t.sent[-1].body).text(22) == "032"
    assert balance(t, UP_OK) == before

    wx_before = balance(t, WECHAT)
    wx = t.run(Input("sale", amount=50_00, card=read_qr(WECHAT)))
    assert wx.approved
    refund = t.run(Input("refund", amount=15_00, card=read_qr(WECHAT), rrn=wx.rrn, orig_date=wx.date))
    assert refund.approved, refund.message
    assert balance(t, WECHAT) == wx_before - 50_00 + 15_00

    s = t.run(Input("settlement"))
    assert s.approved and s.settlement is not None
    assert (s.settlement["domestic_result"], s.settlement["foreign_result"]) == ("1", "1")


def test_qr_sale_whose_reply_never_arrives_is_reversed_before_the_next_message() -> None:
    t = signed_on()
    before = balance(t, ALIPAY)
    lost = t.run(
        Input("sale", amount=8_00, card=read_qr(ALIPAY)),
        lose=lambda s: "reply" if s.purpose == "sale" else None,
    )
    assert lost.error == "timeout" and t.state.reversal is not None
    rev = t.state.reversal.message
    assert code_from_59(rev.text(59)) == ALIPAY and 2 not in rev  # the code, not a PAN
    assert balance(t, ALIPAY) == before - 8_00  # the host did it
    n = len(t.sent)
    nxt = t.run(Input("sale", amount=1_00, card=t.card(OK, amount=1_00)))
    assert nxt.approved and t.purposes(n) == ["reversal", "sale"]
    assert balance(t, ALIPAY) == before
    assert t.state.reversal is None


def test_reversal_of_a_waiting_payment_cancels_it_so_no_query_can_approve_it() -> None:
    t = signed_on()
    before = balance(t, UP_WAIT)
    lost = t.run(
        Input("sale", amount=9_00, card=read_qr(UP_WAIT)),
        lose=lambda s: "reply" if s.purpose == "sale" else None,
    )
    assert lost.error == "timeout" and t.state.reversal is not None
    assert t.run(Input("sale", amount=1_00, card=read_qr(UP_OK))).approved  # reversal goes first
    host_sale = next(x for x in t.world.store.txns.values() if x.operation == "sale" and x.amount == 9_00)
    assert host_sale.status == "reversed"
    assert balance(t, UP_WAIT) == before


def test_settlement_counts_qr_with_cards_in_the_domestic_totals_and_balances() -> None:
    t = signed_on()
    assert t.run(Input("sale", amount=10_00, card=read_qr(UP_OK))).approved
    assert t.run(Input("sale", amount=11_00, card=read_qr(WECHAT))).approved
    assert t.run(Input("sale", amount=12_00, card=t.card(OK, amount=12_00))).approved
    assert t.run(Input("sale", amount=13_00, card=read_qr(UP_POOR))).response_code == "51"
    assert t.run(Input("sale", amount=14_00, card=read_qr(UP_WAIT))).response_code == "09"  # never queried
    s = t.run(Input("settlement"))
    assert s.approved and s.settlement is not None
    assert (s.settlement["domestic_result"], s.settlement["foreign_result"]) == ("1", "1")
    for side in (s.settlement["totals"], s.settlement["host_totals"]):
        assert side["domestic"]["debit_count"] == 3 and side["domestic"]["debit_amount"] == 33_00
        assert side["foreign"]["debit_count"] == 0
