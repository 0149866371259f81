"""Every real message of docs/dialect.md 11.1 and the synthetic 0810 of 11.3: decoded to the
documented values and re-encoded to the identical bytes. One table drives all of them."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from posgate.dialect.cup import CODEC
from posgate.dialect.fields import Field60, KeyBlock
from posgate.framing import FrameReader, Header, Tpdu, encode_frame
from posgate.iso8583 import TLV, Message

from . import vectors as v


@dataclass(frozen=True)
class Case:
    name: str
    wire: bytes  # framed (length + TPDU + header + body) or a bare body
    mti: str
    bitmap: str
    fields: dict[int, object]
    f60: tuple[str, ...]  # 60.1, 60.2, 60.3[, 60.4]
    framed: dict[str, str] = field(default_factory=dict)  # length, tpdu, header


SIGN_ON_BITMAP = "0020000000C00012"  # 11, 41, 42, 60, 63 (3.4)

CASES = [
    Case(
        "11.1(a) PS5 framed sign-on",
        v.SIGN_ON_A,
        "0800",
        SIGN_ON_BITMAP,
        {11: "000059", 41: "10400067", 42: "000000000000004", 60: "00000001003", 63: "01 "},
        ("00", "000001", "003"),
        {"length": "60", "tpdu": "6000030000", "header": "602100000000"},
    ),
    Case(
        "11.1(b) PS6 framed sign-on",
        v.SIGN_ON_B,
        "0800",
        SIGN_ON_BITMAP,
        {11: "021806", 41: "20121206", 42: "SpecRoute121206", 60: "00000001001", 63: "003"},
        ("00", "000001", "001"),
        {"length": "60", "tpdu": "6000009733", "header": "602200000000"},
    ),
    Case(
        "11.1(c) PS1 sign-on request",
        v.SIGN_ON_C,
        "0800",
        SIGN_ON_BITMAP,
        {11: "000016", 41: "90361748", 42: "923011753991695", 60: "00000001004", 63: "01 "},
        ("00", "000001", "004"),
    ),
    Case(
        "11.1(d) PS1 contactless sale",
        v.SALE_D,
        "0200",
        "703C06C020C09A11",
        {
            2: "6217857600008050804",
            3: "000000",
            4: "000000000001",
            11: "000105",
            12: "161243",
            13: "0209",
            14: "2308",
            22: "071",
            23: "001",
            25: "00",
            26: "12",
            35: "6217857600008050804=23082201000082300",
            41: "92336787",
            42: "847100053990002",
            49: "156",
            52: bytes.fromhex("7D6A7408DFE2E9E5"),
            53: "2600000000000000",
            60: "220000010006",
            64: b"D37CEFE6",
        },
        ("22", "000001", "000", "6"),
    ),
    Case(
        "11.1(e) PS2 jspos sign-on",
        v.SIGN_ON_E1,
        "0800",
        SIGN_ON_BITMAP,
        {11: "000105", 41: "00000764", 42: "848100058126002", 60: "00000001003", 63: "001"},
        ("00", "000001", "003"),
    ),
    Case(
        "11.1(e) PS3 sign-on",
        v.SIGN_ON_E2,
        "0800",
        SIGN_ON_BITMAP,
        {11: "000001", 41: "12345678", 42: "000000000000001", 60: "00000001001", 63: "01"},
        ("00", "000001", "001"),
    ),
    Case(
        "11.1(e) PS4 sign-on",
        v.SIGN_ON_E3,
        "0800",
        SIGN_ON_BITMAP,
        {11: "001247", 41: "58D01115", 42: "88758D048165555", 60: "00000001003", 63: "01"},
        ("00", "000001", "003"),
    ),
    Case(
        "11.3 synthetic 0810 (scheme 004)",
        v.SIGN_ON_REPLY_0810,
        "0810",
        "003800010AC00014",  # 11, 12, 13, 32, 37, 39, 41, 42, 60, 62 (the real reply's bitmap, 3.4)
        {
            11: "000086",
            12: "132805",
            13: "0418",
            32: "00094500",
            37: "180418132805",
            39: "00",
            41: "32901240",
            42: "329012400000001",
            60: "00000001004",
            62: bytes.fromhex(
                "75CAD854C2E59A5EEDD7CA7410C2C215 46DD7383 E6218EF29513B143 0000000000000000 DC451C06"
                " 20A69927F177219944F8F3688FADD35E 08D7B4FB"
            ),
        },
        ("00", "000001", "004"),
    ),
]


def _bitmap_fields(bitmap: str) -> list[int]:
    bits = int(bitmap, 16)
    return [n for n in range(1, 65) if bits >> (64 - n) & 1]


def _body(case: Case) -> bytes:
    if not case.framed:
        return case.wire
    frames = FrameReader().feed(case.wire)
    assert len(frames) == 1
    return frames[0].body


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_decodes_to_the_documented_values(case: Case) -> None:
    msg = CODEC.decode(_body(case))
    assert msg.mti == case.mti
    assert list(msg) == _bitmap_fields(case.bitmap)
    for number, expected in case.fields.items():
        assert msg[number] == expected, f"field {number}"
    f60 = Field60.parse(msg.text(60))
    got = (f60.type_code, f60.batch_no, f60.nmic, f60.read_capability)
    assert got[: len(case.f60)] == case.f60
    assert "".join(got[len(case.f60) :]) == ""


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_reencodes_to_the_identical_bytes(case: Case) -> None:
    body = _body(case)
    assert body[2:10].hex().upper() == case.bitmap
    msg = CODEC.decode(body)
    assert msg.raw == body
    assert CODEC.encode(msg) == body
    # Rebuilt from plain values, not from the decoded object: still the same bytes.
    assert CODEC.encode(Message(msg.mti, dict(msg.items()))) == body


@pytest.mark.parametrize("case", [c for c in CASES if c.framed], ids=lambda c: c.name)
def test_framed_messages_go_through_the_frame_reader(case: Case) -> None:
    frames = FrameReader().feed(case.wire)
    assert len(frames) == 1
    frame = frames[0]
    assert int(case.framed["length"]) == int.from_bytes(case.wire[:2], "big") == len(case.wire) - 2
    tpdu, header = Tpdu.parse(frame.tpdu), Header.parse(frame.header)
    assert str(tpdu) == case.framed["tpdu"]
    assert (tpdu.id, tpdu.destination, tpdu.source) == (case.framed["tpdu"][:2], case.framed["tpdu"][2:6], case.framed["tpdu"][6:])
    assert str(header) == case.framed["header"]
    assert header.category == "60" and header.status == "0" and header.requirement == frame.requirement == "0"
    msg = CODEC.decode(frame.body)
    assert encode_frame(tpdu.encode(), header.encode(), CODEC.encode(msg)) == case.wire


def test_the_sale_field_55_is_the_documented_145_byte_tlv() -> None:
    msg = CODEC.decode(v.SALE_D)
    f55 = msg[55]
    assert isinstance(f55, TLV)
    assert len(f55.raw) == 145 == len(msg.data(55) or b"")
    assert [tag for tag, _ in f55] == (
        "9F26 9F27 9F10 9F37 9F36 95 9A 9C 9F02 5F2A 82 9F1A 9F03 9F33 9F34 9F35 9F1E 84 9F09 9F41".split()
    )
    assert f55["9F26"] == bytes.fromhex("9C0A057796D091E3")  # the ARQC
    assert f55["9F27"] == b"\x80"
    assert f55["9F02"] == bytes.fromhex("000000000001")  # = field 4
    assert f55["5F2A"] == f55["9F1A"] == bytes.fromhex("0156")
    assert f55["9A"] == bytes.fromhex("180209")  # transaction date 2018-02-09 = field 13 0209
    assert f55["84"] == bytes.fromhex("A000000333010101")  # the CUP debit AID
    assert f55["9F1E"] == b"12345678"
    assert TLV(f55.items).raw == f55.raw  # rebuilt from its items: same bytes


def test_the_sale_mac_is_ascii_hex_and_the_mac_block_ends_before_it() -> None:
    msg = CODEC.decode(v.SALE_D)
    assert msg[64] == b"D37CEFE6"
    assert msg.mac_block() == v.SALE_D[:-8]
    assert len(msg.mac_block()) == 263  # 11.3: "MAB of the real sale (d) (263 bytes, MTI…F60)"
    # encode(mac=...) appends the MAC of exactly that block.
    seen: list[bytes] = []

    def mac(block: bytes) -> bytes:
        seen.append(block)
        return b"D37CEFE6"

    assert CODEC.encode(msg, mac=mac) == v.SALE_D
    assert seen == [v.SALE_D[:-8]]


def test_the_0810_key_block_parses_by_scheme() -> None:
    msg = CODEC.decode(v.SIGN_ON_REPLY_0810)
    kb = KeyBlock.parse(Field60.parse(msg.text(60)).nmic, msg.data(62) or b"")
    assert kb.pik == bytes.fromhex("75CAD854C2E59A5EEDD7CA7410C2C215")
    assert kb.pik_cv == bytes.fromhex("46DD7383")
    assert kb.mak == bytes.fromhex("E6218EF29513B143")
    assert kb.mak_cv == bytes.fromhex("DC451C06")
    assert kb.tdk == bytes.fromhex("20A69927F177219944F8F3688FADD35E")
    assert kb.tdk_cv == bytes.fromhex("08D7B4FB")
    assert kb.format() == msg.data(62)


def test_the_0810_field_62_unwraps_to_the_documented_clear_keys() -> None:
    crypto = pytest.importorskip("posgate.crypto")
    msg = CODEC.decode(v.SIGN_ON_REPLY_0810)
    keys = crypto.unwrap_working_keys(v.TMK, "004", msg.data(62))
    assert keys.pik == bytes.fromhex("64F2451FB3A29158DC924F2A32541C02")
    assert keys.mak == bytes.fromhex("F82A9BA462D57A7C")
    cvs = keys.check_values()
    assert cvs["PIK"] == bytes.fromhex("46DD7383")
    assert cvs["MAK"] == bytes.fromhex("DC451C06")
    assert cvs["TDK"] == bytes.fromhex("08D7B4FB")


def test_the_11_3_encrypted_track_travels_in_field_35() -> None:
    crypto = pytest.importorskip("posgate.crypto")
    tdk = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # the synthetic TDK of 11.3
    clear = "6217857600008050804=23082201000082300"
    encrypted = crypto.encrypt_track(tdk, clear)
    assert encrypted == "6217857600008050804=120=490283F482=00"  # 11.3: ...804D120D490283F482D00
    body = CODEC.encode(Message("0200", {35: encrypted, 53: "2610000000000000"}))
    assert body[10:30] == bytes.fromhex("37 6217857600008050804D120D490283F482D000".replace(" ", ""))
    back = CODEC.decode(body)
    assert back[35] == encrypted
    assert crypto.decrypt_track(tdk, back.text(35)) == clear
