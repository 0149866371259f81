"""pyiso8583 as an independent oracle: for every field, the same bytes out of both codecs, and
each decodes the other's output to the same values.

The pyiso8583 spec (``posgate.bench.pyiso_spec``) is derived from our table, so what this
checks is our byte work (BCD packing, padding, justification, length prefixes) against
pyiso8583's; the table itself is held to the real messages of section 11 below and in
``test_real_messages.py``. Every field of the CUP table is expressible in pyiso8583 and none
is excluded: for ``z`` tracks pyiso8583 carries the nibbles as hex, so its values use the
nibble ``D`` where ours use ``=`` (translated at the boundary, same bytes on the wire).
"""

from __future__ import annotations

import iso8583
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posgate.bench.pyiso_spec import CUP_SPEC, from_pyiso, to_pyiso
from posgate.dialect.cup import CODEC, FIELDS
from posgate.iso8583 import Message

from . import strategies as s
from . import vectors as v


def pyiso_encode(msg: Message) -> bytes:
    raw, _ = iso8583.encode(to_pyiso(msg), CUP_SPEC)
    return bytes(raw)


def pyiso_decode(body: bytes) -> Message:
    doc, _ = iso8583.decode(body, CUP_SPEC)
    return from_pyiso(doc)


def assert_agree(msg: Message) -> None:
    ours = CODEC.encode(msg)
    theirs = pyiso_encode(msg)
    assert ours == theirs
    assert CODEC.decode(theirs) == msg
    assert pyiso_decode(ours) == msg


def test_the_spec_says_what_the_cup_rules_say() -> None:
    # Spot checks against docs/dialect.md 1.5, independent of how the spec is derived.
    assert CUP_SPEC["t"]["data_enc"] == "b" and CUP_SPEC["t"]["max_len"] == 2
    assert CUP_SPEC["p"]["data_enc"] == "b" and CUP_SPEC["p"]["max_len"] == 8
    assert CUP_SPEC["22"] | {"desc": ""} == {"data_enc": "b", "len_enc": "bcd", "len_type": 0, "max_len": 3, "len_count": "nibbles", "right_pad": "0", "desc": ""}
    assert CUP_SPEC["23"]["left_pad"] == "0" and "right_pad" not in CUP_SPEC["23"]
    assert (CUP_SPEC["2"]["len_type"], CUP_SPEC["2"]["max_len"], CUP_SPEC["2"]["right_pad"]) == (1, 19, "0")
    assert (CUP_SPEC["35"]["len_count"], CUP_SPEC["35"]["right_pad"]) == ("nibbles", "0")
    assert (CUP_SPEC["60"]["len_type"], CUP_SPEC["60"]["max_len"], CUP_SPEC["60"]["len_count"]) == (2, 17, "nibbles")
    assert (CUP_SPEC["55"]["data_enc"], CUP_SPEC["55"]["len_count"], CUP_SPEC["55"]["max_len"]) == ("b", "bytes", 255)
    assert (CUP_SPEC["41"]["data_enc"], CUP_SPEC["41"]["len_type"], CUP_SPEC["41"]["max_len"]) == ("ascii", 0, 8)
    assert (CUP_SPEC["63"]["data_enc"], CUP_SPEC["63"]["len_type"], CUP_SPEC["63"]["len_enc"]) == ("ascii", 2, "bcd")
    assert set(CUP_SPEC) == {"h", "t", "p", "1"} | {str(n) for n in FIELDS}


@pytest.mark.parametrize("body", v.BODIES, ids=range(len(v.BODIES)))
def test_pyiso8583_reads_the_real_messages_as_we_do(body: bytes) -> None:
    msg = CODEC.decode(body)
    assert pyiso_decode(body) == msg
    assert pyiso_encode(msg) == body


@pytest.mark.parametrize("number", sorted(FIELDS))
@settings(max_examples=25)
@given(data=st.data())
def test_each_field_alone(number: int, data: st.DataObject) -> None:
    value = data.draw(s.field_value(number))
    assert_agree(Message("0200", {number: value}))  # type: ignore[dict-item]


@settings(max_examples=150)
@given(s.messages())
def test_whole_messages(msg: Message) -> None:
    assert_agree(msg)


@settings(max_examples=50)
@given(s.complete_messages())
def test_messages_with_every_field(msg: Message) -> None:
    assert sorted(msg) == sorted(FIELDS)
    assert_agree(msg)
