"""Every way a message can be wrong names the field and the byte offset, and never echoes card data.

Offsets in the real sale (11.1(d)) body, used below: F2 length at 10, data 11-20; F3 21; F11 30;
F22 40-41; F23 42-43; F35 length at 46, data 47-65; F41 66; F42 74-88; F52 92-99; F55 length
108-109, data 110-254; F60 length 255-256, data 257-262; F64 263-270; end 271.
"""

from __future__ import annotations

import pytest

from posgate.dialect.cup import CODEC
from posgate.iso8583 import CodecError, Message

from . import vectors as v

SALE = v.SALE_D
CARD_DATA = [v.SALE_PAN, v.SALE_TRACK, v.SALE_TRACK_DISCRETIONARY, v.SALE_PIN_BLOCK, v.SALE_PIN_BLOCK.lower()]


def patched(body: bytes, offset: int, new: str) -> bytes:
    raw = bytes.fromhex(new)
    return body[:offset] + raw + body[offset + len(raw) :]


def decode_error(body: bytes) -> CodecError:
    with pytest.raises(CodecError) as info:
        CODEC.decode(body)
    return info.value


def test_the_offsets_above_are_those_of_the_sale() -> None:
    assert len(SALE) == 271
    assert SALE[10] == 0x19 and SALE[46] == 0x37 and SALE[108:110] == b"\x01\x45" and SALE[255:257] == b"\x00\x12"
    assert SALE[66:74] == b"92336787" and SALE[263:] == b"D37CEFE6"


# ---------------------------------------------------------------- decoding
DECODE_ERRORS = [
    # (what, body, field, offset)
    ("empty", b"", "mti", 0),
    ("shorter than MTI + bitmap", SALE[:9], "mti", 0),
    ("MTI not BCD", patched(SALE, 0, "0A"), "mti", 0),
    ("truncated in the LL length's data (F2)", SALE[:15], "2", 11),
    ("truncated inside a fixed n field (F11)", SALE[:31], "11", 30),
    ("truncated before the track's data (F35)", SALE[:47], "35", 47),
    ("truncated inside fixed text (F42)", SALE[:80], "42", 74),
    ("truncated inside the LLL length (F55)", SALE[:109], "55", 108),
    ("truncated inside the TLV data (F55)", SALE[:200], "55", 110),
    ("truncated inside the MAC (F64)", SALE[:-1], "64", 263),
    ("trailing bytes", SALE + b"\x00", "body", 271),
    ("secondary bitmap", patched(SALE, 2, "F03C06C020C09A11"), "bitmap", 2),
    ("undefined field bit 5", patched(SALE, 2, "783C06C020C09A11"), "5", 2),
    ("undefined field bits 5 and 7: the first is named", patched(SALE, 2, "7A3C06C020C09A11"), "5", 2),
    ("undefined field bit 16", patched(SALE, 2, "703D06C020C09A11"), "16", 2),
    ("non-BCD digit in F11", patched(SALE, 30, "0A"), "11", 30),
    ("non-BCD digit in F4", patched(SALE, 29, "0F"), "4", 24),
    ("non-BCD digit in the PAN", patched(SALE, 12, "1B"), "2", 11),
    ("non-BCD nibble in F60", patched(SALE, 258, "E0"), "60", 257),
    ("bad pad nibble after left-justified F22", patched(SALE, 41, "11"), "22", 40),
    ("bad pad nibble before right-justified F23", patched(SALE, 42, "10"), "23", 42),
    ("bad pad nibble after an odd LLVAR (F2)", patched(SALE, 20, "41"), "2", 11),
    ("bad pad nibble after an odd track (F35)", patched(SALE, 65, "01"), "35", 47),
    ("LL length over the maximum (F2 n..19 says 20)", patched(SALE, 10, "20"), "2", 10),
    ("LL length not BCD (F35)", patched(SALE, 46, "3A"), "35", 46),
    ("LLL first byte over 09 (F55)", patched(SALE, 108, "10"), "55", 108),
    ("LLL second byte not BCD (F55)", patched(SALE, 109, "4F"), "55", 108),
    ("LLL length over the maximum (F60 n...17 says 18)", patched(SALE, 255, "0018"), "60", 255),
    ("non-ASCII in fixed text (F41)", patched(SALE, 70, "C8"), "41", 66),
]


@pytest.mark.parametrize(("what", "body", "field", "offset"), DECODE_ERRORS, ids=[c[0] for c in DECODE_ERRORS])
def test_decode_errors_name_the_field_and_offset(what: str, body: bytes, field: str, offset: int) -> None:
    e = decode_error(body)
    assert (e.field, e.offset) == (field, offset)
    assert e.expected
    assert str(e).startswith(f"field {field} at byte {offset}: expected ")


def _tlv_message(tlv: bytes) -> bytes:
    # Field 55 is LLL: MTI (2) + bitmap (8) + length (2), so its data starts at byte 12;
    # in the rows below 9F27 01 80 takes bytes 12-15, so a following 9F26 has its length at 18.
    return CODEC.encode(Message("0200", {55: tlv}))


TLV_ERRORS = [
    # (what, field 55 bytes, error field, offset in the body)
    ("value shorter than its length", "9F2701 80 9F2608 9C0A0577", "55.9F26", 19),
    ("long-form length of 5 bytes", "9F2701 80 9F2685 0000000001", "55.9F26", 18),
    ("long-form length running off the end", "9F2682 01", "55.9F26", 14),
    ("length missing", "9F2701 80 9F26", "55.9F26", 18),
    ("multi-byte tag cut short", "9F2701 80 9F", "55", 17),
    ("error inside a constructed tag", "70 07 9F2701 80 9F2608", "55.70.9F26", 21),
]


@pytest.mark.parametrize(("what", "tlv", "field", "offset"), TLV_ERRORS, ids=[c[0] for c in TLV_ERRORS])
def test_tlv_errors_name_the_tag_path_and_absolute_offset(what: str, tlv: str, field: str, offset: int) -> None:
    e = decode_error(_tlv_message(bytes.fromhex(tlv.replace(" ", ""))))
    assert (e.field, e.offset) == (field, offset)


def test_the_sale_with_a_broken_arqc_length_names_55_9F26() -> None:
    # In the real sale, 9F26 (the ARQC) is the first tag of field 55: tag at 110, length at 112.
    assert SALE[110:113] == bytes.fromhex("9F2608")
    for length in ("90", "84", "80"):  # BER long form of 16, 4 and 0 length bytes: not 1..3
        e = decode_error(patched(SALE, 112, length))
        assert (e.field, e.offset) == ("55.9F26", 112)


def _every_decode_error() -> list[CodecError]:
    errors = [decode_error(body) for _, body, _, _ in DECODE_ERRORS]
    for cut in range(len(SALE)):
        errors.append(decode_error(SALE[:cut]))
    for i in range(10, len(SALE)):  # every byte replaced by a non-BCD, non-ASCII value
        try:
            CODEC.decode(SALE[:i] + b"\xfa" + SALE[i + 1 :])
        except CodecError as e:
            errors.append(e)
    return errors


def test_decode_errors_never_contain_card_data() -> None:
    errors = _every_decode_error()
    assert len(errors) > 300
    for e in errors:
        for text in (str(e), repr(e), e.expected, e.field):
            for secret in CARD_DATA:
                assert secret not in text


def test_truncation_anywhere_is_an_error_at_or_before_the_cut() -> None:
    for cut in range(len(SALE)):
        e = decode_error(SALE[:cut])
        assert e.offset is not None and e.offset <= cut


# ---------------------------------------------------------------- encoding
ENCODE_ERRORS = [
    # (what, mti, fields, error field)
    ("n6 too short", "0200", {11: "12345"}, "11"),
    ("n6 too long", "0200", {11: "1234567"}, "11"),
    ("n3 too short (field 22)", "0200", {22: "07"}, "22"),
    ("n with a letter", "0200", {11: "12345a"}, "11"),
    ("n with a space", "0200", {4: "00000000001 "}, "4"),
    ("n with non-ASCII digits", "0200", {11: "١٢٣٤٥٦"}, "11"),
    ("n given as int", "0200", {11: 105}, "11"),
    ("LLVAR n over the maximum", "0200", {2: "1" * 20}, "2"),
    ("LLVAR n with a separator", "0200", {2: "6217 8576"}, "2"),
    ("LLVAR n with non-ASCII digits", "0200", {32: "٠٩٤٥"}, "32"),
    ("LLLVAR n with a letter (field 60)", "0200", {60: "00000001A03"}, "60"),
    ("track with D for the separator (it is =)", "0200", {35: "6217857600008050804D2308"}, "35"),
    ("track with lower-case hex", "0200", {35: "6217857600008050804=120=490283f482=00"}, "35"),
    ("track with a letter beyond F", "0200", {35: "6217857600008050804=G"}, "35"),
    ("track with a space", "0200", {36: "996 12"}, "36"),
    ("track over the maximum", "0200", {35: "1" * 38}, "35"),
    ("fixed text too long", "0200", {41: "123456789"}, "41"),
    ("fixed text non-ASCII", "0200", {41: "终端号码"}, "41"),
    ("variable text non-ASCII", "0200", {63: "操作员"}, "63"),
    ("variable text over the maximum", "0200", {44: "x" * 26}, "44"),
    ("b fixed too short", "0200", {52: b"\x00" * 7}, "52"),
    ("b fixed as hex text", "0200", {52: "7D6A7408DFE2E9E5"}, "52"),
    ("LLLVAR b over the maximum", "0200", {62: b"\x00" * 1000}, "62"),
    ("TLV field over the maximum", "0200", {55: b"\x00" * 256}, "55"),
    ("field not in the dialect", "0200", {5: "000000000001"}, "5"),
    ("field 1 (secondary bitmap)", "0200", {1: b"\x00" * 8}, "1"),
    ("field 65", "0200", {65: "x"}, "65"),
    ("MTI of 3 digits", "200", {11: "000001"}, "mti"),
    ("MTI with a letter", "02a0", {11: "000001"}, "mti"),
    ("MTI in non-ASCII digits", "٠٢٠٠", {11: "000001"}, "mti"),
]


@pytest.mark.parametrize(("what", "mti", "fields", "field"), ENCODE_ERRORS, ids=[c[0] for c in ENCODE_ERRORS])
def test_encode_errors_name_the_field(what: str, mti: str, fields: dict[int, object], field: str) -> None:
    # The bad field alone, then among valid ones (the fast path sees whole messages).
    full = {**{11: "000001", 41: "12345678", 42: "123456789012345", 60: "22000001000"}, **fields}
    for values in (fields, full):
        with pytest.raises(CodecError) as info:
            CODEC.encode(Message(mti, values))  # type: ignore[arg-type]
        assert info.value.field == field
        assert info.value.offset is None


def test_encode_errors_never_contain_the_value() -> None:
    for fields in ({2: v.SALE_PAN + "X"}, {35: v.SALE_TRACK + "X"}, {52: bytes.fromhex(v.SALE_PIN_BLOCK) + b"\x00"}, {2: v.SALE_PAN + "0"}):
        with pytest.raises(CodecError) as info:
            CODEC.encode(Message("0200", fields))
        for secret in CARD_DATA:
            assert secret not in str(info.value)


def test_a_mac_function_must_return_8_bytes() -> None:
    msg = CODEC.decode(SALE)
    with pytest.raises(CodecError) as info:
        CODEC.encode(msg, mac=lambda mab: b"1234")
    assert info.value.field == "64"
