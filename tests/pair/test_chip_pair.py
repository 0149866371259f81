"""Chip cards for real (issue 14): the terminal core's simulated chip card against the host
pipeline and the built-in issuer, in memory.

The card makes a real ARQC (EMV option A card key, common session key for its ATC, ISO 9797-1
MAC algorithm 3 over its CDOL1 data); the issuer verifies it and answers with an ARPC (tag 91,
method 1); the card checks the ARPC and completes with a TC, which the terminal keeps for the
batch upload. A tampered ARQC or a replayed ATC is declined by the issuer; an approval whose
ARPC was changed on the way is refused by the card and reversed."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

import pytest

from posgate.crypto.emv import arc_of, arpc_method1, cdol1_data, derive_session_key, generate_ac
from posgate.dialect.cup import CODEC
from posgate.framing import Header
from posgate.iso8583 import TLV, Message
from posgate.terminal import machine
from posgate.terminal.cards import chip_key, read_card
from posgate.terminal.machine import Done, Input, Result, Send
from posgate.terminal.operations.base import Card, mac_of
from posgate.terminal.state import TerminalState

from .harness import World, make_world

pytestmark = pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")

CHIP = "6225880000000000010"


class ChipDriver:
    def __init__(self, world: World) -> None:
        self.world = world
        self.state: TerminalState = machine.new_state()
        self.rng = random.Random(5)
        self.sent: list[Message] = []
        self.replies: list[Message] = []

    def run(self, inp: Input, on_reply: Callable[[TerminalState, Message], Message] | None = None) -> Result:
        now = self.world.clock()
        state, out = machine.start(self.state, inp, now)
        while isinstance(out, Send):
            self.sent.append(CODEC.decode(out.body))
            reply = self.world.process(out.body, Header(category=out.category).encode())
            assert reply.body is not None
            body = reply.body
            msg = CODEC.decode(body)
            if on_reply is not None and msg.mti == "0210":
                changed = on_reply(state, msg)
                signer = state
                body = CODEC.encode(
                    changed, mac=lambda mab, k=signer: mac_of(k, mab)
                )  # re-MAC'd: only 55 differs
                msg = CODEC.decode(body)
            self.replies.append(msg)
            state, out = machine.on_reply(state, body, now, requirement=f"{reply.header[2] & 0x0F}")
        assert isinstance(out, Done)
        self.state = state.drained()
        return out.result

    def card(self, amount: int, atc: int | None = None) -> Card:
        return read_card(CHIP, "insert", pin="123456", amount=amount, when=self.world.clock(),
                         randbytes=self.rng.randbytes, atc=atc)  # fmt: skip


def signed_on() -> ChipDriver:
    t = ChipDriver(make_world())
    assert t.run(Input("sign_on", scheme="004")).approved
    return t


def balance(t: ChipDriver) -> int:
    c = t.world.store.card_by_pan(CHIP)
    assert c is not None
    return c.balance


def test_real_arqc_is_approved_the_arpc_checked_and_a_tc_kept_for_the_batch_upload() -> None:
    t = signed_on()
    before = balance(t)
    card = t.card(88_00, atc=0x0010)
    r = t.run(Input("sale", amount=88_00, card=card))
    assert r.approved, r.message
    assert balance(t) == before - 88_00 and t.state.reversal is None
    # What the terminal sent and what the host answered, checked independently of both cores.
    request, reply = t.sent[-1], t.replies[-1]
    icc = request[55]
    assert isinstance(icc, TLV)
    tags = {k: v for k, v in icc.items if isinstance(v, bytes)}
    psn, key = chip_key(CHIP)  # type: ignore[misc]
    assert request.text(23) == "001" and psn == "01"
    sk = derive_session_key(key, 0x0010)
    assert tags["9F26"] == generate_ac(sk, cdol1_data(tags))
    answer = reply[55]
    assert isinstance(answer, TLV) and answer["91"] == arpc_method1(sk, tags["9F26"], arc_of("00")) + b"00"
    # The TC (9F27 = 40) over ARC ‖ CDOL1 data is what the journal keeps for the batch upload.
    entry = t.state.txn(request.text(11))
    assert entry is not None
    kept = TLV.decode(entry.icc)
    assert kept["9F27"] == b"\x40" and kept["8A"] == b"00"
    assert kept["9F26"] == generate_ac(sk, b"00" + cdol1_data(tags)) != tags["9F26"]


def test_the_atc_goes_up_from_one_sale_to_the_next_without_being_told() -> None:
    t = signed_on()
    assert t.run(Input("sale", amount=1_00, card=t.card(1_00))).approved
    assert t.run(Input("sale", amount=1_00, card=t.card(1_00))).approved
    atcs = [TLV.decode(m.data(55) or b"")["9F36"] for m in t.sent if m.mti == "0200"]
    assert atcs[0] < atcs[1]


def test_tampered_arqc_is_declined_by_the_issuer() -> None:
    t = signed_on()
    before = balance(t)
    card = t.card(10_00, atc=0x0020)
    assert card.icc is not None
    arqc = card.icc["9F26"]
    assert isinstance(arqc, bytes)
    bad = TLV([(k, bytes([arqc[0] ^ 0x80]) + arqc[1:] if k == "9F26" else v) for k, v in card.icc.items])
    r = t.run(Input("sale", amount=10_00, card=replace(card, icc=bad)))
    assert r.response_code == "59" and not r.approved
    assert balance(t) == before and t.state.reversal is None  # an authentic decline: nothing to reverse
    assert 55 not in t.replies[-1]


def test_replayed_atc_is_declined_by_the_issuer() -> None:
    t = signed_on()
    before = balance(t)
    assert t.run(Input("sale", amount=5_00, card=t.card(5_00, atc=0x0030))).approved
    # The same ATC again (a cloned or replayed card), then an older one: both validly signed.
    assert t.run(Input("sale", amount=5_00, card=t.card(5_00, atc=0x0030))).response_code == "59"
    assert t.run(Input("sale", amount=5_00, card=t.card(5_00, atc=0x002F))).response_code == "59"
    assert balance(t) == before - 5_00
    assert t.run(Input("sale", amount=5_00, card=t.card(5_00, atc=0x0031))).approved


@pytest.mark.parametrize("how", ["flip", "drop"])
def test_arpc_changed_on_the_way_the_card_declines_and_the_approval_is_reversed(how: str) -> None:
    t = signed_on()
    before = balance(t)

    def tamper(state: TerminalState, reply: Message) -> Message:
        if how == "drop":
            return Message(reply.mti, {k: v for k, v in reply.items() if k not in (55, 64)})
        tag91 = reply[55]["91"]  # type: ignore[index]
        assert isinstance(tag91, bytes)
        return Message(reply.mti, {**{k: v for k, v in reply.items() if k != 64},
                                   55: TLV([("91", bytes([tag91[0] ^ 1]) + tag91[1:])])})  # fmt: skip

    r = t.run(Input("sale", amount=30_00, card=t.card(30_00, atc=0x0040)), on_reply=tamper)
    assert not r.approved and r.error == "card_declined", r.message
    # The reversal went at once (0400, reason 06, with the authorisation code) and the host undid it.
    rev = t.sent[-1]
    assert rev.mti == "0400" and rev.text(39) == "06" and rev.text(38).strip()
    assert t.state.reversal is None and balance(t) == before
    assert all(x.stan != t.sent[-2].text(11) for x in t.state.txns)  # nothing recorded for the batch


def test_the_tc_goes_up_in_the_batch_upload_after_settlement() -> None:
    t = signed_on()
    card = t.card(66_00, atc=0x0050)
    assert t.run(Input("sale", amount=66_00, card=card)).approved
    sale = t.sent[-1]
    kept = TLV.decode(t.state.txns[-1].icc)
    n = len(t.sent)
    settle = t.run(Input("settlement"))
    assert settle.approved and settle.settlement is not None, settle.message
    uploads = [m for m in t.sent[n:] if m.mti == "0320" and m.text(60)[8:11] == "203"]
    assert len(uploads) == 1, [m.text(60) for m in t.sent[n:]]
    up = uploads[0]
    tc = up[55]
    assert isinstance(tc, TLV) and tc == kept and tc["9F27"] == b"\x40" and tc["9F26"] != sale[55]["9F26"]  # type: ignore[index]
    assert up.text(2) == CHIP and up.text(4) == f"{66_00:012d}" and up.text(23) == "001"
    assert up.data(62) == f"610000{66_00:012d}156".encode()
    assert settle.settlement["batch_upload_count"] == 1 and settle.settlement["batch_upload_complete"]
    assert t.replies[-2].text(39) == "00"  # the host took the TC upload (the last reply is the end's)


def test_a_tc_that_does_not_verify_is_refused_by_the_host_at_upload() -> None:
    t = signed_on()
    assert t.run(Input("sale", amount=7_00, card=t.card(7_00, atc=0x0060))).approved
    entry = t.state.txns[-1]
    kept = TLV.decode(entry.icc)
    tc = kept["9F26"]
    assert isinstance(tc, bytes)
    forged = TLV([(k, bytes([tc[0] ^ 1]) + tc[1:] if k == "9F26" else v) for k, v in kept.items])
    t.state = t.state.with_txn(replace(entry, icc=forged.raw))
    settle = t.run(Input("settlement"))
    assert settle.settlement is not None and not settle.settlement["batch_upload_complete"]
    assert [r.text(39) for r in t.replies if r.mti == "0330"] == ["59", "00"]  # the TC, then the end (207)
    (s,) = t.world.store.settlements.values()
    assert s.uploaded == 0  # the forged TC was not counted


def test_the_chip_card_works_on_the_sm4_terminal_too() -> None:
    """The card's cryptogram is the card's (its issuer's 3DES keys), whatever cipher the terminal
    speaks to the host: on the SM4 demo terminal 40000001 (MAC, PIN block and tracks in SM4) the
    ARQC is verified, the ARPC checked, the TC kept and uploaded, a replayed ATC declined 59."""
    from posgate.crypto import SM4, cup_ecb_mac
    from posgate.terminal.state import TerminalConfig

    config = TerminalConfig(terminal_id="40000001", merchant_id="898100012340002",
                            tmk=bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"), serial="DEMO0004",
                            merchant_name="演示餐厅", algorithm="sm4")  # fmt: skip
    t = ChipDriver(make_world())
    t.state = machine.new_state(config)
    assert t.run(Input("sign_on")).approved
    keys = t.state.keys
    assert keys is not None and keys.cipher is SM4
    before = balance(t)
    r = t.run(Input("sale", amount=42_00, card=t.card(42_00, atc=0x0070)))
    assert r.approved, r.message
    assert balance(t) == before - 42_00 and t.state.reversal is None
    request, reply = t.sent[-1], t.replies[-1]
    # The request's MAC is the SM4 one; its field 55 is the card's, untouched by the terminal's cipher.
    resigned = CODEC.decode(CODEC.encode(request, mac=lambda mab: cup_ecb_mac(keys.mak, mab, SM4)))
    assert resigned.data(64) == request.data(64)
    tags = {k: v for k, v in request[55].items if isinstance(v, bytes)}  # type: ignore[union-attr]
    sk = derive_session_key(chip_key(CHIP)[1], 0x0070)  # type: ignore[index]
    assert tags["9F26"] == generate_ac(sk, cdol1_data(tags))
    assert reply[55]["91"] == arpc_method1(sk, tags["9F26"], arc_of("00")) + b"00"  # type: ignore[index]
    kept = TLV.decode(t.state.txns[-1].icc)
    assert kept["9F27"] == b"\x40" and kept["9F26"] == generate_ac(sk, b"00" + cdol1_data(tags))
    assert t.run(Input("sale", amount=1_00, card=t.card(1_00, atc=0x0070))).response_code == "59"
    n = len(t.sent)
    settle = t.run(Input("settlement"))
    assert settle.settlement is not None and settle.settlement["batch_upload_complete"], settle.message
    uploads = [m for m in t.sent[n:] if m.mti == "0320" and m.text(60)[8:11] == "203"]
    assert len(uploads) == 1 and uploads[0][55] == kept
    (s,) = t.world.store.settlements.values()
    assert s.uploaded == 1
