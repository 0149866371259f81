"""One table of field encodings (docs/dialect.md 1.5 and 2), each row tested in both directions."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from posgate.dialect.cup import CODEC
from posgate.iso8583 import TLV, FieldValue, Message


def h(text: str) -> bytes:
    return bytes.fromhex(re.sub(r"\s+", "", text))


@dataclass(frozen=True)
class Row:
    what: str
    number: int
    value: FieldValue
    wire: bytes  # the field as sent: length prefix (if any) + data
    decoded: FieldValue | None = None  # what decoding ``wire`` gives, when not ``value`` itself


TRACK2 = "6217857600008050804=23082201000082300"

ROWS = [
    # n fixed: packed BCD, right-justified, odd lengths get a leading 0 nibble.
    Row("n6 even", 11, "000105", h("00 01 05")),
    Row("n12 amount", 4, "000000000001", h("00 00 00 00 00 01")),
    Row("n16 field 53", 53, "2600000000000000", h("26 00 00 00 00 00 00 00")),
    Row("n2", 25, "00", h("00")),
    Row("n3 field 23 right-justified", 23, "001", h("00 01")),
    Row("n3 field 23 right-justified, all digits", 23, "123", h("01 23")),
    # Field 22 is the CUP exception: left-justified, trailing 0 nibble.
    Row("n3 field 22 left-justified", 22, "021", h("02 10")),
    Row("n3 field 22 contactless with PIN", 22, "071", h("07 10")),
    # n LLVAR / LLLVAR: length in digits, left-justified, trailing 0 nibble when odd.
    Row("LLVAR n odd (PAN 19)", 2, "6217857600008050804", h("19 62 17 85 76 00 00 80 50 80 40")),
    Row("LLVAR n even", 32, "00094500", h("08 00 09 45 00")),
    Row("LLVAR n odd short", 32, "123", h("03 12 30")),
    Row("LLVAR n one digit", 32, "7", h("01 70")),
    Row("LLVAR n empty", 32, "", h("00")),
    Row("LLLVAR n field 60 sign-on", 60, "00000001003", h("0011 00 00 00 01 00 30")),
    Row("LLLVAR n field 60 sale", 60, "220000010006", h("0012 22 00 00 01 00 06")),
    Row("LLLVAR n field 61", 61, "000001000123", h("0012 00 00 01 00 01 23")),
    Row("LLLVAR n field 48 count", 48, "0012", h("0004 00 12")),
    Row("LLLVAR n field 48 long", 48, "1" * 101, h("0101") + bytes.fromhex("11" * 50 + "10")),
    # z tracks: '=' travels as nibble D; left-justified, trailing 0 nibble when odd.
    Row("LLVAR z track 2 (odd)", 35, TRACK2, h("37 6217857600008050804D23082201000082300 0")),
    Row("LLVAR z even", 35, "12=4", h("04 12 D4")),
    Row("LLLVAR z track 3", 36, "996=12", h("0006 99 6D 12")),
    Row("LLLVAR z odd", 36, "99=", h("0003 99 D0")),
    # A TDK-encrypted track (6.3; the 11.3 vector): the ciphertext's hex nibbles travel as they are,
    # its D nibbles read as '=' (as posgate.crypto.encrypt_track writes them).
    Row("LLVAR z encrypted track 2", 35, "6217857600008050804=120=490283F482=00", h("37 6217857600008050804D120D490283F482D00 0")),
    Row("LLLVAR z encrypted nibbles A-F", 36, "ABCEF=0", h("0007 AB CE FD 00")),
    # an / ans fixed: ASCII, space-padded on the right.
    Row("an12 exact", 37, "180418132805", b"180418132805"),
    Row("an12 padded", 37, "ABC", b"ABC         ", decoded="ABC         "),
    Row("an6", 38, "A1B2C3", b"A1B2C3"),
    Row("an2 response code", 39, "00", b"00"),
    Row("an3 currency", 49, "156", b"156"),
    Row("ans8 terminal id", 41, "10400067", b"10400067"),
    Row("ans15 merchant id", 42, "SpecRoute121206", b"SpecRoute121206"),
    Row("ans15 padded", 42, "8471", b"8471           ", decoded="8471           "),
    # an / ans variable: length in characters.
    Row("LLVAR ans field 44", 44, "03080000   48020000   ", h("22") + b"03080000   48020000   "),
    Row("LLLVAR an field 54 balance", 54, "1002156C000000012345", h("0020") + b"1002156C000000012345"),
    Row("LLLVAR ans field 63", 63, "01 ", h("0003 30 31 20")),
    Row("LLLVAR ans empty", 63, "", h("0000")),
    # Scan-to-pay (docs/decisions.md Q1): the payment code in 59 as tag A3 + 3-digit length + code.
    Row("LLLVAR ans field 59 QR code", 59, "A30196288000000000000011", h("0024") + b"A30196288000000000000011"),
    # b fixed: raw bytes.
    Row("b64 PIN block", 52, h("7D6A7408DFE2E9E5"), h("7D6A7408DFE2E9E5")),
    Row("b64 MAC (ASCII hex)", 64, b"D37CEFE6", b"D37CEFE6"),
    # b LLLVAR: length in bytes.
    Row("LLLVAR b field 62 (60 bytes)", 62, bytes(range(60)), h("0060") + bytes(range(60))),
    Row("LLLVAR b field 62 (100 bytes)", 62, b"\xff" * 100, h("0100") + b"\xff" * 100),
    Row("LLLVAR b field 62 (999 bytes, the maximum)", 62, b"\x01" * 999, h("0999") + b"\x01" * 999),
    Row("LLLVAR b TLV field 55", 55, TLV([("9F26", "9C0A057796D091E3"), ("9F27", "80")]), h("0015 9F26 08 9C0A057796D091E3 9F27 01 80")),
    Row("LLLVAR b TLV empty", 55, TLV(), h("0000")),
]


def _message(number: int, wire: bytes) -> bytes:
    bitmap = (1 << (64 - number)).to_bytes(8, "big")
    return h("0200") + bitmap + wire


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.what)
def test_encode(row: Row) -> None:
    assert CODEC.encode_field(row.number, row.value) == row.wire
    assert CODEC.encode(Message("0200", {row.number: row.value})) == _message(row.number, row.wire)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.what)
def test_decode(row: Row) -> None:
    expected = row.value if row.decoded is None else row.decoded
    msg = CODEC.decode(_message(row.number, row.wire))
    assert list(msg) == [row.number]
    assert msg[row.number] == expected
    assert type(msg[row.number]) is type(expected)
    # ...and what was decoded encodes back to the same wire bytes.
    assert CODEC.encode_field(row.number, msg[row.number]) == row.wire


def test_the_table_covers_every_kind_of_field() -> None:
    from posgate.dialect.cup import FIELDS

    kinds = {(FIELDS[r.number].kind, FIELDS[r.number].prefix, FIELDS[r.number].max_len % 2) for r in ROWS}
    every = {(s.kind, s.prefix, s.max_len % 2) for s in FIELDS.values()}
    assert every <= kinds
