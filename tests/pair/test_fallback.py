"""Fallback rules (issue 14, docs/decisions.md C4): a chip card read from its stripe is declined
``45`` unless the terminal says the chip failed (60.5 = 2); then it is approved and kept as a
fallback (entry mode 80x). The card record decides, not the track's service code: the demo
magstripe cards (service code 201 too) are swiped exactly as before."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from posgate.dialect.cup import CODEC
from posgate.dialect.fields import Field60
from posgate.domain.response_codes import describe
from posgate.host.issuer import BuiltinIssuer
from posgate.host.memory import MemoryStore
from posgate.host.ports import IssuerRequest
from posgate.receipt import Slip
from posgate.receipt.layout import slip_rows
from posgate.terminal.machine import Input

from .harness import make_world
from .test_terminal_core_pair import CREDIT, OK, Driver

NOW = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
MAGSTRIPE = "6212142000000000012"


def _issuer() -> BuiltinIssuer:
    s = MemoryStore()
    s.add_card(CREDIT, "3012", 100_000, kind="credit", chip=True)
    s.add_card(MAGSTRIPE, "3012", 100_000)
    return BuiltinIssuer.with_random_zone_key(s, random.Random(1).randbytes)


def _ask(i: BuiltinIssuer, pan: str, kind: str = "debit", **kw: bool) -> str:
    return i.authorize(IssuerRequest(kind=kind, pan=pan, expiry=None, amount=1_00, **kw), NOW).response_code


# ---------------------------------------------------------------- the issuer's rule
@pytest.mark.parametrize("kind", ["debit", "hold", "balance"])
def test_a_chip_card_swiped_without_the_fallback_mark_is_declined_45(kind: str) -> None:
    i = _issuer()
    assert _ask(i, CREDIT, kind, swiped=True) == "45"
    assert _ask(i, CREDIT, kind, swiped=True, fallback=True) == "00"


def test_the_card_record_decides_not_the_service_code() -> None:
    i = _issuer()
    assert _ask(i, MAGSTRIPE, swiped=True) == "00"  # track 2 says 201 as issued: still a stripe card
    assert _ask(i, CREDIT) == "00"  # keyed or read from the chip: no stripe involved


@pytest.mark.parametrize("kind", ["credit", "reverse_debit", "force_debit"])
def test_refunds_undo_and_advices_are_not_checked(kind: str) -> None:
    assert _ask(_issuer(), CREDIT, kind, swiped=True) == "00"


def test_45_says_what_the_cashier_does() -> None:
    rc = describe("45")
    assert rc.zh.startswith("不允许降级交易") and "chip" in rc.action_en and "插卡" in rc.action_zh


# ---------------------------------------------------------------- terminal core against the host
def test_swipe_refused_then_the_chip_fails_and_the_fallback_goes_through() -> None:
    world = make_world()
    t = Driver(world)
    assert t.run(Input("sign_on", scheme="004")).approved
    swiped = t.run(Input("sale", amount=30_00, card=t.card(CREDIT, "swipe", amount=30_00)))
    assert swiped.response_code == "45" and not swiped.approved and t.state.reversal is None
    before = world.store.card(world.store.pan_hash(CREDIT))
    fallback = t.run(Input("sale", amount=30_00, card=t.card(CREDIT, "fallback", amount=30_00)))
    assert fallback.approved, fallback.message
    sent = t.sent[-1]
    req = CODEC.decode(sent.body)
    assert req.text(22).startswith("02") and Field60.parse(req.text(60)).chip_condition == "2"
    after = world.store.card(world.store.pan_hash(CREDIT))
    assert before is not None and after is not None and after.balance == before.balance - 30_00
    rows = [x for x in world.store.txns.values() if x.stan == fallback.stan and x.mti == "0200"]
    assert [x.entry_mode for x in rows] == ["801"]  # kept as a fallback
    refused = [x for x in world.store.txns.values() if x.stan == swiped.stan and x.mti == "0200"]
    assert [(x.entry_mode, x.response_code) for x in refused] == [("021", "45")]
    # The magstripe demo card swipes as before.
    plain = t.run(Input("sale", amount=1_00, card=t.card(OK, amount=1_00)))
    assert plain.approved
    assert [x.entry_mode for x in world.store.txns.values() if x.stan == plain.stan] == ["021"]


def test_the_slip_says_fallback() -> None:
    slip = Slip(merchant_name="演示便利店", merchant_id="898100012340001", terminal_id="10000001", operator="01",
                card_number="622588*********0010", operation="sale", batch_no="000001", stan="000002",
                when=datetime(2026, 12, 3, 10, 0), amount=30_00, entry_mode="801")  # fmt: skip
    text = " ".join(f"{r.a} {r.b}" for r in slip_rows(slip, "zh", bilingual=True))
    assert "降级交易" in text and "FALLBACK" in text
