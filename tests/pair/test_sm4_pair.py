"""The SM4 (国密) demo terminal 40000001 — the product terminal core against the real host
pipeline, in memory: sign-on with 60.3 006 (SM4 keys under the SM4 TMK), a swiped sale with a
PIN (SM4 PIN block in 62, tracks under the SM4 TDK, SM4 MAC), a void, a refund, a balanced
settlement; the host refuses a wrong SM4 MAC exactly as strictly as a DES one, and refuses a
DES sign-on from the SM4 terminal (docs/dialect.md 4.4, docs/decisions.md N1-N5)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from posgate.crypto import DES, SM4, cup_ecb_mac, decrypt_pin, decrypt_track, unwrap_working_keys
from posgate.dialect.cup import CODEC
from posgate.dialect.fields import SM4_PIN_PREFIX, Field60, terminal_info
from posgate.iso8583 import Message
from posgate.terminal import machine
from posgate.terminal.machine import Input
from posgate.terminal.state import TerminalConfig

from .harness import World, make_world
from .test_terminal_core_pair import OK, Driver

SM4_TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
CONFIG = TerminalConfig(
    terminal_id="40000001", merchant_id="898100012340002", tmk=SM4_TMK, serial="DEMO0004",
    merchant_name="演示餐厅", algorithm="sm4",
)  # fmt: skip


def sm4_driver(world: World) -> Driver:
    d = Driver(world)
    d.state = machine.new_state(CONFIG)
    return d


def test_demo_store_has_the_sm4_terminal() -> None:
    world = make_world()
    t = world.store.terminal("40000001")
    assert t is not None
    assert (t.merchant_id, t.tmk, t.device_serial, t.algorithm) == ("898100012340002", SM4_TMK, "DEMO0004", "sm4")
    assert world.store.terminal("10000001").algorithm == "des"  # type: ignore[union-attr]


def test_sm4_terminal_trading_day_against_the_host() -> None:
    world = make_world()
    t = sm4_driver(world)

    r = t.run(Input("sign_on"))
    assert r.approved, r.message
    assert t.sent[-1].message.text(60)[8:11] == "006"
    keys = t.state.keys
    assert keys is not None and keys.cipher is SM4 and keys.tdk is not None and len(keys.mak) == 16
    host_t = world.store.terminal("40000001")
    assert host_t is not None and host_t.key_scheme == "006"
    assert (host_t.pik, host_t.mak, host_t.tdk) == (keys.pik, keys.mak, keys.tdk)

    n = len(t.sent)
    sale = t.run(Input("sale", amount=12_34, card=t.card(OK, amount=12_34)))
    assert sale.approved, sale.message
    req = t.sent[n].message
    # SM4 PIN block in 62 (SM016 + 16 bytes), 52 zeros, 53.2 = 4, tracks encrypted (53.3 = 1).
    assert req.data(52) == bytes(8) and req.text(53).startswith("241")
    f62 = req.data(62) or b""
    assert f62.startswith(SM4_PIN_PREFIX) and len(f62) == 21
    assert decrypt_pin(keys.pik, f62[5:], OK, SM4) == "123456"
    track = req.text(35)
    assert track != f"{OK}=30122010000000000" and track.startswith(OK[:3])
    assert decrypt_track(keys.tdk, track, cipher=SM4, separator="=").startswith(OK + "=")
    # The request's MAC is the SM4 CUP MAC, not the DES one.
    body = CODEC.encode(req, mac=lambda mab: cup_ecb_mac(keys.mak, mab, SM4))
    assert t.sent[n].body == body

    wrong_pin = t.run(Input("sale", amount=1_00, card=t.card(OK, pin="000000", amount=1_00)))
    assert wrong_pin.response_code == "55"

    other = t.run(Input("sale", amount=5_00, card=t.card(OK, amount=5_00)))
    assert other.approved
    void = t.run(Input("void", voucher=other.stan))
    assert void.approved, void.message
    refund = t.run(Input("refund", amount=2_00, card=t.card(OK, amount=2_00), rrn=sale.rrn, orig_date=sale.date))
    assert refund.approved, refund.message

    n = len(t.sent)
    settle = t.run(Input("settlement"))
    assert settle.approved and settle.settlement is not None, settle.message
    assert settle.settlement["domestic_result"] == "1"
    assert t.state.batch == "000002"
    # Only the PIN-bearing requests carried the SM4 PIN block; no refund advice or settlement did.
    with_pin = {s.purpose for s in t.sent if (s.message.data(62) or b"").startswith(SM4_PIN_PREFIX)}
    assert with_pin == {"sale"}


def test_host_rejects_a_wrong_sm4_mac_as_strictly() -> None:
    world = make_world()
    t = sm4_driver(world)
    assert t.run(Input("sign_on")).approved
    keys = t.state.keys
    assert keys is not None
    state, out = machine.start(t.state, Input("sale", amount=3_00, card=t.card(OK, amount=3_00)), world.clock())
    assert isinstance(out, machine.Send) and out.purpose == "sale"
    good = out.body
    req = CODEC.decode(good)

    def code(body: bytes) -> str:
        reply = world.process(body).body
        assert reply is not None
        return CODEC.decode(reply).text(39)

    # One bit of the MAC flipped; the DES CUP MAC under the SM4 MAK's first half; no MAC at all.
    flipped = good[:-1] + bytes([good[-1] ^ 0x01])
    des_mac = CODEC.encode(req, mac=lambda mab: cup_ecb_mac(keys.mak[:8], mab, DES))
    assert code(flipped) == "A0"
    assert code(des_mac) == "A0"
    host_t = world.store.terminal("40000001")
    assert host_t is not None and host_t.mac_failures == 2
    # The good message is accepted and resets the count.
    assert code(good) == "00"
    host_t = world.store.terminal("40000001")
    assert host_t is not None and host_t.mac_failures == 0


@pytest.mark.parametrize("scheme", ["001", "003", "004"])
def test_host_refuses_a_des_sign_on_from_the_sm4_terminal(scheme: str) -> None:
    world = make_world()
    fields = {11: "000001", 41: "40000001", 42: "898100012340002", 60: Field60("00", "000001", scheme).format(),
              62: terminal_info("DEMO0004"), 63: "01 "}  # fmt: skip
    reply = world.process(CODEC.encode(Message("0800", fields))).body
    assert reply is not None
    r = CODEC.decode(reply)
    assert r.text(39) == "40" and 62 not in r
    t = world.store.terminal("40000001")
    assert t is not None and t.key_scheme is None and t.mak is None


def test_host_refuses_sm4_sign_on_from_a_des_terminal_and_the_terminal_refuses_to_ask() -> None:
    world = make_world()
    fields = {11: "000001", 41: "10000001", 42: "898100012340001", 60: Field60("00", "000001", "006").format(),
              63: "01 "}  # fmt: skip
    reply = world.process(CODEC.encode(Message("0800", fields))).body
    assert reply is not None and CODEC.decode(reply).text(39) == "40"
    with pytest.raises(ValueError):
        machine.start(machine.new_state(CONFIG), Input("sign_on", scheme="004"), world.clock())


def test_sm4_sign_on_reply_unwraps_under_the_sm4_tmk_only() -> None:
    world = make_world()
    fields = {11: "000001", 41: "40000001", 42: "898100012340002", 60: Field60("00", "000001", "006").format(),
              62: terminal_info("DEMO0004"), 63: "01 "}  # fmt: skip
    reply = world.process(CODEC.encode(Message("0800", fields))).body
    assert reply is not None
    r = CODEC.decode(reply)
    assert r.text(39) == "00" and r.text(60)[8:11] == "006"
    f62 = r.data(62) or b""
    assert len(f62) == 60
    keys = unwrap_working_keys(SM4_TMK, "006", f62)
    t = world.store.terminal("40000001")
    assert t is not None and (keys.pik, keys.mak, keys.tdk) == (t.pik, t.mak, t.tdk)


def test_sm4_keys_survive_the_journal(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from posgate.terminal.journal import Journal

    world = make_world()
    t = sm4_driver(world)
    assert t.run(Input("sign_on")).approved
    j = Journal.open(tmp_path, "40000001", CONFIG)
    j.save(replace(t.state))
    j.close()
    j2 = Journal.open(tmp_path, "40000001", CONFIG)
    back = j2.load()
    j2.close()
    assert back.keys == t.state.keys and back.keys is not None and back.keys.cipher is SM4


def test_reversal_of_an_sm4_sale_drops_the_pin_block() -> None:
    world = make_world()
    t = sm4_driver(world)
    assert t.run(Input("sign_on")).approved
    t.run(
        Input("sale", amount=11_00, card=t.card(OK, amount=11_00)),
        lose=lambda s: "reply" if s.purpose == "sale" else None,
    )
    assert t.state.reversal is not None and 62 not in t.state.reversal.message
    n = len(t.sent)
    again = t.run(Input("sale", amount=4_00, card=t.card(OK, amount=4_00)))
    assert again.approved and t.purposes(n)[:2] == ["reversal", "sale"]
    assert 62 not in t.sent[n].message and t.sent[n].message.text(39) == "98"


@pytest.mark.parametrize("change", ["no 62", "short 62", "other prefix", "PIN without PAN"])
def test_host_refuses_a_malformed_sm4_pin_block_with_99(change: str) -> None:
    world = make_world()
    t = sm4_driver(world)
    assert t.run(Input("sign_on")).approved
    keys = t.state.keys
    assert keys is not None
    _, out = machine.start(t.state, Input("sale", amount=3_00, card=t.card(OK, amount=3_00)), world.clock())
    assert isinstance(out, machine.Send)
    fields = dict(CODEC.decode(out.body).items())
    fields.pop(64, None)
    if change == "no 62":
        del fields[62]
    elif change == "short 62":
        fields[62] = fields[62][:-1]  # type: ignore[index]
    elif change == "other prefix":
        fields[62] = b"XX016" + fields[62][5:]  # type: ignore[index]
    else:
        fields[53] = "14" + fields[53][2:]  # type: ignore[index]
    body = CODEC.encode(Message("0200", fields), mac=lambda mab: cup_ecb_mac(keys.mak, mab, SM4))
    reply = world.process(body).body
    assert reply is not None
    r = CODEC.decode(reply)
    assert r.text(39) == "99"
    assert all(x.status != "approved" for x in world.store.txns.values() if x.mti == "0200")
