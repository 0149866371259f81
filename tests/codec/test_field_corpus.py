"""Real CUP POS messages from public repositories (tests/data/real-messages/corpus.json, each
with its source): ``posgate decode`` reads every one and names the header/TPDU variant; a
message whose MAK is published has its MAC checked (and a changed byte fails it: the MAC stays
strict); the host core answers every request with a reply, never a silent close. The odd pad
nibbles real terminals use (0 and F) are read on every odd-length BCD/track field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from pair.harness import make_world
from posgate.cli import app
from posgate.crypto import cup_ecb_mac, mac_verify
from posgate.dialect.cup import CODEC
from posgate.dialect.decode import decode_any
from posgate.framing import FrameReader, Header, Tpdu
from posgate.iso8583 import CodecError, Message

CORPUS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "data" / "real-messages" / "corpus.json").read_text("utf-8")
)["messages"]
# A request marked "answer": "30" does not decode as sent (a reused bitmap flagging the fields
# listed in "absent"): the host reads around them and answers 30; tested on its own below.
REUSED_BITMAP = [m for m in CORPUS if m.get("answer") == "30"]
READABLE = [m for m in CORPUS if m.get("answer") != "30"]
REQUESTS = [m for m in READABLE if m["direction"] == "request"]
F_PAD_SALE = next(m for m in CORPUS if m["name"] == "easy8583ans-0200-contactless-sale-f-pad")
HEX_HEADER = [m for m in CORPUS if "60310031110E" in m["hex"].upper()]
LOWER_MAC_SALE = next(m for m in CORPUS if m["name"] == "easy8583-run-0200-qr-sale-lowercase-mac")
runner = CliRunner()


def _frame(m: dict[str, Any]) -> Any:
    frames = FrameReader().feed(bytes.fromhex(m["hex"]))
    assert len(frames) == 1
    return frames[0]


def test_the_corpus_has_its_sources_and_the_variants_it_is_for() -> None:
    assert len(CORPUS) >= 9
    for m in CORPUS:
        assert m["source"]["repo"] and m["source"]["path"] and m["variants"], m["name"]
    assert F_PAD_SALE["mak"] and HEX_HEADER


@pytest.mark.parametrize("m", READABLE, ids=lambda m: m["name"])
def test_posgate_decode_reads_every_real_message_and_names_the_variant(m: dict[str, Any]) -> None:
    result = runner.invoke(app, ["decode", "--json", m["hex"]])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    frame = _frame(m)
    assert doc["mti"] == frame.body[:2].hex()
    assert doc["tpdu"] == frame.tpdu.hex().upper() and doc["tpdu_variant"] == Tpdu.parse(frame.tpdu).variant()
    assert doc["header"]["raw"] == frame.header.hex().upper()
    assert doc["header"]["variant"] == Header.parse(frame.header).variant()
    # Every field decoded to the last byte, and the text output says which variant it saw.
    assert CODEC.decode(frame.body).raw == frame.body
    text = runner.invoke(app, ["decode", m["hex"]]).stdout
    assert f"variant: {Header.parse(frame.header).variant()}" in text


def test_a_hex_sub_version_header_is_read_and_named() -> None:
    # Regression: "header: expected 6 BCD bytes" for a header the host accepts.
    for m in HEX_HEADER:
        d = decode_any(m["hex"])
        assert d.header is not None and str(d.header) == "60310031110E"
        assert d.header.variant() == "hex sub-version" and d.header.sub_version == "31110E"
        assert d.message.mti == "0810"


def test_the_f_padded_track_2_is_read_and_its_mac_verifies_with_the_published_mak() -> None:
    # Regression: the codec refused the F pad nibble, so the host closed without a reply.
    msg = CODEC.decode(_frame(F_PAD_SALE).body)
    track = msg.text(35)
    assert len(track) == 37 and track.startswith("6210810840003424940=")  # 37 digits, the F pad dropped
    assert msg.text(2) == "6210810840003424940"
    mak = bytes.fromhex(F_PAD_SALE["mak"])
    assert cup_ecb_mac(mak, msg.mac_block()) == msg[64] == b"B7133B57"
    # We write a 0 pad: re-encoding changes that one nibble only, and so the MAC must be (and
    # is) computed over the bytes as received.
    again = CODEC.encode(Message(msg.mti, dict(msg.items())))
    diff = [i for i, (a, b) in enumerate(zip(again, msg.raw, strict=True)) if a != b]
    assert len(diff) == 1 and msg.raw[diff[0]] & 0x0F == 0x0F and again[diff[0]] & 0x0F == 0


def test_the_mac_stays_strict_on_a_lenient_read() -> None:
    body = bytearray(_frame(F_PAD_SALE).body)
    mak = bytes.fromhex(F_PAD_SALE["mak"])
    body[29] ^= 0x01  # the last digit of the amount (field 4, bytes 24-29)
    msg = CODEC.decode(bytes(body))
    assert not mac_verify(cup_ecb_mac(mak, msg.mac_block()), msg.data(64) or b"")


# ---------------------------------------------------------------- pad nibbles, every kind
SALE = CODEC.encode(Message("0200", {2: "6212142000000000012", 3: "000000", 4: "000000000100", 11: "000007",
                                     22: "021", 23: "001", 35: "6212142000000000012=30122010000000000",
                                     41: "10000001", 42: "898100012340001", 60: "22000001000"}))  # fmt: skip


def _pad_positions(body: bytes) -> dict[str, tuple[int, bool]]:
    """Byte offset of each odd field's pad nibble, and whether it is the low nibble."""
    out: dict[str, tuple[int, bool]] = {}
    p = 10
    out["2"] = (p + 10, True)  # LL + 10 bytes: 19 digits, left-justified, pad last
    p += 11 + 3 + 6 + 3
    out["22"] = (p + 1, True)  # left-justified n3 in 2 bytes: the pad is the low nibble of byte 2
    out["23"] = (p + 2, False)  # right-justified n3: the pad is the high nibble of byte 1
    p += 4
    out["35"] = (p + 19, True)  # LL + 19 bytes: 37 track characters, pad last
    return out


@pytest.mark.parametrize("field", ["2", "22", "23", "35"])
@pytest.mark.parametrize("pad", [0x0, 0xF])
def test_every_odd_field_reads_a_0_or_f_pad_on_both_paths(field: str, pad: int) -> None:
    at, low = _pad_positions(SALE)[field]
    body = bytearray(SALE)
    body[at] = (body[at] & 0xF0) | pad if low else (body[at] & 0x0F) | pad << 4
    want = CODEC._decode_reference(SALE)
    for _ in range(2):  # the second decode of a bitmap takes the generated fast path
        got = CODEC.decode(bytes(body))
        assert dict(got.items()) == dict(want.items())
    assert dict(CODEC._decode_reference(bytes(body)).items()) == dict(want.items())


@pytest.mark.parametrize("field", ["2", "22", "23", "35"])
@pytest.mark.parametrize("pad", [0x1, 0x9, 0xA, 0xD])
def test_any_other_pad_nibble_is_still_an_error_naming_the_field(field: str, pad: int) -> None:
    at, low = _pad_positions(SALE)[field]
    body = bytearray(SALE)
    body[at] = (body[at] & 0xF0) | pad if low else (body[at] & 0x0F) | pad << 4
    with pytest.raises(CodecError) as e:
        CODEC.decode(bytes(body))
    assert e.value.field == field


# ---------------------------------------------------------------- the host answers
@pytest.mark.parametrize("m", REQUESTS, ids=lambda m: m["name"])
def test_the_host_answers_every_real_request(m: dict[str, Any]) -> None:
    w = make_world()
    frame = _frame(m)
    r = w.process(frame.body, frame.header)
    assert r.body is not None and not r.close, r.trace  # a reply, never a silent close
    reply = CODEC.decode(r.body)
    assert reply.mti == f"{int(frame.body[:2].hex()) + 10:04d}"
    request = CODEC.decode(frame.body)
    assert reply.text(11) == request.text(11) and reply.text(41) == request.text(41)
    assert reply.text(39)  # the demo host does not know these terminals: 97, a reasoned reply
    assert r.header[:2] == frame.header[:2] and r.header[3:] == frame.header[3:]  # echoed as received


def _provision_f_pad_terminal(w: Any) -> None:
    msg = CODEC.decode(_frame(F_PAD_SALE).body)
    w.store.add_merchant(msg.text(42), "Easy8583 sample")
    today = w.clock().astimezone(ZoneInfo(w.env.timezone)).date().isoformat()
    # Signed on today with the published MAK (the PIK is unused: the sale carries no PIN block).
    w.store.add_terminal(msg.text(41), msg.text(42), bytes(16), batch_no="000757", at=w.clock(), signed_on_day=today,
                         key_scheme="001", mak=bytes.fromhex(F_PAD_SALE["mak"]), pik=bytes(16))  # fmt: skip


def test_the_host_checks_the_real_sale_mac_with_its_published_mak_and_answers() -> None:
    w = make_world()
    _provision_f_pad_terminal(w)
    frame = _frame(F_PAD_SALE)
    r = w.process(frame.body, frame.header)
    assert r.body is not None and not r.close
    assert ["CheckMac", "PREPARED", ""] in r.trace  # the MAC verified over the bytes as received
    reply = CODEC.decode(r.body)
    assert reply.text(39) not in ("A0", "30")
    assert reply.text(11) == "000020" and reply.text(41) == "73782214"
    mac = reply.data(64)
    assert mac is not None and mac_verify(cup_ecb_mac(bytes.fromhex(F_PAD_SALE["mak"]), reply.mac_block()), mac)
    assert r.header == bytes.fromhex("613100311108")


def test_a_changed_byte_in_the_real_sale_is_still_refused_with_a0() -> None:
    w = make_world()
    _provision_f_pad_terminal(w)
    body = bytearray(_frame(F_PAD_SALE).body)
    body[29] ^= 0x01  # the amount
    r = w.process(bytes(body), bytes.fromhex("613100311108"))
    assert r.response_code == "A0" and r.body is not None


# ---------------------------------------------------------------- a real client run (Easy8583Ans)
def _provision_easy8583_terminal(w: Any, dialect: str) -> None:
    msg = CODEC.decode(_frame(LOWER_MAC_SALE).body)
    assert msg.text(42) in w.store.merchants  # the client was configured with the demo merchant
    today = w.clock().astimezone(ZoneInfo(w.env.timezone)).date().isoformat()
    # Signed on today with the MAK the client derived from posgate's sign-on reply in the run.
    w.store.add_terminal(msg.text(41), msg.text(42), bytes(16), at=w.clock(), signed_on_day=today, key_scheme="003",
                         mak=bytes.fromhex(LOWER_MAC_SALE["mak"]), pik=bytes(16), dialect=dialect)  # fmt: skip


def test_the_real_clients_lower_case_mac_verifies_under_its_profile_and_the_sale_is_answered() -> None:
    w = make_world()
    _provision_easy8583_terminal(w, LOWER_MAC_SALE["profile"])
    frame = _frame(LOWER_MAC_SALE)
    msg = CODEC.decode(frame.body)
    mak = bytes.fromhex(LOWER_MAC_SALE["mak"])
    assert msg[64] == cup_ecb_mac(mak, msg.mac_block(), lower=True) != cup_ecb_mac(mak, msg.mac_block())
    r = w.process(frame.body, frame.header)
    assert ["CheckMac", "PREPARED", ""] in r.trace, r.trace
    reply = CODEC.decode(r.body or b"")
    assert reply.text(39) == "00" and reply.text(11) == msg.text(11)
    mac = reply.data(64)  # the reply is MAC'd the way the client computes it
    assert mac is not None and mac_verify(cup_ecb_mac(mak, reply.mac_block(), lower=True), mac)


def test_the_same_bytes_from_a_terminal_on_the_baseline_are_refused_with_a0() -> None:
    w = make_world()
    _provision_easy8583_terminal(w, "cup")
    frame = _frame(LOWER_MAC_SALE)
    assert w.process(frame.body, frame.header).response_code == "A0"


@pytest.mark.parametrize("profile", ["easy8583", "cup"])
@pytest.mark.parametrize("m", REUSED_BITMAP, ids=lambda m: m["name"])
def test_a_real_reused_bitmap_is_answered_30_with_the_terminals_11_41_42(m: dict[str, Any], profile: str) -> None:
    # Regression: Easy8583's second message on one library object flags six fields that are not
    # there; the host closed the connection without a reply (issue 10).
    w = make_world()
    _provision_easy8583_terminal(w, profile)
    frame = _frame(m)
    with pytest.raises(CodecError):
        CODEC.decode(frame.body)
    r = w.process(frame.body, frame.header)
    assert r.body is not None and not r.close, r.trace
    assert r.response_code == "30"
    reply = CODEC.decode(r.body)
    # The terminal's own values, as its sale sent them (the fields sit where a fresh bitmap puts them).
    assert (reply.mti, reply.text(11), reply.text(41), reply.text(42), reply.text(39)) == (
        "0210", "000001", "73782214", "898100012340001", "30")
    absent = ", ".join(map(str, m["absent"]))
    assert r.trace[0][0] == "Decode" and f"bitmap flags absent fields {absent}" in r.trace[0][2], r.trace
    # Nothing was executed: no transaction recorded.
    assert not w.store.txns
