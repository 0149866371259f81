"""The gate and the pipeline's boundary: decode, identify, merchant, MAC, format, replies."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pair.harness import HEADER, PairTerminal, World, make_world
from posgate.dialect.cup import CODEC
from posgate.dialect.fields import Field60, parse_parameters
from posgate.host.participants.decode import REPLY_SIDE
from posgate.host.participants.reply import BuildReply
from posgate.iso8583 import CodecError, FieldValue, Message


@pytest.fixture
def pair() -> tuple:
    w = make_world()
    t = PairTerminal(w)
    assert t.sign_on().code == "00"
    return w, t


def test_garbage_closes_the_connection() -> None:
    w = make_world()
    for body in (b"", b"\x02\x00", b"\xff" * 40):
        r = w.process(body)
        assert r.body is None and r.close and r.response_code == "30"


def test_a_reply_mti_is_not_answered() -> None:
    w = make_world()
    r = w.process(CODEC.encode(Message("0210", {11: "000001", 41: "10000001", 42: "898100012340001"})))
    assert r.body is None and r.close


def test_broken_tail_gets_30_with_the_addressing_fields(pair: tuple) -> None:
    w, t = pair
    good = CODEC.encode(Message("0200", {3: "000000", 4: "000000000100", 11: "000123", 41: t.tid, 42: t.mid,
                                         49: "156", 60: "22000001000"}))  # fmt: skip
    r = w.process(good[:-3])
    assert r.response_code == "30" and r.body is not None and not r.close
    reply = CODEC.decode(r.body)
    assert reply.mti == "0210" and reply.text(11) == "000123" and reply.text(41) == t.tid and reply.text(39) == "30"


def test_unknown_operation_is_40(pair: tuple) -> None:
    w, t = pair
    r = t.send("0200", {**t.base(), 3: "990000", 4: "000000000100", 22: "022", 25: "00", 49: "156",
                        60: t.f60("22")}, mac=True)  # fmt: skip
    assert r.code == "40"


def test_unknown_terminal_wrong_merchant_suspended_terminal(pair: tuple) -> None:
    w, t = pair
    t.tid = "99999999"
    assert t.echo().code == "97"
    t.tid, t.mid = "10000001", "898100012340002"
    assert t.echo().code == "03"
    t.mid = "898100012340001"
    w.store.update_terminal(t.tid, status="suspended")
    assert t.sale().code == "58"


def test_suspended_merchant(pair: tuple) -> None:
    w, t = pair
    w.store.update_merchant(t.mid, status="suspended")
    assert t.sale().code == "03"
    assert t.sign_on().code == "03"
    assert w.store.sign_ons[-1].kind == "refused" and w.store.sign_ons[-1].cause == "merchant_suspended"
    rec = w.store.txns[max(w.store.txns)]
    assert rec.status == "rejected" and rec.response_code == "03"


def test_mac_failures_force_a_re_sign_on(pair: tuple) -> None:
    w, t = pair
    good = t.keys
    t.keys = type(good)(pik=good.pik, mak=bytes.fromhex("0123456789ABCDEF"), tdk=good.tdk)  # type: ignore[union-attr]
    codes = [t.sale() for _ in range(3)]
    assert [r.code for r in codes] == ["A0", "A0", "A0"]
    assert [r.requirement for r in codes] == ["0", "0", "3"]
    term = w.store.terminal(t.tid)
    assert term is not None and term.resign_requested and term.resign_reason == "mac_failures" and term.mac_failures == 3
    t.keys = good
    r = t.sale()
    assert r.code == "00" and r.requirement == "3"  # still asked to sign on again
    assert w.store.terminal(t.tid).mac_failures == 0  # type: ignore[union-attr]
    s = t.sign_on()
    assert s.code == "00" and s.requirement == "0"
    assert w.store.sign_ons[-1].cause == "mac_failures"
    assert not w.store.terminal(t.tid).resign_requested  # type: ignore[union-attr]


def test_missing_mac_is_a0(pair: tuple) -> None:
    w, t = pair
    fields = {**t.base(), 3: "310000", 22: "022", 25: "00", 35: "6212142000000000012=30122010000000000",
              49: "156", 60: t.f60("01")}  # fmt: skip
    assert t.send("0200", fields, mac=False).code == "A0"


def test_support_asks_for_a_re_sign_on_and_params(pair: tuple) -> None:
    w, t = pair
    w.store.update_terminal(t.tid, resign_requested=True, resign_reason="support", params_pending=True,
                            params={"comm_timeout": 45, "23": "2", "tip_allowed": "1"})  # fmt: skip
    r = t.echo()
    assert r.code == "00" and r.requirement == "3"
    s = t.sign_on()
    assert s.code == "00" and s.requirement == "1" and w.store.sign_ons[-1].cause == "remote"
    p = t.download_parameters()
    assert p.code == "00" and p.requirement == "2"  # then report the status: what it now runs with
    params = parse_parameters(p.reply.data(62))  # type: ignore[union-attr]
    assert params["12"] == b"45" and params["23"] == b"2" and params["18"] == b"1" and params["13"] == b"3"
    assert params["22"].decode("gbk") == "演示便利店"
    assert not w.store.terminal(t.tid).params_pending  # type: ignore[union-attr]


def test_status_upload_and_echo(pair: tuple) -> None:
    w, t = pair
    assert t.upload_status().code == "00"
    assert w.store.terminal(t.tid).last_status_upload["items"] == "1160"  # type: ignore[union-attr,index]
    e = t.echo()
    assert e.code == "00" and set(e.reply) >= {11, 12, 13, 32, 37, 39, 41, 42, 60}  # type: ignore[arg-type]


def test_reply_shape_of_a_sale(pair: tuple) -> None:
    w, t = pair
    r = t.sale("ok", 1_00, manual=True)
    assert r.code == "00"
    assert set(r.reply) == {2, 3, 4, 11, 12, 13, 14, 22, 25, 32, 37, 38, 39, 41, 42, 44, 49, 60, 63, 64}  # type: ignore[arg-type]
    assert r.reply.text(32) == "00049990" and r.reply.text(63) == "CUP"  # type: ignore[union-attr]
    assert r.reply.text(12) == "100000" and r.reply.text(13) == "0506"  # host time in Shanghai  # type: ignore[union-attr]
    d = t.sale("poor", 99_999)
    assert d.code == "51" and 38 not in d.reply and d.mac_ok  # type: ignore[operator]


def test_every_reply_to_a_good_mac_is_macd_gate_declines_are_not(pair: tuple) -> None:
    """R1 (docs/decisions.md): declines after a good request MAC carry a MAC too; replies to a
    bad MAC or from a gate that holds no trusted key do not."""
    w, t = pair
    assert t.sale("ok", 100).mac_ok is True
    for card, code in (("poor", "51"), ("expired", "54"), ("lost", "41")):
        r = t.sale(card, 99_999)
        assert r.code == code and r.mac_ok is True, (card, r.code)
    bad = t.sale("ok", 100, pin="654321")
    assert bad.code == "55" and bad.mac_ok is True
    # STAN reused with different content: the 94 is authenticated too (nothing was executed).
    again = t.last.request.replace(f4="000000000777")
    r = w.process(CODEC.encode(again, mac=t.mac))
    assert r.response_code == "94" and r.body is not None
    reply = CODEC.decode(r.body)
    assert 64 in reply and reply.data(64) == t.mac(reply.mac_block())
    # A wrong MAC: A0 without a MAC.
    good = t.keys
    t.keys = type(good)(pik=good.pik, mak=bytes.fromhex("0123456789ABCDEF"), tdk=good.tdk)  # type: ignore[union-attr]
    r = t.sale("ok", 100)
    assert r.code == "A0" and r.mac_ok is None
    t.keys = good
    # No sign-on today (D5): 22 without a MAC, although the host still holds yesterday's MAK.
    w.clock.next_day()
    r = t.sale("ok", 100)
    assert r.code == "22" and r.mac_ok is None
    # Unknown terminal: 97 without a MAC.
    t.tid = "99999999"
    r = t.sale("ok", 100)
    assert r.code == "97" and r.mac_ok is None


def test_format_checks(pair: tuple) -> None:
    w, t = pair
    assert t.financial("sale", 100, "ok", None, extra={49: "840"}).code == "A1"
    assert t.financial("sale", 0, "ok", None).code == "13"
    r = t.send("0200", {**t.base(), 3: "000000", 25: "00", 22: "022", 49: "156", 60: t.f60("22")}, mac=True)
    assert r.code == "30"  # no amount, no card


def test_batch_mismatch_is_77(pair: tuple) -> None:
    w, t = pair
    t.batch = "000005"
    r = t.sale()
    assert r.code == "77" and r.requirement == "3"


def test_process_never_raises(pair: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    w, t = pair

    def boom(self: object, ctx: object) -> str:
        raise RuntimeError("secret 6212142000000000012")

    monkeypatch.setattr(BuildReply, "prepare", boom)
    body = CODEC.encode(Message("0820", {**t.base(), 60: Field60("00", t.batch, "301").format()}))
    r = w.process(body, HEADER)
    assert r.response_code == "96" and r.error == "RuntimeError" and r.body is not None
    assert "6212" not in repr(r.trace)
    assert CODEC.decode(r.body).text(39) == "96"


def test_no_card_data_in_traces_or_records() -> None:
    w = make_world()
    t = PairTerminal(w)
    t.sign_on()
    t.sale("ok", 100)
    t.sale("poor", 10_000_000)
    t.balance()
    t.void(t.journal[0])
    blob = repr([(r, w.store.extra) for r in w.store.txns.values()]) + repr(w.store.sign_ons)
    for pan in ("6212142000000000012", "6217000000000000020"):
        assert pan not in blob
    assert "=3012" not in blob and "123456" not in blob


# ---------------------------------------------------------------- a reused bitmap
def _with_bits(body: bytes, bits: int) -> bytes:
    return body[:2] + (int.from_bytes(body[2:10], "big") | bits).to_bytes(8, "big") + body[10:]


def _bit(*numbers: int) -> int:
    return sum(1 << (64 - n) for n in numbers)


@pytest.mark.parametrize(
    ("name", "mutate", "why"),
    [
        # A template bitmap still flags the PAN, processing code and amount of the last sale.
        ("fields 2, 3, 4 flagged, absent", lambda b: _with_bits(b, _bit(2, 3, 4)), "bitmap flags absent fields 2, 3, 4"),
        # A field this dialect does not define, flagged but not sent (7: transmission date, other dialects).
        ("field 7 flagged, absent", lambda b: _with_bits(b, _bit(7)), "bitmap flags absent field 7"),
        ("bit 1, no secondary bitmap", lambda b: _with_bits(b, _bit(1)), "bit 1 set, no secondary bitmap"),
        ("bit 1, an empty secondary bitmap", lambda b: _with_bits(b, _bit(1))[:10] + bytes(8) + b[10:],
         "an empty secondary bitmap"),
        ("MAC flagged, absent", lambda b: _with_bits(b, _bit(64)), "bitmap flags absent field 64"),
    ],
)  # fmt: skip
def test_a_reused_bitmap_gets_a_30_addressed_to_the_terminal_naming_the_fields(pair: tuple, name: str, mutate, why: str) -> None:
    # Regression: a bitmap flagging fields before 11 that are not there closed the connection
    # while the log said "rc 30"; the terminal never learned why.
    w, t = pair
    echo = CODEC.encode(Message("0820", {11: "000321", 41: t.tid, 42: t.mid, 60: "00000001301"}))
    r = w.process(mutate(echo))
    assert r.body is not None and not r.close, r.trace
    assert r.response_code == "30"
    reply = CODEC.decode(r.body)
    assert (reply.mti, reply.text(11), reply.text(41), reply.text(42), reply.text(39)) == ("0830", "000321", t.tid, t.mid, "30")
    assert r.trace[0][0] == "Decode" and why in r.trace[0][2]


def test_garbage_with_a_request_mti_still_closes_and_says_why() -> None:
    w = make_world()
    r = w.process(bytes.fromhex("0200") + bytes.fromhex("7FFFFFFFFFFFFFFE") + b"\xee" * 60)
    assert r.body is None and r.close
    assert "11, 41, 42 unreadable, closing" in r.trace[0][2]


def _request(kind: str) -> tuple[World, bytes]:
    """A valid request from a signed-on pair terminal (a sale already approved, or an admin message)."""
    w = make_world()
    t = PairTerminal(w)
    assert t.sign_on().code == "00"
    if kind == "sale":
        sent = t.sale()
        assert sent.code == "00"
        return w, CODEC.encode(sent.request, mac=t.mac)  # the very bytes the host approved
    f60 = "00000001004" if kind == "sign-on" else "00000001301"
    extra: dict[int, FieldValue] = {63: "01 "} if kind == "sign-on" else {}
    return w, CODEC.encode(Message("0800" if kind == "sign-on" else "0820", {11: t.next_stan(), 41: t.tid, 42: t.mid, 60: f60, **extra}))


def _decodes(body: bytes) -> bool:
    try:
        CODEC.decode(body)
    except CodecError:
        return False
    return True


KINDS = st.sampled_from(["sale", "sign-on", "echo"])
HYPO = settings(max_examples=150, deadline=None)


@HYPO
@given(data=st.data(), kind=KINDS)
def test_a_valid_request_with_k_stale_flags_gets_30_or_a_clean_close_never_an_approval(data: st.DataObject, kind: str) -> None:
    w, body = _request(kind)
    msg = CODEC.decode(body)
    # Any field of 2-64 the request does not carry (bit 1 is tested above), up to eight of them.
    stale = data.draw(st.lists(st.sampled_from([k for k in range(2, 65) if k not in msg]), min_size=1, max_size=8, unique=True))
    sent = _with_bits(body, _bit(*stale))
    r = w.process(sent)
    if kind == "sale":
        assert r.response_code != "00", r.trace  # the MAC covers the bitmap: never approved
    if _decodes(sent):  # the stale flags happen to read as another well-formed message: the pipeline judges it
        return
    assert r.response_code == "30", r.trace  # never approved, never executed
    if r.body is None:
        assert r.close and "11, 41, 42 unreadable, closing" in r.trace[0][2], r.trace
    else:
        assert CODEC.decode(r.body).text(39) == "30" and not r.close


@HYPO
@given(data=st.data(), kind=KINDS)
def test_stale_reply_fields_of_any_number_get_a_30_addressed_to_the_terminal(data: st.DataObject, kind: str) -> None:
    # What a library that copies each reply's bitmap into its own table sends (Easy8583 does).
    w, body = _request(kind)
    msg = CODEC.decode(body)
    stale = data.draw(st.lists(st.sampled_from(sorted(REPLY_SIDE - set(msg))), min_size=1, max_size=8, unique=True))
    sent = _with_bits(body, _bit(*stale))
    r = w.process(sent)
    if _decodes(sent):
        assert r.response_code != "00" or kind != "sale", r.trace
        return
    assert r.body is not None and not r.close and r.response_code == "30", r.trace
    reply = CODEC.decode(r.body)
    assert (reply.text(11), reply.text(41), reply.text(42), reply.text(39)) == (msg.text(11), msg.text(41), msg.text(42), "30")
    assert f"absent field{'s' if len(stale) > 1 else ''} {', '.join(map(str, sorted(stale)))}" in r.trace[0][2], r.trace
