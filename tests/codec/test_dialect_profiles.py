"""Dialect profiles as data: their MACs against published vectors (ISO/IEC 9797-1 Annex B:
X9.9 ``70A30640…``, X9.19 ``A1C72E74EA3FA9B6`` over "Now is the time for all "), their PIN
formats against ISO 9564 examples, the compiled codec variants, the 60 tail, and the rule
that a profile overrides only fields after 41."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from posgate.crypto import (
    PinBlockError,
    decrypt_pin,
    encrypt_pin_block,
    pin_block_format1,
    pin_block_format3,
    translate_pin_block_to_format0,
)
from posgate.dialect import profiles
from posgate.dialect.cup import CODEC, FIELDS
from posgate.dialect.fields import Field60, SettlementTotals
from posgate.dialect.operations import identify
from posgate.iso8583 import CodecError, Message
from posgate.iso8583.spec import n

VECTORS = json.loads((Path(__file__).parents[1] / "data" / "crypto-vectors.json").read_text())
NOW_IS = b"Now is the time for all "


def _vectors(prefix: str) -> list[dict]:
    return [v for v in VECTORS if v["algorithm"].startswith(prefix)]


def test_x9_9_profile_mac_is_the_published_vector() -> None:
    (v, *_) = [v for v in _vectors("ANSI X9.9") if v["inputs"]["data_ascii"] == NOW_IS.decode()]
    mac = profiles.get("gz-bill").mac_function(bytes.fromhex(v["inputs"]["key"]))(NOW_IS)
    assert mac.hex().upper() == v["expected"] == "70A30640CC76DD8B"


def test_x9_19_profile_mac_is_the_published_vector() -> None:
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    assert profiles.get("x919").mac_function(key)(NOW_IS).hex().upper() == "A1C72E74EA3FA9B6"
    for v in _vectors("ANSI X9.19 retail MAC"):
        data = bytes.fromhex(v["inputs"]["data_hex"])
        assert (
            profiles.get("x919").mac_function(bytes.fromhex(v["inputs"]["key"]))(data).hex().upper()
            == v["expected"]
        )


def test_baseline_keeps_the_terminal_mac_option() -> None:
    cup = profiles.get("cup")
    assert cup.mac_name("cup") == "cup" and cup.mac_name("x919") == "x9.19"
    assert profiles.get("gz-bill").mac_name("x919") == "x9.9"  # a profile's MAC is its own


@pytest.mark.parametrize("v", _vectors("PIN block ISO 9564-1 format 1"), ids=lambda v: v["expected"])
def test_format1_vectors(v: dict) -> None:
    assert (
        pin_block_format1(v["inputs"]["pin"], bytes.fromhex(v["inputs"]["fill_digits"])).hex().upper()
        == v["expected"]
    )


@pytest.mark.parametrize("v", _vectors("PIN block ISO 9564-1 format 3"), ids=lambda v: v["expected"])
def test_format3_vectors_translate_to_format0(v: dict) -> None:
    i = v["inputs"]
    clear = pin_block_format3(i["pin"], i["pan"], bytes.fromhex(i["fill_digits"]))
    assert clear.hex().upper() == v["expected"]
    pik, zone = (
        bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"),
        bytes.fromhex("89ABCDEF0123456776543210FEDCBA98"),
    )
    out = translate_pin_block_to_format0(pik, zone, encrypt_pin_block(pik, clear), pan=i["pan"], src_format=3)
    assert decrypt_pin(zone, out, i["pan"]) == i["pin"]
    # Strict as ever: the same block read as another format, or for another PAN, is refused.
    with pytest.raises(PinBlockError):
        translate_pin_block_to_format0(pik, zone, encrypt_pin_block(pik, clear), pan=i["pan"], src_format=1)
    with pytest.raises(PinBlockError):
        translate_pin_block_to_format0(
            pik, zone, encrypt_pin_block(pik, clear), pan="6212142000000000012", src_format=3
        )


def test_profiles_select_compiled_codec_variants() -> None:
    assert profiles.get("cup").codec is CODEC and profiles.get("x919").codec is CODEC
    gz = profiles.get("gz-bill").codec
    assert gz is not CODEC and gz.fields[48].kind.value == "ans"
    totals = SettlementTotals().format()
    msg = Message(
        "0500", {11: "000001", 41: "10000001", 42: "898100012340001", 48: totals, 60: "00000001201"}
    )
    ascii_body, bcd_body = gz.encode(msg), CODEC.encode(msg)
    assert len(ascii_body) == len(bcd_body) + 31  # 62 ASCII bytes instead of 31 BCD bytes
    assert gz.decode(ascii_body) == msg
    with pytest.raises(CodecError):  # the baseline cannot read the ASCII variant
        assert CODEC.decode(ascii_body) == msg


def test_bill_payment_letters_in_48_only_in_the_ascii_profile() -> None:
    msg = Message("0200", {3: "190000", 4: "000000000003", 11: "000001", 25: "81", 41: "52010009",
                           42: "898520154110004", 48: "KP77SG0C26323520140909356184#", 49: "156",
                           60: "2218111400000060"})  # fmt: skip
    body = profiles.get("gz-bill").codec.encode(msg)
    assert profiles.get("gz-bill").codec.decode(body)[48] == msg[48]
    with pytest.raises(CodecError):
        CODEC.encode(msg)


def test_f60_private_tail_only_where_the_profile_declares_it() -> None:
    s = "2218111400000060"  # 60.1 22, 60.2 181114, 60.3 000, then 5 digits (public bill-payment client)
    with pytest.raises(CodecError):
        Field60.parse(s)
    f = Field60.parse(s, profiles.get("gz-bill").f60_private)
    assert (f.type_code, f.batch_no, f.nmic, f.private) == ("22", "181114", "000", "00060")
    assert f.format() == s
    assert Field60.parse("00000001003", profiles.get("gz-bill").f60_private).private == ""


def test_bill_payment_codes_identify_as_sale_and_void() -> None:
    gz = profiles.get("gz-bill")
    pay = Message("0200", {3: "190000", 25: "81", 60: "22000001000"})
    revoke = Message("0200", {3: "280000", 25: "81", 60: "23000001000"})
    assert identify(pay) is None and identify(revoke) is None
    assert identify(pay, gz.aliases).name == "sale"  # type: ignore[union-attr]
    assert identify(revoke, gz.aliases).name == "void"  # type: ignore[union-attr]
    out = gz.outbound(Message("0200", {3: "000000", 25: "00", 60: "2200000100050"}))
    assert (out.text(3), out.text(25), out.text(60)) == ("190000", "81", "2200000100000060")
    assert gz.outbound(out) == out  # idempotent


def test_a_profile_may_not_override_the_fields_up_to_the_tid() -> None:
    with pytest.raises(ValueError, match="field 41"):
        profiles.Profile("bad", "坏", "bad", fields={41: n(41, 8)})
    with pytest.raises(ValueError):
        profiles.Profile("bad", "坏", "bad", mac="md5")
    with pytest.raises(ValueError):
        profiles.Profile("bad", "坏", "bad", pin_format=2)
    assert FIELDS[41].number == 41


BILL = Message("0200", {2: "6212142000000000012", 3: "190000", 4: "000000000003", 11: "000001", 25: "81",
                        41: "52010009", 42: "898520154110004", 48: "KP77SG0C26323520140909356184#", 49: "156",
                        60: "2218111400000060"})  # fmt: skip


def test_decode_cli_with_a_profile() -> None:
    from typer.testing import CliRunner

    from posgate.cli import app

    runner = CliRunner()
    hexed = profiles.get("gz-bill").codec.encode(BILL).hex()
    r = runner.invoke(app, ["decode", "--profile", "gz-bill", "--json", hexed])
    assert r.exit_code == 0, r.output
    rows = {row["path"]: row for row in json.loads(r.output)["fields"]}
    assert rows["48"]["value"] == BILL[48] and rows["60.4+"]["value"] == "00060"
    assert "Sale" in rows["mti"]["name"]  # 190000 / 81 read through the profile's aliases
    assert rows["2"]["value"] == "621214*********0012"  # masked as ever
    assert runner.invoke(app, ["decode", "--profile", "cup", hexed]).exit_code == 2  # the baseline cannot read it
    found = json.loads(runner.invoke(app, ["decode", "--json", hexed]).output)  # without --profile: found
    assert found["profile"] == "gz-bill" and "the baseline cannot read field 48" in found["profile_reason"]
    bad = runner.invoke(app, ["decode", "--profile", "nope", hexed])
    assert bad.exit_code == 2 and "cup, x919, gz-bill" in bad.output
