"""Framing (docs/dialect.md 1.1, D1): a stream of frames fed whole, byte by byte and in random
splits gives the same frames; bad lengths raise FramingError; TPDU and header round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posgate.framing import (
    DEFAULT_MAX_FRAME,
    PREFIX_LEN,
    Frame,
    FrameReader,
    FramingError,
    Header,
    Tpdu,
    encode_frame,
)

from . import vectors as v

TPDU = Tpdu("60", "0003", "0000")
HEADER = Header("60", "31", "0", "0", "310003")

FRAMES = [
    Frame(v.SIGN_ON_A[2:7], v.SIGN_ON_A[7:13], v.SIGN_ON_A[13:]),
    Frame(v.SIGN_ON_B[2:7], v.SIGN_ON_B[7:13], v.SIGN_ON_B[13:]),
    Frame(TPDU.encode(), HEADER.encode(), v.SALE_D),
    Frame(TPDU.swapped().encode(), HEADER.with_requirement("3").encode(), v.SIGN_ON_REPLY_0810),
]
STREAM = b"".join(encode_frame(f.tpdu, f.header, f.body) for f in FRAMES)


def test_the_stream_is_the_frames_back_to_back() -> None:
    assert STREAM.startswith(v.SIGN_ON_A + v.SIGN_ON_B)
    assert len(STREAM) == sum(2 + PREFIX_LEN + len(f.body) for f in FRAMES)


def test_fed_all_at_once() -> None:
    reader = FrameReader()
    assert reader.feed(STREAM) == FRAMES
    assert reader.pending == 0


def test_fed_byte_by_byte() -> None:
    reader = FrameReader()
    got: list[Frame] = []
    ends = []
    for i in range(len(STREAM)):
        new = reader.feed(STREAM[i : i + 1])
        got += new
        if new:
            ends.append(i + 1)
    assert got == FRAMES
    # Each frame comes out exactly when its last byte arrives, not before.
    expected_ends, at = [], 0
    for f in FRAMES:
        at += 2 + PREFIX_LEN + len(f.body)
        expected_ends.append(at)
    assert ends == expected_ends


@settings(max_examples=60)
@given(st.lists(st.integers(0, len(STREAM)), max_size=30))
def test_fed_in_random_splits(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(STREAM)]
    reader = FrameReader()
    got: list[Frame] = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        got += reader.feed(STREAM[a:b])
    assert got == FRAMES
    assert reader.pending == 0


@settings(max_examples=40)
@given(st.integers(1, len(v.SIGN_ON_A) - 1))
def test_a_trailing_partial_frame_waits_for_the_rest(keep: int) -> None:
    reader = FrameReader()
    assert reader.feed(STREAM + v.SIGN_ON_A[:keep]) == FRAMES
    assert reader.pending == keep
    assert reader.feed(v.SIGN_ON_A[keep:]) == [FRAMES[0]]
    assert reader.pending == 0


def test_frame_parts() -> None:
    f = FrameReader().feed(v.SIGN_ON_A)[0]
    assert f.tpdu == bytes.fromhex("6000030000")
    assert f.header == bytes.fromhex("602100000000")
    assert f.body == v.SIGN_ON_A[13:] and f.body[:2] == b"\x08\x00"
    assert f.requirement == "0"
    assert FRAMES[3].requirement == "3"


@pytest.mark.parametrize("size", [0, 1, 11, PREFIX_LEN + 9])
def test_a_length_too_short_for_tpdu_header_and_message_is_an_error(size: int) -> None:
    reader = FrameReader()
    with pytest.raises(FramingError, match="too short"):
        reader.feed(size.to_bytes(2, "big") + bytes(size))
    assert reader.pending == 0  # the stream lost sync: nothing is kept


def test_the_shortest_acceptable_frame() -> None:
    body = bytes.fromhex("0800") + bytes(8)
    frames = FrameReader().feed(encode_frame(TPDU.encode(), HEADER.encode(), body))
    assert frames == [Frame(TPDU.encode(), HEADER.encode(), body)]


@pytest.mark.parametrize(("max_size", "size"), [(DEFAULT_MAX_FRAME, DEFAULT_MAX_FRAME + 1), (DEFAULT_MAX_FRAME, 0xFFFF), (100, 101)])
def test_a_length_over_the_maximum_is_an_error(max_size: int, size: int) -> None:
    reader = FrameReader(max_size)
    with pytest.raises(FramingError, match="exceeds the maximum"):
        reader.feed(size.to_bytes(2, "big"))  # refused on the length alone, before any data arrives
    assert reader.pending == 0


def test_a_bad_length_after_good_frames_hands_back_the_frames_then_raises() -> None:
    # Whole frames before stray bytes are answered first (they may be money); the error is kept
    # for the caller, who closes after answering, and the next feed raises it.
    reader = FrameReader()
    frames = reader.feed(v.SIGN_ON_A + v.SIGN_ON_B + b"\x00\x05")
    assert [f.body for f in frames] == [v.SIGN_ON_A[13:], v.SIGN_ON_B[13:]]
    assert reader.error is not None and "stray bytes after 2 whole frames" in str(reader.error)
    assert reader.pending == 0
    with pytest.raises(FramingError):
        reader.feed(v.SIGN_ON_A)


def test_a_bad_length_first_raises_at_once() -> None:
    reader = FrameReader()
    with pytest.raises(FramingError):
        reader.feed(b"\x00\x05" + v.SIGN_ON_A)


def test_encode_frame_checks_its_parts() -> None:
    body = v.SALE_D
    assert encode_frame(TPDU.encode(), HEADER.encode(), body)[:2] == (PREFIX_LEN + len(body)).to_bytes(2, "big")
    with pytest.raises(FramingError):
        encode_frame(b"\x60\x00\x03\x00", HEADER.encode(), body)
    with pytest.raises(FramingError):
        encode_frame(TPDU.encode(), HEADER.encode()[:5], body)
    with pytest.raises(FramingError, match="exceeds"):
        encode_frame(TPDU.encode(), HEADER.encode(), bytes(DEFAULT_MAX_FRAME))
    with pytest.raises(FramingError, match="exceeds"):
        encode_frame(TPDU.encode(), HEADER.encode(), body, max_size=100)


# ---------------------------------------------------------------- TPDU and header
def test_tpdu_parse_encode_and_swap() -> None:
    t = Tpdu.parse(bytes.fromhex("6000009733"))
    assert (t.id, t.destination, t.source) == ("60", "0000", "9733")
    assert t.encode() == bytes.fromhex("6000009733")
    s = t.swapped()
    assert (s.destination, s.source) == ("9733", "0000")
    assert s.encode() == bytes.fromhex("6097330000")
    assert s.swapped() == t
    assert Tpdu.from_hex("6000030000") == Tpdu() == TPDU
    assert str(Tpdu.from_hex("6005810000")) == "6005810000"


@pytest.mark.parametrize("raw", ["60000300", "600003000000"])
def test_tpdu_parse_rejects(raw: str) -> None:
    with pytest.raises(FramingError):
        Tpdu.parse(bytes.fromhex(raw))


@pytest.mark.parametrize("text", ["600003000", "60000300zz", ""])
def test_tpdu_from_hex_rejects(text: str) -> None:
    with pytest.raises(FramingError):
        Tpdu.from_hex(text)


def test_header_parse_encode_and_requirement() -> None:
    hd = Header.parse(bytes.fromhex("613100000000"))
    assert (hd.category, hd.version, hd.status, hd.requirement, hd.sub_version) == ("61", "31", "0", "0", "000000")
    assert hd.encode() == bytes.fromhex("613100000000")
    again = hd.with_requirement("3")
    assert again.requirement == "3" and str(again) == "613103000000"
    assert again.encode() == bytes.fromhex("613103000000")
    assert (again.category, again.version, again.status, again.sub_version) == (hd.category, hd.version, hd.status, hd.sub_version)
    assert Header.from_hex("603110310003") == Header("60", "31", "1", "0", "310003")  # LY's test-mode header
    assert Header.parse(Header().encode()) == Header()


@pytest.mark.parametrize("raw", ["6031000000", "60310000000000"])
def test_header_parse_rejects(raw: str) -> None:
    with pytest.raises(FramingError):
        Header.parse(bytes.fromhex(raw))


@pytest.mark.parametrize(
    ("raw", "variant"),
    [
        ("603100000000", "BCD"),
        ("60310031110E", "hex sub-version"),  # a real 0810 header (docs/field-dialects.md)
        ("6031000000AB", "hex sub-version"),
        ("6A3100000000", "hex category"),
    ],
)
def test_header_parse_reads_hex_digits_and_names_the_variant(raw: str, variant: str) -> None:
    h = Header.parse(bytes.fromhex(raw))
    assert h.variant() == variant
    assert str(h) == raw and h.encode() == bytes.fromhex(raw)  # echoed exactly as received


@pytest.mark.parametrize(
    ("raw", "variant"), [("6000030000", "BCD"), ("6A00030000", "id 6A"), ("6000AB0000", "hex destination")]
)
def test_tpdu_parse_reads_any_address_and_names_the_variant(raw: str, variant: str) -> None:
    t = Tpdu.parse(bytes.fromhex(raw))
    assert t.variant() == variant
    assert t.encode() == bytes.fromhex(raw)


@given(st.text("0123456789", min_size=10, max_size=10), st.text("0123456789", min_size=12, max_size=12))
@settings(max_examples=50)
def test_tpdu_and_header_round_trip(tpdu: str, header: str) -> None:
    t = Tpdu.from_hex(tpdu)
    assert str(t) == tpdu and Tpdu.parse(t.encode()) == t and t.swapped().swapped() == t
    hd = Header.from_hex(header)
    assert str(hd) == header and Header.parse(hd.encode()) == hd
    assert hd.with_requirement(header[5]) == hd


def test_the_stray_bytes_are_kept_for_a_relay() -> None:
    reader = FrameReader()
    reader.feed(v.SIGN_ON_A + b"\x00\x05junk")
    assert reader.error is not None and reader.error.rest == b"\x00\x05junk"
