"""The generated fast path (``posgate.iso8583.codec``) held to the reference path.

The codec's promise: the fast path accepts only what the reference path accepts, with the same
values and bytes, and gives way (returns None) at any doubt. These tests call the generated
functions directly, so they do not depend on what the shared codec's caches have learnt.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posgate.dialect.cup import CODEC, FIELDS
from posgate.iso8583 import Codec, CodecError, Message
from posgate.iso8583.codec import _gen_decoder, _gen_encoder

from . import strategies as s
from . import vectors as v

_decoders: dict[bytes, Any] = {}
_encoders: dict[tuple[int, ...], Any] = {}


def fast_decoder(body: bytes) -> Any:
    """The generated decoder for this body's bitmap, or None for a bitmap the dialect refuses."""
    key = body[2:10]
    if key not in _decoders:
        bits = int.from_bytes(key, "big")
        numbers = [n for n in range(1, 65) if bits >> (64 - n) & 1]
        ok = len(key) == 8 and all(n in FIELDS for n in numbers)
        _decoders[key] = _gen_decoder([FIELDS[n] for n in numbers]) if ok else None
    return _decoders[key]


def fast_encode(msg: Message) -> bytes | None:
    numbers = tuple(sorted(msg))
    if numbers not in _encoders:
        _encoders[numbers] = _gen_encoder([FIELDS[n] for n in numbers])
    bits = sum(1 << (64 - n) for n in numbers)
    result: bytes | None = _encoders[numbers](dict(msg.items()), bytes.fromhex(msg.mti), bits.to_bytes(8, "big"))
    return result


def reference(body: bytes) -> tuple[str, Any]:
    try:
        return "ok", CODEC._decode_reference(body)
    except CodecError as e:
        return "error", e


@settings(max_examples=200)
@given(s.messages())
def test_the_fast_path_handles_every_valid_message_as_the_reference_does(msg: Message) -> None:
    body = CODEC._encode_reference(msg, False)
    assert fast_encode(msg) == body
    fields = fast_decoder(body)(body)
    assert fields is not None
    assert Message(msg.mti, fields) == CODEC._decode_reference(body) == msg


@settings(max_examples=60)
@given(s.complete_messages())
def test_the_fast_path_with_every_field(msg: Message) -> None:
    body = CODEC._encode_reference(msg, False)
    assert fast_encode(msg) == body
    assert Message(msg.mti, fast_decoder(body)(body)) == msg


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    body = bytearray(draw(st.sampled_from(v.BODIES) | s.messages().map(CODEC.encode)))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(10, max(len(body) - 1, 10)))  # keep MTI and bitmap: reach the fields
        op = draw(st.sampled_from(["flip", "replace", "cut", "insert", "delete"]))
        if op == "flip" and i < len(body):
            body[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "replace" and i < len(body):
            body[i] = draw(st.integers(0, 255))
        elif op == "cut":
            del body[i:]
        elif op == "insert":
            body[i:i] = draw(st.binary(min_size=1, max_size=3))
        elif op == "delete":
            del body[i : i + 2]
    return bytes(body)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(damaged())
def test_the_fast_decoder_never_accepts_what_the_reference_refuses(body: bytes) -> None:
    dec = fast_decoder(body)
    if dec is None:
        return
    fields = dec(body)  # never raises: None at any doubt
    outcome, result = reference(body)
    if fields is not None:
        assert outcome == "ok"
        assert fields == dict(result.items())
    # (None with a valid body is allowed: the reference path then decodes it.)


_ANY = st.one_of(st.text(max_size=30), st.text(st.sampled_from("0123456789="), max_size=40), st.binary(max_size=30), st.integers(), s.tlvs(max_leaves=2))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(s.messages(), st.dictionaries(st.sampled_from(sorted(FIELDS)), _ANY, max_size=4))
def test_the_fast_encoder_never_accepts_what_the_reference_refuses(msg: Message, changes: dict[int, Any]) -> None:
    msg = msg.with_fields(changes)
    fast = fast_encode(msg)  # never raises: None at any doubt
    try:
        ref: bytes | None = CODEC._encode_reference(msg, False)
    except CodecError:
        ref = None
    if fast is not None:
        assert fast == ref


# ---------------------------------------------------------------- what gets compiled
def test_only_valid_messages_teach_the_codec_a_bitmap() -> None:
    codec = Codec(FIELDS)
    sale = v.SALE_D
    for cut in range(11, len(sale)):  # invalid bodies with the sale's bitmap
        try:
            codec.decode(sale[:cut])
        except CodecError:
            pass
    for junk in (bytes.fromhex("0200FFFFFFFFFFFFFFFF"), bytes.fromhex("02000000000000000001") + bytes(7)):
        try:
            codec.decode(junk)
        except CodecError:
            pass
    assert codec._dec_plans == {}
    first = codec.decode(sale)  # the reference path, then a generated decoder
    assert list(codec._dec_plans) == [sale[2:10]]
    assert codec.decode(sale) == first  # now by the generated decoder
    assert codec.decode(sale)[55] == first[55]


def test_a_full_cache_stops_compiling_and_stays_correct() -> None:
    codec = Codec(FIELDS)
    codec._PLAN_CACHE_MAX = 2
    bodies = v.BODIES  # five distinct bitmaps among them
    for _ in range(2):
        assert [codec.decode(b) for b in bodies] == [CODEC._decode_reference(b) for b in bodies]
        assert [codec.encode(codec.decode(b)) for b in bodies] == bodies
    assert len(codec._dec_plans) == 2
    assert len(codec._enc_plans) == 2


def test_short_fixed_text_is_padded_by_the_reference_path() -> None:
    codec = Codec(FIELDS)
    full = Message("0200", {11: "000001", 41: "12345678", 42: "123456789012345"})
    short = Message("0200", {11: "000001", 41: "1234", 42: "123456789012345"})
    codec.encode(full)
    assert codec._enc_plans  # learnt the shape
    assert codec.encode(short)[13:21] == b"1234    "
    assert fast_encode(short) is None


# ---------------------------------------------------------------- exhaustive, deterministic
def _nibble_variants(body: bytes) -> list[bytes]:
    out = []
    for i in range(10, len(body)):
        b = body[i]
        for n in range(16):
            for new in ((n << 4) | (b & 0x0F), (b & 0xF0) | n):
                if new != b:
                    out.append(body[:i] + bytes([new]) + body[i + 1 :])
    return out


def test_every_single_nibble_change_of_the_real_messages() -> None:
    """Each nibble of each real body set to each other value: pads, digits, lengths, TLV."""
    accepted = refused = 0
    for original in v.BODIES:
        dec = fast_decoder(original)
        for body in set(_nibble_variants(original)):
            fields = dec(body)
            outcome, result = reference(body)
            if fields is not None:
                assert outcome == "ok", body.hex()
                assert fields == dict(result.items())
                accepted += 1
            elif outcome == "ok":
                raise AssertionError(f"the fast path refused a valid body {body.hex()}")
            else:
                refused += 1
    assert accepted > 1000 and refused > 1000


def _bad_values(number: int, good: Any) -> list[Any]:
    spec = FIELDS[number]
    if isinstance(good, str):
        mid = len(good) // 2
        out: list[Any] = [good + "1", good[:-1], good.encode(), 7]
        for c in ("a", "D", "=", " ", "²", "٣", "é", "\x00"):
            out.append(good[:mid] + c + good[mid + 1 :] if good else c)
            out.append(good[:-1] + c if good else c)
        if spec.variable:
            out.append("1" * (spec.max_len + 1))
        return out
    return [bytes(len(good) + 1), bytes(max(len(good) - 1, 0)), bytes(spec.max_len + 1), good.hex() if isinstance(good, bytes) else "", 0]


def test_every_field_with_broken_values_in_a_complete_message() -> None:
    good = {n: spec_value for n, spec_value in _complete().items()}
    base = Message("0200", good)
    assert fast_encode(base) == CODEC._encode_reference(base, False)
    for number in FIELDS:
        for bad in _bad_values(number, good[number]):
            msg = base.with_fields({number: bad})
            fast = fast_encode(msg)
            try:
                ref: bytes | None = CODEC._encode_reference(msg, False)
            except CodecError as e:
                assert e.field == str(number)
                ref = None
            if fast is not None:
                assert fast == ref, (number, bad)


def _complete() -> dict[int, Any]:
    msg = CODEC.decode(v.SALE_D)
    values: dict[int, Any] = dict(msg.items())
    for number, spec in FIELDS.items():
        if number not in values:
            kind = spec.kind.value
            if kind == "n":
                values[number] = "1" * min(spec.max_len, 12) if spec.variable else "1" * spec.max_len
            elif kind == "z":
                values[number] = "1234=5678"
            elif kind in ("an", "ans"):
                values[number] = "X" * (min(spec.max_len, 12) if spec.variable else spec.max_len)
            else:
                values[number] = bytes(range(spec.max_len if not spec.variable else 10))
    return values


def test_a_self_consistent_length_over_the_maximum_is_refused_by_both_paths() -> None:
    """A length one over the field's maximum, with exactly that much data after it."""
    tried = 0
    for number, spec in FIELDS.items():
        over = spec.max_len + 1
        if not spec.variable or over > (99 if spec.prefix.name == "LL" else 999):
            continue
        prefix = bytes.fromhex(f"{over:02d}" if spec.prefix.name == "LL" else f"{over:04d}")
        unit = {"n": "1", "z": "1"}.get(spec.kind.value)
        data = bytes.fromhex(unit * over + "0" * (over % 2)) if unit else (b"A" * over if spec.kind.value != "b" else b"\x01" * over)
        if spec.tlv:
            data = bytes.fromhex("DF01") + bytes([over - 3]) + bytes(over - 3)
        body = bytes.fromhex("0200") + (1 << (64 - number)).to_bytes(8, "big") + prefix + data
        assert fast_decoder(body)(body) is None, number
        outcome, e = reference(body)
        assert outcome == "error" and (e.field, e.offset) == (str(number), 10)
        tried += 1
    assert tried >= 10


# ---------------------------------------------------------------- TLV: the common-case loop
def _tlv_paths(raw: bytes) -> tuple[Any, Any]:
    from posgate.iso8583.tlv import _decode_careful, _decode_common

    try:
        careful: Any = _decode_careful(raw, "55", 0)
    except CodecError:
        careful = "error"
    return _decode_common(raw), careful


@settings(max_examples=200)
@given(s.tlvs().map(lambda t: t.raw) | st.binary(max_size=80) | s.tlvs().map(lambda t: t.raw[: len(t.raw) // 2]))
def test_the_tlv_common_loop_agrees_with_the_careful_parser(raw: bytes) -> None:
    common, careful = _tlv_paths(raw)
    if common is not None:
        assert careful != "error"
        assert common == careful


def test_the_tlv_common_loop_leaves_long_forms_to_the_careful_parser() -> None:
    for raw in ("9F26 81 02 AABB", "DF8101 01 00", "9F26 82 0001 AA"):
        common, careful = _tlv_paths(bytes.fromhex(raw.replace(" ", "")))
        assert common is None and careful != "error"
