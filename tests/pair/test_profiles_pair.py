"""Dialect profiles end to end: the product terminal core speaking each profile against the
host pipeline, in memory, with the terminal assigned that profile on the host (sign-on, sale
with PIN, void, settlement). And the negative side: a profile changes the algorithm, never
skips a check — a terminal speaking one profile to a host that expects another is refused."""

from __future__ import annotations

import pytest

from posgate.dialect import profiles
from posgate.host.memory import MemoryStore
from posgate.iso8583 import Message
from posgate.terminal import machine
from posgate.terminal.machine import Input
from posgate.terminal.state import TerminalConfig

from .harness import make_world
from .test_terminal_core_pair import OK, Driver

NAMES = list(profiles.PROFILES)


def _driver(host_profile: str, terminal_profile: str | None = None, scheme_mac: str = "cup") -> Driver:
    world = make_world()
    store: MemoryStore = world.store
    store.update_terminal("10000001", dialect=host_profile)
    t = Driver(world)
    t.state = machine.new_state(TerminalConfig(dialect=terminal_profile or host_profile))
    return t


@pytest.mark.parametrize("name", NAMES)
def test_a_trading_day_in_every_profile(name: str) -> None:
    profile = profiles.PROFILES[name]
    t = _driver(name)
    assert t.run(Input("sign_on", scheme="004")).approved
    sale = t.run(Input("sale", amount=12_34, card=t.card(OK, amount=12_34)))
    assert sale.approved, sale.message
    # The PIN went in the profile's format and the host checked it: a wrong PIN is still 55.
    wrong = t.run(Input("sale", amount=1_00, card=t.card(OK, pin="000000", amount=1_00)))
    assert wrong.response_code == "55", wrong.message
    sale2 = t.run(Input("sale", amount=5_00, card=t.card(OK, amount=5_00)))
    void = t.run(Input("void", voucher=sale2.stan))
    assert void.approved, void.message
    settle = t.run(Input("settlement"))
    assert settle.approved and settle.settlement is not None, settle.message
    assert (settle.settlement["domestic_result"], settle.settlement["foreign_result"]) == ("1", "1")

    sale_sent = next(s for s in t.sent if s.purpose == "sale")
    msg: Message = profile.codec.decode(sale_sent.body)
    # The wire carries the profile's shapes: its codes in 3 and 25, its 60 tail, its MAC.
    back = {v: k for k, v in profile.aliases.get(3, {}).items()}
    assert msg.text(3) == back.get("000000", "000000")
    if profile.f60_tail:
        assert msg.text(60)[11:] == profile.f60_tail
    else:
        assert len(msg.text(60)) - 11 in (0, 1, 2, 3, 6)
    mac = msg.data(64)
    assert mac is not None
    if profile.mac_name() == "cup":
        assert mac.isalnum() and mac.upper() == mac  # 8 ASCII hex characters
    # The host recorded the sale under the profile's decoding, as the terminal sent it.
    rec = [r for r in t.world.store.txns.values() if r.operation == "sale" and r.response_code == "00"]
    assert rec and rec[0].processing_code == msg.text(3)


def test_gz_bill_settlement_carries_field_48_in_ascii() -> None:
    t = _driver("gz-bill")
    t.run(Input("sign_on", scheme="004"))
    t.run(Input("sale", amount=3_00, card=t.card(OK, amount=3_00)))
    t.run(Input("settlement"))
    settle = next(s for s in t.sent if s.purpose == "settlement")
    body = settle.body
    totals = settle.message.text(48)
    # In ASCII the 62 digits are 62 bytes after an LLL of 0062; in BCD they would be 31 bytes.
    assert bytes.fromhex("0062") + totals.encode("ascii") in body


@pytest.mark.parametrize(
    ("host", "terminal"),
    [
        ("cup", "gz-bill"),
        ("gz-bill", "cup"),
        ("cup", "x919"),
        ("x919", "cup"),
        ("cup", "pin1"),
        ("pin3", "cup"),
    ],
)
def test_a_terminal_speaking_another_profile_is_refused(host: str, terminal: str) -> None:
    t = _driver(host, terminal)
    signed_on = t.run(Input("sign_on", scheme="004"))
    if not signed_on.approved:  # a 60 shape the host's profile does not know
        assert signed_on.response_code == "30"
        return
    sale = t.run(Input("sale", amount=2_00, card=t.card(OK, amount=2_00)))
    assert not sale.approved
    # The host's word on the sale: wrong MAC → A0, wrong PIN format → 99, wrong 60 shape → 30.
    codes = {r.response_code for r in t.world.store.txns.values() if r.operation == "sale"}
    assert codes and codes <= {"A0", "99", "30"}, codes


def test_a_bill_payment_as_the_public_client_sends_it() -> None:
    """The shape of the public 贵州银联 bill-payment client (docs/dialect-profiles.md): 0200 with
    3 = 190000, 25 = 81, letters in field 48, 60 = 22 + batch + 000 + 00060, the PIN as format 0
    under a TDES PIK, field 64 the single-DES CBC MAC of MTI..63. Approved as a sale, the
    reply MAC'd the same way; then 缴费撤销 (280000) voids it. Under the baseline: refused."""
    from posgate.crypto import encrypt_pin, mac_verify, x9_9_mac

    from .harness import CARDS, PIN, PairTerminal, track2

    w = make_world()
    w.store.update_terminal("10000001", dialect="gz-bill")
    t = PairTerminal(w)
    assert t.sign_on("004").code == "00" and t.keys is not None
    gz = profiles.get("gz-bill")
    pan, expiry = CARDS["ok"]
    mak = t.keys.mak[:8]

    def send(fields: dict) -> Message:
        body = gz.codec.encode(Message("0200", fields), mac=lambda mab: x9_9_mac(mak, mab))
        host = w.process(body)
        assert host.body is not None
        reply = gz.codec.decode(host.body)
        assert mac_verify(x9_9_mac(mak, reply.mac_block()), reply.data(64) or b"")
        return reply

    bill = "KP77SG0C26323520140909356184                70000000201809#"
    pay = {3: "190000", 4: "000000000300", 11: t.next_stan(), 22: "021", 25: "81", 26: "06",
           35: track2(pan, expiry), 41: t.tid, 42: t.mid, 48: bill, 49: "156",
           52: encrypt_pin(t.keys.pik, PIN, pan), 53: "2600000000000000", 60: f"22{t.batch}00000060"}  # fmt: skip
    reply = send(pay)
    assert reply.text(39) == "00" and reply.text(3) == "190000" and reply.text(25) == "81"
    revoke = {**pay, 3: "280000", 11: t.next_stan(), 37: reply.text(37), 60: f"23{t.batch}00000060",
              61: f"{t.batch}{pay[11]}"}  # fmt: skip
    assert send(revoke).text(39) == "00"
    ops = [(r.operation, r.response_code, r.status) for r in w.store.txns.values()]
    assert ("sale", "00", "voided") in ops and ("void", "00", "approved") in ops

    # The same terminal back on the baseline: the same bytes are not accepted.
    w.store.update_terminal("10000001", dialect="cup")
    again = w.process(
        gz.codec.encode(Message("0200", {**pay, 11: t.next_stan()}), mac=lambda mab: x9_9_mac(mak, mab))
    )
    assert again.response_code == "30"


@pytest.mark.parametrize(("name", "fmt"), [("pin1", 1), ("pin3", 3)])
def test_terminal_pin_blocks_in_format_1_and_3_for_any_tid(name: str, fmt: int) -> None:
    """Field 41 is ans8: the fill derivation must not assume hex digits. The block decodes in
    its format with the PIN, and differs from one STAN to the next (transaction-unique fill)."""
    from dataclasses import replace

    from posgate.crypto import decrypt_pin_block
    from posgate.crypto.pinblock import pin_from_format1, pin_from_format3
    from posgate.terminal.cards import read_card
    from posgate.terminal.operations.base import pin_block

    pik = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    state = machine.new_state(TerminalConfig(terminal_id="TERMXY01", dialect=name))
    card = read_card(OK, pin="123456")
    blocks = []
    for stan in (1, 2):
        clear = decrypt_pin_block(pik, pin_block(replace(state, stan=stan), pik, card))
        assert clear[0] >> 4 == fmt
        assert (pin_from_format1(clear) if fmt == 1 else pin_from_format3(clear, OK)) == "123456"
        blocks.append(clear)
    assert blocks[0] != blocks[1]
