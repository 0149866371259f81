"""IC public keys and IC parameters end to end (docs/dialect.md 3.12, docs/decisions.md C2): the
terminal core against the host pipeline in memory. A fresh terminal fetches both lists at its
first sign-on; a contactless sale at or under the downloaded no-CVM limit goes online without a
PIN (22 = 072) and needs no signature; above it the terminal asks for the PIN; an admin change of
the limit reaches the terminal through the reply header (requirement 5) and changes what it does."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from posgate.dialect import ic_params as icp
from posgate.dialect.cup import CODEC
from posgate.framing import Header
from posgate.iso8583 import Message
from posgate.receipt.layout import slip_rows
from posgate.receipt.text import lay_out
from posgate.terminal import machine
from posgate.terminal.cards import read_card
from posgate.terminal.machine import Done, Input, Result, Send, TerminalError
from posgate.terminal.slips import slip_for
from posgate.terminal.state import TerminalConfig, TerminalState

from .harness import World, make_world

pytestmark = pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")

CHIP = "6225880000000000010"


class Driver:
    def __init__(self, world: World, config: TerminalConfig) -> None:
        self.world = world
        self.state: TerminalState = machine.new_state(config)
        self.rng = random.Random(3)
        self.sent: list[Message] = []

    def run(self, inp: Input) -> Result:
        now = self.world.clock()
        state, out = machine.start(self.state, inp, now)
        while isinstance(out, Send):
            self.sent.append(CODEC.decode(out.body))
            reply = self.world.process(out.body, Header(category=out.category).encode())
            assert reply.body is not None
            state, out = machine.on_reply(state, reply.body, now, requirement=f"{reply.header[2] & 0x0F}")
        assert isinstance(out, Done)
        self.state = state.drained()
        return out.result

    def tap(self, amount: int, pin: str = "") -> Result:
        card = read_card(CHIP, "tap", pin=pin, amount=amount, when=self.world.clock(), randbytes=self.rng.randbytes)
        return self.run(Input("sale", amount=amount, card=card))

    def codes(self) -> list[str]:
        return [m.text(60)[8:11] for m in self.sent]


def fresh(ic_params: bool = True) -> Driver:
    return Driver(make_world(), TerminalConfig(ic_params=ic_params))


def test_first_sign_on_downloads_keys_and_parameters_then_taps_follow_the_limit() -> None:
    t = fresh()
    assert t.run(Input("sign_on", scheme="004")).approved
    assert t.codes() == ["004", "372", "370", "370", "371", "382", "380", "380", "380", "381"]
    assert all(64 not in m for m in t.sent)  # network management: no MAC
    capks = [icp.Capk(**d) for d in t.state.ic["capks"]]
    assert [c.key for c in capks] == [("A000000333", "08"), ("A000000333", "09")]
    assert capks[0] == icp.UNIONPAY_TEST_CAPKS[0]
    aids = {d["aid"]: d["cvm_limit"] for d in t.state.ic["aids"]}
    assert aids == {a: 100000 for a in icp.UNIONPAY_AIDS}
    assert t.state.ic_loaded
    # A second sign-on does not download again.
    t.sent.clear()
    assert t.run(Input("sign_on", scheme="004")).approved and t.codes() == ["004"]

    # ¥1,000.00: at the limit, no PIN asked, no PIN sent, no signature.
    t.sent.clear()
    r = t.tap(100000, pin="123456")
    assert r.approved
    sale = t.sent[-1]
    assert sale.text(22) == "072" and 52 not in sale
    entry = t.state.txns[-1]
    assert entry.no_cvm and entry.signature == ""
    slip = slip_for(t.state, entry)
    text = "\n".join(lay_out(slip_rows(slip)))
    assert "免密免签" in text and "No PIN, no signature" in text and not slip.shows_signature
    # ¥1,000.01: the terminal will not go without the PIN; with it, 071 and a signature owed.
    with pytest.raises(TerminalError, match="PIN"):
        t.tap(100001)
    r = t.tap(100001, pin="123456")
    assert r.approved and t.sent[-1].text(22) == "071" and 52 in t.sent[-1]
    assert not t.state.txns[-1].no_cvm and t.state.txns[-1].signature == "unsigned"


def test_an_admin_change_of_the_limit_reaches_the_terminal_and_changes_its_taps() -> None:
    t = fresh()
    assert t.run(Input("sign_on", scheme="004")).approved
    assert t.tap(50000).approved  # ¥500.00 under ¥1,000.00
    # The acquirer lowers the no-CVM limit of the UnionPay AIDs to ¥300.00.
    t.world.store.put_ic_params(aids=[replace(a, cvm_limit=30000) for a in icp.DEMO_AIDS])
    assert t.world.store.terminal("10000001").aid_pending
    t.sent.clear()
    # The next reply asks (requirement 5): after the sale the terminal downloads the AIDs.
    assert t.tap(20000).approved
    assert t.codes() == ["000", "382", "380", "380", "380", "381"]
    assert not t.world.store.terminal("10000001").aid_pending
    assert {d["cvm_limit"] for d in t.state.ic["aids"]} == {30000}
    with pytest.raises(TerminalError, match="300.00"):
        t.tap(50000)
    assert t.tap(50000, pin="123456").approved and t.sent[-1].text(22) == "071"
    # Forced download by the cashier: both lists, one result.
    t.world.store.put_ic_params(aids=[icp.DEMO_AIDS[0]])
    t.sent.clear()
    r = t.run(Input("ic_download"))
    assert r.approved and r.extra == {"capks": 2, "aids": 3}
    assert t.codes() == ["372", "370", "370", "371", "382", "380", "380", "380", "381"]
    assert t.state.ic["aids"][0]["cvm_limit"] == 100000


def test_a_terminal_without_parameters_leaves_the_limit_to_the_host() -> None:
    t = fresh(ic_params=False)
    assert t.run(Input("sign_on", scheme="004")).approved and t.codes() == ["004"]
    assert not t.state.ic
    r = t.tap(100001)  # no local limit: it goes without a PIN and the host says 55
    assert not r.approved and r.response_code == "55" and t.sent[-1].text(22) == "072"
    assert t.tap(100000).approved
