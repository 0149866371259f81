"""A whole trading day, terminal ↔ host in memory (architecture.md "pair harness")."""

from __future__ import annotations

import pytest

from pair.harness import CARDS, PairTerminal, balance_of, make_world
from posgate.dialect.cup import CODEC
from posgate.dialect.fields import SettlementTotals, SideTotals


@pytest.mark.parametrize("scheme", ["001", "003", "004"])
def test_sign_on_every_scheme_then_sale(scheme: str) -> None:
    w = make_world()
    t = PairTerminal(w)
    r = t.sign_on(scheme)
    assert r.code == "00" and r.requirement == "0"
    assert t.keys is not None and (t.keys.tdk is not None) == (scheme == "004")
    s = t.sale("ok", 1234)
    assert s.code == "00" and s.mac_ok is True


def test_a_trading_day() -> None:
    w = make_world()
    store = w.store
    t = PairTerminal(w)
    assert t.sign_on("004").code == "00"
    assert store.sign_ons[-1].cause == "daily"

    # Sales with every demo card (docs/demo-data.md "what a sale gets").
    expected = {"ok": "00", "poor": "51", "expired": "54", "lost": "41", "stolen": "43", "restricted": "62",
                "limited": "61", "credit": "00", "visa": "00"}  # fmt: skip
    for card, code in expected.items():
        r = t.sale(card, 60_000)
        assert r.code == code, card
        assert r.mac_ok is True, card  # declines too (docs/decisions.md R1)
    assert t.sale("limited", 50_000).code == "00"  # at the per-transaction limit
    assert t.sale("poor", 1_000).code == "00"  # exactly the balance
    visa = next(x for x in t.journal if x.pan == CARDS["visa"][0])
    assert visa.org == "VIS"

    # Balance in 54.
    b = t.balance("ok")
    assert b.code == "00" and balance_of(b) == 10_000_000 - 60_000

    # Void of a sale: full amount, same batch, same day.
    sale = t.sale("ok", 8_800)
    assert sale.code == "00"
    orig = t.journal[-1]
    assert t.void(orig, amount=8_000).code == "64"
    v = t.void(orig)
    assert v.code == "00" and v.mac_ok
    assert t.void(orig).code == "12"  # already voided

    # Refund: partial, repeated, up to the original amount.
    assert t.sale("ok", 10_000).code == "00"
    big = t.journal[-1]
    assert t.refund(big, 3_000).code == "00"
    assert t.refund(big, 6_000).code == "00"
    assert t.refund(big, 2_000).code == "61"  # 11,000 > 10,000
    assert t.refund(big, 1_000).code == "00"
    assert t.refund(big, 1).code == "12"  # fully refunded
    assert store.find_by_rrn(big.rrn)[0].status == "refunded"

    # Pre-auth → completion → completion void; pre-auth void.
    assert t.preauth("credit", 100_000).code == "00"
    pre = t.journal[-1]
    assert t.completion(pre, 116_000).code == "64"  # above 115 %
    c = t.completion(pre, 110_000)
    assert c.code == "00" and c.mac_ok
    comp = t.journal[-1]
    assert t.completion(pre, 100_000).code == "12"  # already completed
    assert t.completion_void(comp).code == "00"
    assert t.preauth("ok", 20_000).code == "00"
    pre2 = t.journal[-1]
    assert t.preauth_void(pre2, 1).code == "64"
    assert t.preauth_void(pre2).code == "00"
    card = store.card_by_pan(CARDS["ok"][0])
    assert card is not None and card.held == 0

    # Reversal of a timed-out sale (the terminal never saw the reply).
    before = store.card_by_pan(CARDS["ok"][0]).balance  # type: ignore[union-attr]
    lost = t.sale("ok", 4_400)
    assert lost.code == "00"
    t.journal.pop()  # timed out: the terminal does not know it was approved
    rv = t.reversal_of(lost.request)
    assert rv.code == "00" and rv.mac_ok
    assert store.card_by_pan(CARDS["ok"][0]).balance == before  # type: ignore[union-attr]
    assert t.reversal_of(lost.request).code == "00"  # repeated: same reply, nothing more
    assert store.card_by_pan(CARDS["ok"][0]).balance == before  # type: ignore[union-attr]

    # Reversal of a sale that never reached the host; the sale arriving late is never approved.
    # A sale with a fresh STAN that "never arrives": the terminal times out and reverses it;
    # the network then delivers the sale late.
    never = lost.request.replace(f11=t.next_stan())
    never_body = CODEC.encode(never, mac=t.mac)
    assert t.reversal_of(never).code == "00"
    late = w.process(never_body)
    assert late.response_code == "12"

    # Offline advice (30), tip adjust on a sale (34), e-signature.
    off = t.offline("offline_settlement", 7_700)
    assert off.code == "00" and off.reply is not None and off.reply.text(38) == "654321"
    assert t.sale("ok", 5_000).code == "00"
    tipped = t.journal[-1]
    tip = t.offline("tip_adjust", 5_600, original=tipped, tip=600)
    assert tip.code == "00"
    t.journal[-1].extra["replaces"] = id(tipped)
    sig = t.signature(tipped, receipt=bytes.fromhex("FF0003414243"))
    assert sig.code == "00" and sig.mac_ok
    assert store.signatures[-1].jbig and store.find_by_rrn(tipped.rrn)[0].signed

    # Settlement balanced, batch upload (offline advices only), end 207.
    s = t.settle()
    assert s.code == "00"
    flags = SettlementTotals.parse(s.reply.text(48))  # type: ignore[union-attr]
    assert (flags.domestic.flag, flags.foreign.flag) == ("1", "1"), store.settlements
    offline = [x for x in t.journal if x.kind in ("offline_settlement", "tip_adjust")]
    for x in offline:
        assert t.resend_advice(x).code == "00"
    end = t.upload_end(len(offline), balanced=True)
    assert end.code == "00" and end.reply is not None and end.reply.text(48) == f"{len(offline):04d}"
    settlement = store.latest_settlement(t.tid, t.batch)
    assert settlement is not None and settlement.status == "balanced" and settlement.upload_end == "207"
    t.after_settlement()
    assert store.terminal(t.tid).batch_no == t.batch == "000002"  # type: ignore[union-attr]

    # Sign-off: no financial message until the next sign-on.
    assert t.sign_off().code == "00"
    r = t.sale("ok", 100)
    assert r.code == "22" and r.requirement == "3"
    assert [e.kind for e in store.sign_ons] == ["sign_on", "sign_off"]


def test_unbalanced_settlement_then_batch_upload_with_differences() -> None:
    w = make_world()
    store = w.store
    t = PairTerminal(w, "20000001")
    assert t.sign_on("003").code == "00"
    for card, amount in (("ok", 1_000), ("credit", 2_000), ("visa", 3_000), ("ok", 4_000)):
        assert t.sale(card, amount).code == "00"
    lost_on_terminal = t.journal.pop()  # the terminal lost its journal line of the 4,000 sale
    # And the terminal believes in a sale the host never approved.
    phantom = type(lost_on_terminal)("sale", "000099", t.batch, 9_900, CARDS["ok"][0], "", "", "0506", "CUP")
    t.journal.append(phantom)
    # An offline advice the host has not seen yet (it failed to go out before settlement).
    offline = type(lost_on_terminal)("offline_settlement", t.next_stan(), t.batch, 700, CARDS["ok"][0], "", "",
                                     "0506", "CUP", {"auth": "111111"})  # fmt: skip
    t.journal.append(offline)

    s = t.settle()
    assert s.code == "00"
    flags = SettlementTotals.parse(s.reply.text(48))  # type: ignore[union-attr]
    assert flags.domestic.flag == "2" and flags.foreign.flag == "1"
    domestic = [x for x in t.journal if x.org == "CUP" and x.kind == "sale"]
    replies = t.upload(domestic)
    assert all(r.code == "00" for r in replies)
    assert t.resend_advice(offline).code == "00"  # D11: recorded now, it was new
    end = t.upload_end(len(domestic) + 1, balanced=False)
    assert end.code == "00" and end.reply is not None and end.reply.text(48) == f"{len(domestic) + 1:04d}"

    kinds = sorted((d.kind, d.stan) for d in store.differences)
    assert kinds == [("missing_on_host", "000099"), ("missing_on_terminal", lost_on_terminal.stan)]
    s_rec = store.latest_settlement(t.tid, t.batch)
    assert s_rec is not None and s_rec.status == "unbalanced" and s_rec.upload_end == "202"
    recorded = [x for x in store.batch_transactions(t.tid, t.batch) if x.source == "batch_upload"]
    assert len(recorded) == 1 and recorded[0].operation == "offline_settlement" and recorded[0].auth_code == "111111"


def test_unbalanced_settlement_reconciled_by_the_upload_of_an_offline_advice() -> None:
    w = make_world()
    t = PairTerminal(w)
    assert t.sign_on().code == "00"
    assert t.sale("ok", 1_000).code == "00"
    offline = type(t.journal[0])("offline_settlement", t.next_stan(), t.batch, 500, CARDS["ok"][0], "", "", "0506",
                                 "CUP", {"auth": "222222"})  # fmt: skip
    t.journal.append(offline)
    s = t.settle()
    assert SettlementTotals.parse(s.reply.text(48)).domestic.flag == "2"  # type: ignore[union-attr]
    assert all(r.code == "00" for r in t.upload([x for x in t.journal if x.kind == "sale"]))
    assert t.resend_advice(offline).code == "00"
    assert t.upload_end(2, balanced=False).code == "00"
    rec = w.store.latest_settlement(t.tid, t.batch)
    assert rec is not None and rec.status == "reconciled" and not w.store.differences


def test_settlement_totals_count_voids_as_credits_and_exclude_reversals() -> None:
    w = make_world()
    t = PairTerminal(w)
    t.sign_on()
    t.sale("ok", 1_000)
    t.void(t.journal[-1])
    r = t.sale("ok", 2_000)
    t.journal.pop()
    t.reversal_of(r.request)
    t.sale("visa", 3_000)
    expected = SettlementTotals(SideTotals(1_000, 1, 1_000, 1), SideTotals(3_000, 1, 0, 0))
    assert t.totals() == expected
    s = t.settle()
    assert SettlementTotals.parse(s.reply.text(48)) == SettlementTotals(  # type: ignore[union-attr]
        SideTotals(1_000, 1, 1_000, 1, "1"), SideTotals(3_000, 1, 0, 0, "1")
    )


def test_an_amount_mismatch_is_one_difference_even_when_the_upload_is_resent() -> None:
    """The host has the sale with 2,000, the terminal's journal says 2,500: one amount_mismatch,
    not also "missing on terminal" at the end; a re-sent upload and end add nothing."""
    from dataclasses import replace

    w = make_world()
    store = w.store
    t = PairTerminal(w, "20000001")
    assert t.sign_on("003").code == "00"
    assert t.sale("ok", 1_000).code == "00"
    assert t.sale("ok", 2_000).code == "00"
    t.journal[-1] = replace(t.journal[-1], amount=2_500)
    assert t.settle().code == "00"
    sales = [x for x in t.journal if x.kind == "sale"]
    for _attempt in range(2):  # the second time: the terminal did not get the replies and retries
        assert all(r.code == "00" for r in t.upload(sales))
        assert t.upload_end(len(sales), balanced=False).code == "00"
        diffs = [(d.kind, d.stan, d.terminal_amount, d.host_amount) for d in store.differences]
        assert diffs == [("amount_mismatch", sales[1].stan, 2_500, 2_000)]
