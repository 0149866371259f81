"""``posgate decode`` finds the dialect profile from the bytes (issue 10, item 4): a vector per
profile of docs/dialect-profiles.md, each written the way that profile's terminals write it
(``Profile.outbound``, its codec, its MAC), and the cases the bytes cannot settle (the PIN block
format needs the PIK; a message without MAC reads alike in every profile) reported ambiguous
and decoded with the baseline."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from posgate.cli import app
from posgate.dialect import profiles
from posgate.dialect.decode import decode_any
from posgate.dialect.detect import detect
from posgate.dialect.fields import SM4_PIN_PREFIX
from posgate.iso8583 import CodecError, Message

MAK = bytes.fromhex("0123456789ABCDEF")
runner = CliRunner()


def _sale(stan: int, extra: dict[int, Any]) -> Message:
    fields: dict[int, Any] = {
        2: "6212142000000000012", 3: "000000", 4: "000000001234", 11: f"{stan:06d}", 14: "3012", 22: "021",
        25: "00", 26: "12", 41: "10000001", 42: "898100012340001", 49: "156", 52: bytes(range(8)),
        53: "2600000000000000", 60: "22000001000" + "50",
    }  # fmt: skip
    fields.update(extra)
    return Message("0200", dict(sorted(fields.items())))


def written_by(name: str, extra: dict[int, Any] | None = None) -> bytes:
    """A sale as a terminal of profile ``name`` sends it; the STAN is chosen so that a CUP ECB
    MAC has a letter in it (8 digits alone do not show the case)."""
    p = profiles.get(name)
    for stan in range(1, 50):
        msg = p.outbound(_sale(stan, extra or {}))
        body = p.codec.encode(msg, mac=p.mac_function(MAK))
        if not body[-8:].isdigit():
            return body
    raise AssertionError("no STAN gave a MAC with a letter")


@pytest.mark.parametrize(
    ("name", "extra", "chosen", "why"),
    [
        ("x919", {}, "x919", "8 binary bytes"),
        ("easy8583", {}, "easy8583", "lower-case ASCII hex"),
        ("gz-bill", {}, "gz-bill", "field 60 has 5 digits after 60.3"),
        ("gz-bill", {48: "KP77SG0C2632352014 0909356184#"}, "gz-bill", "the baseline cannot read field 48"),
        ("cup", {62: SM4_PIN_PREFIX + bytes(16)}, "cup", "SM4 PIN block (SM016)"),
    ],
    ids=["x919", "easy8583", "gz-bill-60-tail", "gz-bill-ascii-48", "cup-sm4"],
)
def test_the_bytes_leave_no_doubt(name: str, extra: dict[int, Any], chosen: str, why: str) -> None:
    msg, found = detect(written_by(name, extra))
    assert found.profile.name == chosen and not found.ambiguous, found
    assert why in found.reason and msg.text(11)


def test_gz_bill_codes_are_named() -> None:
    _, found = detect(written_by("gz-bill"))
    assert "field 3 = 190000" in found.reason or "field 60 has 5" in found.reason


@pytest.mark.parametrize("name", ["cup", "pin1", "pin3"])
def test_the_pin_block_format_cannot_be_seen_so_cup_pin1_pin3_are_ambiguous(name: str) -> None:
    _, found = detect(written_by(name))
    assert found.profile.name == "cup" and found.candidates == ("cup", "pin1", "pin3")
    assert found.reason.startswith("ambiguous: cup, pin1, pin3") and "PIN block format" in found.reason


def test_a_sign_on_reads_alike_in_every_profile_but_gz_bill() -> None:
    body = profiles.get("cup").codec.encode(Message("0800", {11: "000001", 41: "10000001", 42: "898100012340001",
                                                             60: "00000001003", 63: "01 "}))  # fmt: skip
    _, found = detect(body)
    assert found.profile.name == "cup" and "gz-bill" not in found.candidates and len(found.candidates) == 5
    assert found.reason.startswith("ambiguous:") and "no MAC" in found.reason
    gz = profiles.get("gz-bill")
    _, found = detect(gz.codec.encode(gz.outbound(Message("0800", {11: "000001", 41: "10000001",
                                                                    42: "898100012340001", 60: "00000001003"}))))  # fmt: skip
    assert found.profile.name == "gz-bill" and not found.ambiguous


def test_no_profile_reads_it_then_the_baseline_error() -> None:
    with pytest.raises(CodecError):
        detect(bytes.fromhex("0200") + bytes.fromhex("4000000000000000"))  # field 2 flagged, absent


def test_decode_prints_the_profile_and_why_and_json_carries_them() -> None:
    hexed = written_by("easy8583").hex()
    out = runner.invoke(app, ["decode", hexed])
    assert out.exit_code == 0, out.output
    line = next(x for x in out.output.splitlines() if x.startswith("profile "))
    assert line.startswith("profile easy8583  (") and "lower-case" in line
    doc = json.loads(runner.invoke(app, ["decode", "--json", hexed]).output)
    assert doc["profile"] == "easy8583" and "lower-case" in doc["profile_reason"]
    given = json.loads(runner.invoke(app, ["decode", "--json", "--profile", "cup", hexed]).output)
    assert given["profile"] == "cup" and given["profile_reason"] == "given with --profile"
    amb = json.loads(runner.invoke(app, ["decode", "--json", written_by("pin3").hex()]).output)
    assert amb["profile"] == "cup" and amb["profile_reason"].startswith("ambiguous: cup, pin1, pin3")


def test_decode_any_with_a_frame_finds_the_profile_too() -> None:
    from posgate.framing import encode_frame

    frame = encode_frame(bytes.fromhex("6000030000"), bytes.fromhex("603100000000"), written_by("x919"))
    d = decode_any(frame.hex())
    assert d.profile.name == "x919" and d.tpdu is not None and d.length is not None
