"""Field 55 shapes (issue 12): a value whose tag and length bytes match a learnt shape is sliced
by generated code; it must decode exactly as the item-by-item parse does, and a value that
differs in any tag or length byte must not be taken for the shape."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posgate.iso8583 import tlv
from posgate.iso8583.errors import CodecError
from posgate.iso8583.tlv import TLV, _decode_careful

TAGS = ["9F26", "9F27", "9F10", "9F37", "9F36", "95", "9A", "9C", "9F02", "5F2A", "82", "9F1A", "84", "5F34"]

items = st.lists(st.tuples(st.sampled_from(TAGS), st.binary(max_size=20)), min_size=1, max_size=12)


def _careful(raw: bytes) -> tuple:
    return _decode_careful(raw, "55", 0)


@settings(max_examples=150, deadline=None)
@given(items, st.data())
def test_a_learnt_shape_decodes_as_the_item_by_item_parse(its, data) -> None:
    raw = TLV(its).raw
    first = TLV.decode(raw)  # teaches the shape (when there is room)
    assert first.items == _careful(raw)
    # Same shape, other values: every value byte replaced.
    other = bytearray(raw)
    p = 0
    for _tag, value in first.items:
        p += len(_tag) // 2 + 1
        for i in range(len(value)):
            other[p + i] = data.draw(st.integers(0, 255))
        p += len(value)
    again = TLV.decode(bytes(other))
    assert again.items == _careful(bytes(other)) and again.raw == bytes(other)


@settings(max_examples=150, deadline=None)
@given(items, st.data())
def test_a_changed_tag_or_length_byte_is_not_taken_for_the_shape(its, data) -> None:
    raw = TLV(its).raw
    TLV.decode(raw)
    headers = []
    p = 0
    for tag, value in TLV.decode(raw).items:
        n = len(tag) // 2 + 1
        headers.extend(range(p, p + n))
        p += n + len(value)
    i = data.draw(st.sampled_from(headers))
    bad = bytearray(raw)
    bad[i] = (bad[i] + data.draw(st.integers(1, 255))) % 256
    bad_bytes = bytes(bad)
    try:
        expected = _careful(bad_bytes)
    except CodecError:
        with pytest.raises(CodecError):
            TLV.decode(bad_bytes)
    else:
        assert TLV.decode(bad_bytes).items == expected


def test_shapes_are_bounded(monkeypatch) -> None:
    monkeypatch.setattr(tlv, "_SHAPES", {})
    monkeypatch.setattr(tlv, "_shape_count", 0)
    for n in range(40):  # forty lengths of one tag: at most _SHAPES_MAX, at most _SHAPES_PER_LENGTH each
        TLV.decode(TLV([("9F10", bytes(n))]).raw)
        TLV.decode(TLV([("9F10", bytes(n)), ("95", bytes(5))]).raw)
    assert tlv._shape_count <= tlv._SHAPES_MAX
    assert all(len(s) <= tlv._SHAPES_PER_LENGTH for s in tlv._SHAPES.values())


def test_the_real_chip_sale_uses_its_shape(monkeypatch) -> None:
    from posgate.bench.codec import SALE_0200
    from posgate.dialect.cup import CODEC

    monkeypatch.setattr(tlv, "_SHAPES", {})
    monkeypatch.setattr(tlv, "_shape_count", 0)
    f55 = CODEC.decode(SALE_0200)[55]
    assert isinstance(f55, TLV)
    assert len(f55.raw) in tlv._SHAPES  # learnt from the first decode
    assert CODEC.decode(SALE_0200)[55].items == _careful(f55.raw)
