"""Vectors of the host-to-host dialect (ISO 8583:1987 layout, BCD like jPOS ISO87BPackager)."""

from __future__ import annotations

import pytest

from posgate.dialect import network as h2h
from posgate.iso8583 import CodecError, Message

ECHO = "0800" "8220000000000000" "0400000000000000" "1203123456" "000002" "0301"
SALE = ("0200" "f220000108c08000" "0000000010000000" "19" "62121420000000000120" "000000" "000000010000"
        "1203123456" "000001" "08" "00049990" + b"334812000001".hex() + b"10000001".hex()
        + b"898100012340001".hex() + b"156".hex() + "08" "00010000")


def test_echo_vector_uses_the_secondary_bitmap_for_field_70():
    msg = Message("0800", {7: "1203123456", 11: "000002", 70: "301"})
    assert h2h.encode(msg).hex() == ECHO.lower()
    assert dict(h2h.decode(bytes.fromhex(ECHO))) == {7: "1203123456", 11: "000002", 70: "301"}


def test_sale_vector_with_fields_32_37_and_100():
    fields = {2: "6212142000000000012", 3: "000000", 4: "000000010000", 7: "1203123456", 11: "000001",
              32: "00049990", 37: "334812000001", 41: "10000001", 42: "898100012340001", 49: "156", 100: "00010000"}
    raw = h2h.encode(Message("0200", fields))
    assert raw.hex() == SALE.lower()
    assert dict(h2h.decode(raw)) == fields


def test_primary_only_message_has_no_secondary_bitmap():
    raw = h2h.encode(Message("0810", {11: "000001", 39: "00"}))
    assert raw[2] & 0x80 == 0 and len(raw) == 2 + 8 + 3 + 2


@pytest.mark.parametrize("bad", [
    "0800" "8220000000000000",  # bit 1 set, no secondary bitmap
    "0800" "8220000000000000" "8000000000000000" "1203123456" "000002",  # bit 65
    "0800" "8220000000000000" "0000000000000002" "1203123456" "000002",  # field 127 not in the dialect
])
def test_bad_secondary_bitmaps_are_codec_errors(bad):
    with pytest.raises(CodecError):
        h2h.decode(bytes.fromhex(bad))


def test_the_terminal_dialect_still_refuses_a_secondary_bitmap():
    from posgate.dialect.cup import CODEC

    with pytest.raises(CodecError, match="secondary"):
        CODEC.decode(bytes.fromhex("0800" "8000000000000000" "0000000000000000"))


def test_kind_table_round_trips_and_field_90():
    for kind, (mti, pc, cond) in h2h.KINDS.items():
        assert h2h.kind_of(mti, pc, cond) == kind
        assert h2h.kind_of(mti[:3] + "1", pc, cond) == kind  # a repeat is the same message
    f90 = h2h.original_data("0200", "000123", "1203123456", "00049990")
    assert len(f90) == 42 and h2h.parse_original_data(f90) == ("0200", "000123", "1203123456", "49990")
