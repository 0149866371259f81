"""The product terminal core (posgate.terminal.machine) against the real host pipeline, in
memory: a trading day with sign-on, sales (swipe, chip, declined), void, refund, balance,
pre-auth + completion, an offline sale trickled, a lost request and a lost reply (both
reversed before the next sale), e-signature upload, settlement (balanced → 207; then an
unbalanced batch → batch upload 201 + 202), and the daily sign-on the next morning."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from posgate.framing import Header
from posgate.terminal import machine
from posgate.terminal.cards import read_card
from posgate.terminal.machine import Done, Input, Result, Send
from posgate.terminal.state import TerminalState

from .harness import World, make_world

OK = "6212142000000000012"
POOR = "6217000000000000020"
CREDIT = "6225880000000000010"
VISA = "4761730000000011"


class Driver:
    """Runs terminal flows against ``world.process``; ``lose`` decides what goes missing."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.state: TerminalState = machine.new_state()
        self.rng = random.Random(3)
        self.sent: list[Send] = []

    def run(self, inp: Input, lose: Any = None) -> Result:
        now = self.world.clock()
        state, out = machine.start(self.state, inp, now)
        while isinstance(out, Send):
            self.sent.append(out)
            what = lose(out) if lose is not None else None
            if what == "request":  # never reached the host
                state, out = machine.on_timeout(state, now)
                continue
            header = Header(category=out.category).encode()
            reply = self.world.process(out.body, header)
            if what == "reply" or reply.body is None:  # the host did it; the answer got lost
                state, out = machine.on_timeout(state, now)
                continue
            state, out = machine.on_reply(state, reply.body, now, requirement=f"{reply.header[2] & 0x0F}")
        assert isinstance(out, Done)
        self.state = state.drained()
        return out.result

    def card(self, pan: str, entry: str = "swipe", pin: str = "123456", amount: int = 0) -> Any:
        return read_card(
            pan, entry, pin=pin, amount=amount, when=self.world.clock(), randbytes=self.rng.randbytes
        )

    def purposes(self, since: int) -> list[str]:
        return [s.purpose for s in self.sent[since:]]


def test_terminal_core_trading_day_against_the_host_pipeline() -> None:
    world = make_world()
    t = Driver(world)

    r = t.run(Input("sign_on", scheme="004"))
    assert r.approved, r.message
    assert t.state.batch == "000001" and t.state.keys is not None and t.state.keys.tdk is not None

    sale1 = t.run(Input("sale", amount=12_34, card=t.card(OK, amount=12_34)))
    assert sale1.approved and sale1.rrn and sale1.card_org == "CUP", sale1.message

    chip = t.run(Input("sale", amount=88_00, card=t.card(CREDIT, "insert", amount=88_00)))
    assert chip.approved, chip.message

    poor = t.run(Input("sale", amount=20_00, card=t.card(POOR, amount=20_00)))
    assert poor.response_code == "51" and not poor.approved and t.state.reversal is None

    wrong_pin = t.run(Input("sale", amount=1_00, card=t.card(OK, pin="000000", amount=1_00)))
    assert wrong_pin.response_code == "55"

    visa = t.run(Input("sale", amount=50_00, card=t.card(VISA, amount=50_00)))
    assert visa.approved and visa.card_org != "CUP", visa.message

    bal = t.run(Input("balance", card=t.card(OK)))
    assert bal.approved and bal.balance is not None and bal.balance > 0

    sale2 = t.run(Input("sale", amount=5_00, card=t.card(OK, amount=5_00), signature=b"\x00" * 20 + b"jbig"))
    assert sale2.approved
    void = t.run(Input("void", voucher=sale2.stan))
    assert void.approved, void.message

    refund = t.run(
        Input("refund", amount=2_00, card=t.card(OK, amount=2_00), rrn=sale1.rrn, orig_date=sale1.date)
    )
    assert refund.approved, refund.message

    pre = t.run(Input("preauth", amount=300_00, card=t.card(OK, amount=300_00)))
    assert pre.approved, pre.message
    comp = t.run(Input("completion", amount=250_00, auth_code=pre.auth_code, card=t.card(OK, amount=250_00)))
    assert comp.approved, comp.message

    # Offline sale: stored, then trickled after the next online transaction.
    state, out = machine.start(
        t.state, Input("offline", amount=9_00, card=t.card(OK, pin=""), auth_code="777777"), world.clock()
    )
    t.state = state
    assert isinstance(out, Done) and out.result.approved

    # A request that never reaches the host: the reversal goes first next time, answered 00 (D9).
    lost = t.run(
        Input("sale", amount=7_00, card=t.card(OK, amount=7_00)),
        lose=lambda s: "request" if s.purpose == "sale" else None,
    )
    assert lost.error == "timeout" and t.state.reversal is not None

    n = len(t.sent)
    after = t.run(Input("sale", amount=3_00, card=t.card(OK, amount=3_00)))
    assert after.approved and t.purposes(n) == ["reversal", "sale", "offline"]
    assert t.state.reversal is None
    assert all(x.status != "offline_pending" for x in t.state.txns)

    # A reply that gets lost: the host approved; the reversal takes it back out.
    n = len(t.sent)
    t.run(
        Input("sale", amount=11_00, card=t.card(OK, amount=11_00)),
        lose=lambda s: "reply" if s.purpose == "sale" else None,
    )
    assert t.state.reversal is not None
    again = t.run(Input("sale", amount=4_00, card=t.card(OK, amount=4_00)))
    assert again.approved and t.purposes(n)[1:3] == ["reversal", "sale"]

    # The e-signature of sale2 went up after the sale itself.
    assert not t.state.signatures

    # Balanced settlement: totals agree, only the offline advice is re-sent, end 207.
    n = len(t.sent)
    settle = t.run(Input("settlement"))
    assert settle.approved and settle.settlement is not None, settle.message
    s = settle.settlement
    assert (s["domestic_result"], s["foreign_result"]) == ("1", "1"), s
    assert t.purposes(n)[-1] == "batch_end" and t.sent[-1].message.text(60)[8:11] == "207"
    assert t.state.batch == "000002" and not t.state.txns

    # Next batch: a sale the terminal "forgets" makes the domestic side unbalanced → 201 + 202.
    x = t.run(Input("sale", amount=6_00, card=t.card(OK, amount=6_00)))
    y = t.run(Input("sale", amount=8_00, card=t.card(OK, amount=8_00)))
    assert x.approved and y.approved
    t.state = replace(t.state, txns=tuple(e for e in t.state.txns if e.stan != x.stan))
    n = len(t.sent)
    settle2 = t.run(Input("settlement"))
    assert settle2.settlement is not None and settle2.settlement["domestic_result"] == "2"
    kinds = [(sd.purpose, sd.message.text(60)[8:11]) for sd in t.sent[n:]]
    assert ("batch_upload", "201") in kinds and kinds[-1] == ("batch_end", "202")
    assert t.state.batch == "000003"

    # The next morning: the first sale signs on by itself.
    world.clock.next_day()
    n = len(t.sent)
    morning = t.run(Input("sale", amount=1_00, card=t.card(OK, amount=1_00)))
    assert morning.approved, morning.message
    assert t.purposes(n)[:2] == ["sign_on", "sale"]


def test_header_requirement_3_and_a0_resign_against_the_host() -> None:
    world = make_world()
    t = Driver(world)
    assert t.run(Input("sign_on", scheme="003")).approved
    # The host asks for a re-sign-on (support desk / acquirer): the terminal obeys after the sale.
    world.store.update_terminal("10000001", resign_requested=True, resign_reason="support")
    n = len(t.sent)
    r = t.run(Input("sale", amount=1_00, card=t.card(OK, amount=1_00)))
    assert r.approved, r.message
    assert "sign_on" in t.purposes(n)


def test_unmacd_a0_keeps_the_reversal_and_the_host_agrees() -> None:
    """The host answers a wrong request MAC with an un-MAC'd A0 (R1); the terminal keeps its
    reversal (R3), signs on, reverses (the host: "never approved", 00) and retries the sale."""
    world = make_world()
    t = Driver(world)
    assert t.run(Input("sign_on")).approved
    keys = t.state.keys
    assert keys is not None
    t.state = replace(t.state, keys=replace(keys, mak=bytes.fromhex("0123456789ABCDEF")))
    n = len(t.sent)
    r = t.run(Input("sale", amount=3_00, card=t.card(OK, amount=3_00)))
    assert r.approved, r.message
    assert t.purposes(n) == ["sale", "sign_on", "reversal", "sale"]
    assert t.state.reversal is None
    rows = sorted(world.store.txns.values(), key=lambda x: x.id or 0)
    first, rev, retry = rows[-3:]
    assert (first.mti, first.status, first.response_code) == ("0200", "rejected", "A0")
    assert (rev.mti, rev.stan, rev.response_code) == ("0400", first.stan, "00")
    assert (retry.mti, retry.status, retry.amount) == ("0200", "approved", 3_00)


def test_offline_visa_sale_settles_balanced_against_the_host() -> None:
    """The terminal counts an offline Visa sale foreign, as the host does: by the card before
    the advice is acknowledged, by the host's 63.1 after. Three cases: acknowledged by the
    trickle; its first reply lost (the host has it; the re-send before settlement is answered
    from the record); every 0220 of it lost (the batch upload brings it: reconciled)."""
    for lose_first in (None, "reply", "request"):
        world = make_world()
        t = Driver(world)
        assert t.run(Input("sign_on")).approved
        r = t.run(Input("offline", kind="settlement", amount=4_56, card=t.card(VISA), auth_code="123456"))
        assert r.approved and t.state.txns[-1].card_org == "VIS"
        lost: list[str] = []

        def lose(send: Send, what: str | None = lose_first, lost: list[str] = lost) -> str | None:
            if send.purpose == "offline" and what and (what == "request" or not lost):
                lost.append(what)
                return what
            return None

        assert t.run(Input("sale", amount=1_00, card=t.card(OK, amount=1_00)), lose=lose).approved
        s = t.run(Input("settlement"), lose=lose)
        assert s.approved and s.settlement is not None, s.message
        assert s.settlement["totals"]["foreign"]["debit_amount"] == 4_56, lose_first
        settled = world.store.settlements[max(world.store.settlements)]
        want = "balanced" if lose_first in (None, "reply") else "reconciled"
        flags = (s.settlement["domestic_result"], s.settlement["foreign_result"])
        assert flags == (("1", "1") if want == "balanced" else ("1", "2")), (lose_first, flags)
        assert settled.status == want, (lose_first, settled.status)


def test_refund_whose_reply_is_lost_is_resent_and_answered_from_the_record() -> None:
    """R5 against the real host: the refund's reply is lost; before the next sale (after a
    make-up sign-on: a new MAK) it goes again with the same STAN and content, the host answers
    from its record (D8, R2) without crediting the card twice, and settlement balances."""
    world = make_world()
    t = Driver(world)
    assert t.run(Input("sign_on")).approved
    sale = t.run(Input("sale", amount=10_00, card=t.card(OK, amount=10_00)))
    assert sale.approved
    card = world.store.card_by_pan(OK)
    assert card is not None
    before = card.balance
    refund = Input("refund", amount=4_00, card=t.card(OK), rrn=sale.rrn, orig_date=sale.date)
    r = t.run(refund, lose=lambda s: "reply" if s.purpose == "refund" else None)
    assert r.error == "timeout" and t.state.txns[-1].status == "refund_pending"
    assert world.store.card_by_pan(OK).balance == before + 4_00  # type: ignore[union-attr]  # the host did it
    t.state = replace(t.state, sign_on_owed="test: new keys")
    n = len(t.sent)
    nxt = t.run(Input("sale", amount=1_00, card=t.card(OK, amount=1_00)))
    assert nxt.approved and t.purposes(n) == ["sign_on", "refund", "sale"]
    assert t.sent[n + 1].body[:-8] == next(s for s in t.sent if s.purpose == "refund").body[:-8]
    entry = t.state.txn(r.stan)
    assert entry is not None and entry.status == "approved" and entry.rrn
    assert world.store.card_by_pan(OK).balance == before + 4_00 - 1_00  # type: ignore[union-attr]  # once
    refunds = [x for x in world.store.txns.values() if x.operation == "refund"]
    assert len(refunds) == 1 and refunds[0].status == "approved"
    s = t.run(Input("settlement"))
    assert s.approved and s.settlement is not None
    assert (s.settlement["domestic_result"], s.settlement["foreign_result"]) == ("1", "1")
