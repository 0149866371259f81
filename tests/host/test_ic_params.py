"""The host's IC public key and IC parameter downloads (docs/dialect.md 3.12) and the no-CVM
check of contactless sales (docs/decisions.md C2), on the in-memory demo host."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pair.harness import PairTerminal, make_world
from posgate.dialect import ic_params as icp
from posgate.dialect.fields import Field60
from posgate.iso8583 import TLV


@pytest.fixture
def pair() -> tuple:
    w = make_world()
    t = PairTerminal(w)
    assert t.sign_on().code == "00"
    return w, t


def _nm(t: PairTerminal, mti: str, nmic: str, f62: bytes | None = None):
    fields = {**t.base(), 60: Field60("00", t.batch, nmic).format()}
    if f62 is not None:
        fields[62] = f62
    return t.send(mti, fields, mac=False)


def test_capk_query_lists_the_demo_keys_and_download_gives_the_whole_key(pair: tuple) -> None:
    w, t = pair
    r = _nm(t, "0820", "372", icp.query_request(0))
    assert r.code == "00" and r.reply.mti == "0830" and 64 not in r.reply
    status, items = icp.parse_query_reply(r.reply.data(62))
    assert status == icp.ALL
    assert [(dict(i)["9F06"].hex().upper(), dict(i)["9F22"].hex().upper()) for i in items] == [
        ("A000000333", "08"), ("A000000333", "09")]
    assert dict(items[0])["DF05"] == b"20301231"
    r = _nm(t, "0800", "370", icp.capk_key_tlv("A000000333", "08"))
    assert r.code == "00" and r.reply.mti == "0810"
    capk = icp.Capk.from_tlv(icp.parse_download_reply(r.reply.data(62)))
    assert capk == icp.UNIONPAY_TEST_CAPKS[0]
    assert _nm(t, "0800", "370", icp.capk_key_tlv("A000000333", "77")).code == "25"
    assert _nm(t, "0800", "370", b"\x9f\x06").code == "30"
    assert _nm(t, "0800", "371").code == "00"


def test_aid_query_download_and_the_query_in_parts(pair: tuple) -> None:
    w, t = pair
    r = _nm(t, "0820", "382", icp.query_request(0))
    status, items = icp.parse_query_reply(r.reply.data(62))
    assert status == icp.ALL and [dict(i)["9F06"].hex().upper() for i in items] == list(icp.UNIONPAY_AIDS)
    r = _nm(t, "0800", "380", icp.aid_key_tlv("A000000333010101"))
    aid = icp.AidParams.from_tlv(icp.parse_download_reply(r.reply.data(62)))
    assert aid.cvm_limit == 100000 and aid.aid == "A000000333010101"
    # Twelve AIDs: the first reply has ten and says more follow; the next one, from 10, the last two.
    w.store.aids.update({f"A0000003330101{n:02X}": icp.AidParams(aid=f"A0000003330101{n:02X}") for n in range(4, 13)})
    r = _nm(t, "0820", "382", icp.query_request(0))
    status, items = icp.parse_query_reply(r.reply.data(62))
    assert status == icp.MORE and len(items) == 10
    status, items = icp.parse_query_reply(_nm(t, "0820", "382", icp.query_request(10)).reply.data(62))
    assert status == icp.LAST and len(items) == 2
    assert _nm(t, "0820", "382", b"1x0").code == "30"


def test_no_keys_at_all_is_status_0(pair: tuple) -> None:
    w, t = pair
    w.store.capks.clear()
    assert _nm(t, "0820", "372", icp.query_request(0)).reply.data(62) == b"0"


def test_a_change_asks_every_terminal_until_its_download_ends(pair: tuple) -> None:
    w, t = pair
    assert t.echo().requirement == "0"
    w.store.put_ic_params(aids=[replace(icp.DEMO_AIDS[0], cvm_limit=50000)], capks=[icp.UNIONPAY_TEST_CAPKS[1]])
    assert t.echo().requirement == "4"  # CA public keys first
    # While it downloads the keys, the replies do not ask for the keys again (but for the AIDs).
    assert _nm(t, "0820", "372", icp.query_request(0)).requirement == "5"
    assert _nm(t, "0800", "371").requirement == "5"
    assert t.echo().requirement == "5"
    assert _nm(t, "0800", "381").requirement == "0"
    assert t.echo().requirement == "0"
    assert t.sign_on().requirement == "0"
    w.store.put_ic_params(aids=[icp.DEMO_AIDS[0]])
    assert t.sign_on().requirement == "5"  # a sign-on's reply asks too


def _tap_sale(t: PairTerminal, amount: int, pin: str | None, aid: str = "A000000333010101"):
    fields = t.card_fields("6225880000000000010", pin)
    fields[22] = "071" if pin else "072"
    fields[23] = "001"
    fields[55] = TLV([("9F02", f"{amount:012d}"), ("84", aid)])  # no 9F26: the ARQC check is not this test's
    return t.send("0200", {**t.base(), **fields, 3: "000000", 4: f"{amount:012d}", 25: "00", 49: "156",
                           60: t.f60("22")}, mac=True)  # fmt: skip


def test_a_tap_without_pin_above_the_aids_no_cvm_limit_is_55(pair: tuple) -> None:
    w, t = pair
    assert _tap_sale(t, 100000, None).code == "00"  # ¥1,000.00: at the limit
    r = _tap_sale(t, 100001, None)
    assert r.code == "55" and r.mac_ok  # a MAC'd decline (R1)
    assert w.store.cards[w.store.pan_hash("6225880000000000010")].pin_tries == 0  # no PIN try counted
    assert _tap_sale(t, 100001, "123456").code == "00"
    # An AID the host has no parameters for: no limit known, nothing checked.
    assert _tap_sale(t, 100001, None, aid="A000000333010199").code == "00"
    w.store.put_ic_params(aids=[replace(icp.DEMO_AIDS[0], cvm_limit=20000)])
    assert _tap_sale(t, 30000, None).code == "55"
