"""Financial participants: PIN, issuer rules, risk, originals (void, refund, pre-auth, advices)."""

from __future__ import annotations

import pytest

from pair.harness import CARDS, PairTerminal, make_world
from posgate.crypto import encrypt_pin
from posgate.dialect.fields import Field60, Field61


@pytest.fixture
def pair() -> tuple:
    w = make_world()
    t = PairTerminal(w)
    assert t.sign_on().code == "00"
    return w, t


def test_wrong_pin_55_third_75_blocked_until_next_day(pair: tuple) -> None:
    w, t = pair
    assert t.sale("ok", 100, pin="000000").code == "55"
    assert t.sale("ok", 100, pin="111111").code == "55"
    assert t.sale("ok", 100, pin="222222").code == "75"
    assert t.sale("ok", 100).code == "75"  # even the right PIN, today
    assert t.balance("ok").code == "75"
    w.clock.next_day()
    t.sign_on()
    assert t.sale("ok", 100).code == "00"


def test_right_pin_resets_the_count(pair: tuple) -> None:
    w, t = pair
    assert t.sale("ok", 100, pin="000000").code == "55"
    assert t.sale("ok", 100).code == "00"
    assert t.sale("ok", 100, pin="000000").code == "55"
    assert t.sale("ok", 100, pin="000000").code == "55"
    assert t.sale("ok", 100).code == "00"


def test_pin_block_under_another_key_is_99(pair: tuple) -> None:
    w, t = pair
    block = encrypt_pin(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"), "123456", CARDS["ok"][0])
    r = t.financial("sale", 100, "ok", None, extra={52: block, 26: "12", 53: "2600000000000000", 22: "021"})
    assert r.code == "99"


def test_no_pin_is_accepted_by_the_builtin_issuer(pair: tuple) -> None:
    w, t = pair
    assert t.sale("ok", 100, pin=None).code == "00"


def test_unknown_and_invalid_pans_are_14(pair: tuple) -> None:
    w, t = pair
    assert t.sale("6212142000000000020", 100, pin=None).code == "14"  # Luhn-valid, unknown to the issuer
    assert t.sale("6212142000000000013", 100, pin=None).code == "14"  # Luhn fails


def test_state_and_limit_before_balance(pair: tuple) -> None:
    w, t = pair
    w.store.update_card(w.store.pan_hash(CARDS["lost"][0]), balance=0)
    assert t.sale("lost", 100).code == "41"
    w.store.update_card(w.store.pan_hash(CARDS["limited"][0]), balance=0)
    assert t.sale("limited", 60_000).code == "61"
    assert t.sale("limited", 100).code == "51"


def test_risk_rules(pair: tuple) -> None:
    w, t = pair
    store = w.store
    store.add_risk_rule("card_velocity", {"count": 2, "minutes": 10}, "65")
    store.add_risk_rule("card_amount", {"max_amount": 30_000}, "61")
    store.add_risk_rule("merchant_amount", {"max_amount": 5_000, "merchant_id": "898100012340002"}, "61")
    assert t.sale("ok", 100).code == "00"
    assert t.sale("ok", 100).code == "00"
    assert t.sale("ok", 100).code == "65"
    w.clock.advance(minutes=11)
    assert t.sale("ok", 30_001).code == "61"
    assert t.sale("ok", 30_000).code == "00"
    assert [h["rule_id"] for h in store.risk_hits] == [1, 2]
    assert "6212142000000000012" not in repr(store.risk_hits)
    b = PairTerminal(w, "20000001")
    b.sign_on()
    assert b.sale("credit", 4_000).code == "00"
    assert b.sale("visa", 1_001).code == "61"


def test_void_rules(pair: tuple) -> None:
    w, t = pair
    assert t.void(type("X", (), {"batch": "000001", "stan": "000777", "amount": 100, "rrn": "", "auth": "",
                                 "pan": CARDS["ok"][0]})()).code == "25"  # fmt: skip
    t.sale("poor", 99_999)  # declined: nothing to void
    r = t.financial("void", 99_999, None, None, f61=Field61("000001", t.last.request.text(11)).format())
    assert r.code == "25"
    t.sale("ok", 500)
    sale = t.journal[-1]
    assert t.void(sale, card="credit").code == "25"  # another card
    w.clock.next_day()
    t.sign_on()
    assert t.void(sale).code == "25"  # not the same day


def test_refund_rules(pair: tuple) -> None:
    w, t = pair
    t.sale("ok", 1_000)
    sale = t.journal[-1]
    assert t.refund(sale, 100, date="0101").code == "25"
    assert t.refund(sale, 1_001).code == "64"
    fake = type(sale)("sale", sale.stan, sale.batch, 1_000, sale.pan, "999999999999", "", sale.day, "CUP")
    assert t.refund(fake, 100).code == "25"
    other = PairTerminal(w, "20000001")  # another merchant
    other.sign_on()
    assert other.refund(sale, 100).code == "25"
    same_merchant = PairTerminal(w, "10000002")
    same_merchant.sign_on()
    assert same_merchant.refund(sale, 100).code == "00"  # another terminal of the same merchant
    w.clock.next_day()
    t.sign_on()
    assert t.refund(sale, 900).code == "00"  # a later day


def test_preauth_rules(pair: tuple) -> None:
    w, t = pair
    assert t.preauth("poor", 5_000).code == "51"
    assert t.preauth("credit", 10_000).code == "00"
    pre = t.journal[-1]
    card = w.store.card_by_pan(CARDS["credit"][0])
    assert card is not None and card.held == 10_000
    wrong_auth = type(pre)(**{**pre.__dict__, "auth": "999999"})
    assert t.completion(wrong_auth, 5_000).code == "25"
    assert t.completion(pre, 11_500).code == "00"  # exactly 115 %
    card = w.store.card_by_pan(CARDS["credit"][0])
    assert card is not None and card.held == 0 and card.balance == 5_000_000 - 11_500
    assert t.preauth_void(pre).code == "12"  # completed


def test_completion_advice_settlement_adjust_script_advice(pair: tuple) -> None:
    w, t = pair
    t.preauth("credit", 10_000)
    pre = t.journal[-1]
    r = t.completion(pre, 9_000, advice=True)
    assert r.code == "00"
    rec = w.store.find_by_rrn(r.reply.text(37))[0]  # type: ignore[union-attr]
    assert rec.operation == "completion_advice" and rec.mti == "0220"
    off = t.offline("offline_settlement", 1_000)
    assert off.code == "00"
    offline = t.journal[-1]
    before = w.store.card_by_pan(CARDS["ok"][0]).balance  # type: ignore[union-attr]
    adj = t.offline("settlement_adjust", 800, original=offline)
    assert adj.code == "00"
    assert w.store.card_by_pan(CARDS["ok"][0]).balance == before + 200  # type: ignore[union-attr]
    assert t.offline("settlement_adjust", 800, original=offline).code == "12"  # already adjusted
    assert t.offline("tip_adjust", 900, original=t.journal[-1], tip=50).code == "64"  # 4 ≠ original + tip
    assert t.script_advice(offline).code == "00"


def test_offline_advice_for_a_lost_card_is_declined(pair: tuple) -> None:
    w, t = pair
    assert t.offline("offline_settlement", 1_000, card="lost").code == "41"


def test_signature_rules(pair: tuple) -> None:
    w, t = pair
    t.sale("ok", 100)
    sale = t.journal[-1]
    ghost = type(sale)(**{**sale.__dict__, "stan": "000555"})
    assert t.signature(ghost).code == "25"
    assert t.signature(sale).code == "00"
    assert t.signature(sale).code == "00"
    assert len(w.store.signatures) == 1


def test_reversal_of_a_refunded_sale_is_refused(pair: tuple) -> None:
    w, t = pair
    s = t.sale("ok", 1_000)
    t.refund(t.journal[-1], 100)
    assert t.reversal_of(s.request).code == "12"


def test_settlement_edge_cases(pair: tuple) -> None:
    w, t = pair
    t.sale("ok", 100)
    first = t.settle()
    assert first.code == "00"
    again = t.send("0500", dict(first.request), mac=False)  # the same 0500 again
    assert again.code == "00" and again.reply.text(48) == first.reply.text(48)  # type: ignore[union-attr]
    stale = t.settle()  # the terminal did not move to the new batch
    assert stale.code == "77" and stale.requirement == "3"
    assert stale.reply.text(48)[30] == "3" and stale.reply.text(48)[61] == "3"  # type: ignore[union-attr]


def test_batch_upload_without_settlement_is_12(pair: tuple) -> None:
    w, t = pair
    r = t.send("0320", {**t.base(), 48: "0000", 60: Field60("00", t.batch, "207").format()}, mac=False)
    assert r.code == "12"
