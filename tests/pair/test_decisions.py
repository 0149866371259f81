"""The project decisions D5–D9 (docs/dialect.md section 13) as terminal ↔ host scenarios."""

from __future__ import annotations

from pair.harness import CARDS, PairTerminal, make_world
from posgate.dialect.cup import CODEC
from posgate.host.participants.lapse import reinstate_merchant, sweep
from posgate.host.ports import SignOnEntry


def test_d5_no_financial_transaction_before_todays_sign_on() -> None:
    w = make_world()
    t = PairTerminal(w)
    t.sign_on()
    assert t.sale().code == "00"
    w.clock.next_day()  # 10:00 the next day, Asia/Shanghai
    r = t.sale()
    assert r.code == "22" and r.requirement == "3"
    assert "RequireSignedOnToday" in {step[0] for step in r.host.trace if step[1] == "ABORTED"}
    assert t.sign_on().code == "00"
    assert w.store.sign_ons[-1].cause == "daily"
    assert t.sale().code == "00"


def test_d5_day_is_the_acquirer_time_zone() -> None:
    w = make_world()
    t = PairTerminal(w)
    w.clock.advance(hours=13, minutes=30)  # 15:30 UTC = 23:30 in Shanghai
    t.sign_on()
    w.clock.advance(minutes=40)  # 16:10 UTC: still the same UTC day, but 00:10 in Shanghai
    assert t.sale().code == "22"


def test_d5_checked_before_the_mac() -> None:
    w = make_world()
    t = PairTerminal(w)
    t.sign_on()
    w.clock.next_day()
    t.keys = type(t.keys)(pik=t.keys.pik, mak=bytes(8), tdk=t.keys.tdk)  # type: ignore[union-attr]
    r = t.sale()
    assert r.code == "22"
    assert w.store.terminal(t.tid).mac_failures == 0  # type: ignore[union-attr]


def test_d6_lapsed_merchant_is_suspended_and_refused() -> None:
    w = make_world()
    store = w.store
    t = PairTerminal(w)
    t.sign_on()  # day 0
    w.clock.next_day(3)  # days 1, 2 without a sign-on; day 3 has only just begun
    assert t.sign_on().code == "00"
    w.clock.next_day(4)  # days 4, 5, 6 without a sign-on: lapsed
    r = t.sign_on()
    assert r.code == "03"
    m = store.merchant(t.mid)
    assert m is not None and m.status == "suspended"
    assert store.extra[("merchant", t.mid)]["suspended_by"] == "system:D6"
    assert store.audit_log[-1]["actor"] == "system:D6"
    assert store.sign_ons[-1].kind == "refused" and store.sign_ons[-1].response_code == "03"
    # The other terminal of the same merchant is refused too, for sign-on and transactions.
    other = PairTerminal(w, "10000002")
    assert other.sign_on().code == "03"
    # Reinstated by the acquirer: works again.
    reinstate_merchant(store, t.mid, "admin", "merchant called: closed for holidays", w.env.now(), w.env.timezone)
    assert t.sign_on().code == "00"
    assert t.sale().code == "00"


def test_d6_sweep_for_a_periodic_job() -> None:
    w = make_world()
    w.store.record_sign_on(SignOnEntry(w.clock(), "2024-05-01", "20000001", "898100012340002", "sign_on", "daily",
                                       "01", "DEMO0003", "004", "000001", "000001", "00"))  # fmt: skip
    w.store.record_sign_on(SignOnEntry(w.clock(), "2024-05-05", "10000001", "898100012340001", "sign_on", "daily",
                                       "01", "DEMO0001", "004", "000001", "000001", "00"))  # fmt: skip
    result = sweep(w.store, ["898100012340001", "898100012340002"], w.env.now(), w.env.timezone, w.env.lapse_days)
    assert result.suspended == ["898100012340002"]  # 2, 3, 4, 5 May without a sign-on; today is the 6th
    assert result.warned == []


def test_d7_device_serial() -> None:
    w = make_world()
    store = w.store
    t = PairTerminal(w)
    t.sign_on()
    t.sale()
    # Same device, same day: temporary make-up sign-on, the batch is kept.
    assert t.sign_on().code == "00"
    assert store.sign_ons[-1].cause == "make_up_temporary" and t.batch == "000001"
    # A different device: refused until the acquirer approves it.
    clone = PairTerminal(w, serial="CLONE999")
    r = clone.sign_on()
    assert r.code == "97"
    assert store.terminal(t.tid).pending_serial == "CLONE999"  # type: ignore[union-attr]
    assert store.sign_ons[-1].kind == "refused" and store.sign_ons[-1].cause == "device_serial"
    assert t.sale().code == "00"  # the recorded device keeps working
    store.update_terminal(t.tid, approved_serial="CLONE999")
    r = clone.sign_on()
    assert r.code == "00"
    assert store.sign_ons[-1].cause == "make_up_formal"
    assert clone.batch == "000002" and store.terminal(t.tid).batch_no == "000002"  # type: ignore[union-attr]
    assert store.batches[(t.tid, "000001")]["status"] == "closed"
    assert t.sign_on().code == "97"  # now the old device is the stranger


def test_d7_first_sign_on_records_the_serial() -> None:
    w = make_world()
    w.store.update_terminal("10000001", device_serial=None)
    t = PairTerminal(w, serial="NEW00001")
    assert t.sign_on().code == "00"
    assert w.store.terminal("10000001").device_serial == "NEW00001"  # type: ignore[union-attr]


def test_d8_retransmission_and_stan_reuse() -> None:
    w = make_world()
    t = PairTerminal(w)
    t.sign_on()
    r = t.sale("ok", 1_000)
    before = w.store.card_by_pan(CARDS["ok"][0]).balance  # type: ignore[union-attr]
    again = w.process(CODEC.encode(r.request, mac=t.mac))
    assert again.body == r.host.body and again.header == r.host.header  # the stored reply, byte for byte
    assert w.store.card_by_pan(CARDS["ok"][0]).balance == before  # type: ignore[union-attr]
    assert len(w.store.txns) == 1
    # Same STAN, different content.
    other = r.request.replace(f4="000000002000")
    reply = w.process(CODEC.encode(other, mac=t.mac))
    assert reply.response_code == "94"
    assert w.store.audit_log[-1]["action"] == "duplicate_stan"
    # Same STAN reused by another message type.
    t.stan -= 1
    assert t.balance().code == "94"


def test_d8_same_content_under_a_new_mac_is_a_retransmission() -> None:
    """D8's "identical content" is the MAC block (MTI..63): an advice re-sent after a make-up
    sign-on carries a MAC under the new MAK and is still answered from the record, its reply
    MAC'd under the new MAK; a content change with the same STAN is still 94."""
    w = make_world()
    t = PairTerminal(w)
    t.sign_on()
    first = t.offline("offline_settlement", 500)
    assert first.code == "00" and first.mac_ok
    card = CARDS["ok"][0]
    before = w.store.card_by_pan(card).balance  # type: ignore[union-attr]
    records = len(w.store.txns)
    assert t.sign_on().code == "00"  # make-up sign-on: new MAK
    again = w.process(CODEC.encode(first.request, mac=t.mac))
    assert again.response_code == "00" and again.body is not None
    reply = CODEC.decode(again.body)
    stored = CODEC.decode(first.host.body or b"")
    assert {n: reply[n] for n in reply if n != 64} == {n: stored[n] for n in stored if n != 64}  # same answer
    assert reply.data(64) == t.mac(reply.mac_block())  # MAC'd under the current MAK
    assert w.store.card_by_pan(card).balance == before and len(w.store.txns) == records  # not re-executed
    # A byte-identical copy with a MAC the host cannot verify gets the stored reply as stored.
    stale = first.request
    bad = CODEC.encode(stale, mac=lambda mab: b"00000000")
    assert w.process(bad).body == first.host.body
    # Content changes with the same STAN are still 94: amount, card.
    for change in ({4: "000000000501"}, {35: "6225880000000000010=30122010000000000"}):
        r = w.process(CODEC.encode(first.request.with_fields(change), mac=t.mac))
        assert r.response_code == "94", change
        assert CODEC.decode(r.body or b"").data(64) is not None  # an authenticated 94 (R1)
    assert w.store.card_by_pan(card).balance == before


def test_d9_reversals() -> None:
    w = make_world()
    store = w.store
    t = PairTerminal(w)
    t.sign_on()
    ok = CARDS["ok"][0]
    start = store.card_by_pan(ok).balance  # type: ignore[union-attr]
    # Reversal with the wrong amount: not a match, nothing reversed.
    s = t.sale("ok", 1_000)
    wrong = t.reversal_of(s.request.replace(f4="000000000999"))
    assert wrong.code == "64"
    assert store.card_by_pan(ok).balance == start - 1_000  # type: ignore[union-attr]
    # A retry of that reversal with the right amount (re-signed keys meanwhile) works once.
    t.sign_on()
    assert t.reversal_of(s.request.replace(f64=b"")).code == "00"
    assert store.card_by_pan(ok).balance == start  # type: ignore[union-attr]
    assert t.reversal_of(s.request, reason="06").code == "00"  # repeated, other reason: same reply
    assert store.card_by_pan(ok).balance == start  # type: ignore[union-attr]
    # Reversal of a declined original: 00, nothing to undo.
    d = t.sale("poor", 99_999)
    assert d.code == "51"
    assert t.reversal_of(d.request).code == "00"
    # Reversal of a void re-instates the sale.
    t.sale("ok", 3_000)
    sale = t.journal[-1]
    v = t.void(sale)
    assert v.code == "00"
    assert t.reversal_of(v.request).code == "00"
    assert store.find_by_rrn(sale.rrn)[0].status == "approved"
    assert store.card_by_pan(ok).balance == start - 3_000  # type: ignore[union-attr]
    # Reversal of a pre-auth releases the hold; of a completion gives the pre-auth back.
    p = t.preauth("credit", 10_000)
    assert t.reversal_of(p.request).code == "00"
    assert store.card_by_pan(CARDS["credit"][0]).held == 0  # type: ignore[union-attr]
    t.preauth("credit", 10_000)
    pre = t.journal[-1]
    c = t.completion(pre, 9_000)
    assert t.reversal_of(c.request).code == "00"
    card = store.card_by_pan(CARDS["credit"][0])
    assert card is not None and card.held == 10_000 and card.balance == 5_000_000
    assert t.completion(pre, 9_000).code == "00"  # the pre-auth can be completed again


def test_x919_mac_terminal() -> None:
    w = make_world()
    w.store.update_terminal("10000001", mac_algorithm="x919")
    t = PairTerminal(w, mac_algorithm="x919")
    t.sign_on("003")
    r = t.sale()
    assert r.code == "00" and r.mac_ok


def test_encrypted_tracks_with_the_tdk() -> None:
    w = make_world()
    t = PairTerminal(w)
    t.sign_on("004")
    t.encrypt_tracks = True
    assert t.sale("ok", 500).code == "00"
    assert t.sale("lost", 500).code == "41"
