"""Hypothesis strategies for CUP messages, reusable by any test package.

``field_value(number)`` draws a valid value for one field of ``FIELDS`` (the codec's own value
types: digit strings, track strings with ``=``, ASCII text, bytes, :class:`TLV` for field 55);
``messages()`` draws whole messages. Fixed text fields are drawn at full length, since the
decoder returns them space-padded to full length.

Typed sub-field strategies (``field60s``, ``field61s``, ...) draw well-formed layouts of
:mod:`posgate.dialect.fields`, for which ``parse(format())`` is the identity.
"""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import strategies as st

from posgate.dialect.cup import FIELDS
from posgate.dialect.fields import (
    PARAMETER_WIDTHS,
    Balance,
    BatchUploadEntries,
    BatchUploadEntry,
    Field60,
    Field61,
    KeyBlock,
    SettlementTotals,
    SideTotals,
)
from posgate.iso8583 import TLV, FieldSpec, Kind, Message

ASCII = st.characters(min_codepoint=0, max_codepoint=127)
PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
DIGIT = st.sampled_from("0123456789")


def digits(min_size: int, max_size: int | None = None) -> st.SearchStrategy[str]:
    return st.text(DIGIT, min_size=min_size, max_size=min_size if max_size is None else max_size)


# ---------------------------------------------------------------- BER-TLV
# Tags seen in CUP field 55 (spec 2), plus drawn ones of 1, 2 and 3 bytes.
EMV_TAGS = (
    "9F26 9F27 9F10 9F37 9F36 95 9A 9C 9F02 5F2A 82 9F1A 9F03 9F33 9F34 9F35 9F1E 84 9F09 9F41 "
    "5A 57 5F34 91 8A DF31 FF00 FF06 FF70"
).split()


@st.composite
def tlv_tag(draw: st.DrawFn, constructed: bool = False) -> str:
    if not constructed and draw(st.booleans()):
        return draw(st.sampled_from(EMV_TAGS))
    first = draw(st.integers(0, 255)) & ~0x20 | (0x20 if constructed else 0)
    if first == 0xFF:
        first = 0xBF  # FF.. tags are primitive in the CUP dialect (3.13): not a template
    if first & 0x1F != 0x1F:
        return f"{first:02X}"
    more = draw(st.lists(st.integers(0x80, 0xFF), max_size=1))  # continuation bytes
    last = draw(st.integers(0, 0x7F))
    return bytes([first, *more, last]).hex().upper()


def tlvs(max_leaves: int = 12, max_value: int = 40) -> st.SearchStrategy[TLV]:
    """A BER-TLV list, possibly nested (constructed tags hold a TLV)."""
    primitive = st.tuples(tlv_tag(), st.binary(max_size=max_value))

    def extend(inner: st.SearchStrategy[list[tuple[str, bytes | TLV]]]) -> st.SearchStrategy[list[tuple[str, bytes | TLV]]]:
        constructed = st.tuples(tlv_tag(constructed=True), inner.map(TLV))
        return st.lists(st.one_of(primitive, constructed), max_size=4)

    lists = st.recursive(st.lists(primitive, max_size=4), extend, max_leaves=max_leaves)
    return lists.map(TLV)


# ---------------------------------------------------------------- fields
def value_for(spec: FieldSpec) -> st.SearchStrategy[object]:
    lo = 0 if spec.variable else spec.max_len
    hi = spec.max_len
    if spec.kind is Kind.N:
        return digits(lo, hi)
    if spec.kind is Kind.Z:
        # Digits and '='; A-C, E-F appear in TDK-encrypted tracks (spec 6.3).
        return st.text(st.sampled_from("0123456789=") | st.sampled_from("ABCEF"), min_size=lo, max_size=hi)
    if spec.kind in (Kind.AN, Kind.ANS):
        return st.text(ASCII, min_size=lo, max_size=hi)
    if spec.tlv:
        return tlvs().filter(lambda t: len(t.raw) <= spec.max_len)
    return st.binary(min_size=lo, max_size=hi)


_FIELD_STRATEGIES = {number: value_for(spec) for number, spec in FIELDS.items()}


def field_value(number: int) -> st.SearchStrategy[object]:
    return _FIELD_STRATEGIES[number]


def mtis() -> st.SearchStrategy[str]:
    return st.sampled_from(["0100", "0110", "0200", "0210", "0220", "0230", "0320", "0330", "0400", "0410",
                            "0500", "0510", "0620", "0630", "0800", "0810", "0820", "0830"]) | digits(4)  # fmt: skip


def field_dicts(numbers: Mapping[int, object] | None = None) -> st.SearchStrategy[dict[int, object]]:
    """Any subset of the dialect's fields (or of ``numbers``), each with a valid value."""
    wanted = FIELDS if numbers is None else numbers
    return st.fixed_dictionaries({}, optional={n: _FIELD_STRATEGIES[n] for n in wanted})


@st.composite
def messages(draw: st.DrawFn, numbers: Mapping[int, object] | None = None) -> Message:
    """A message with any subset of the dialect's fields (or of ``numbers``)."""
    return Message(draw(mtis()), draw(field_dicts(numbers)))  # type: ignore[arg-type]


@st.composite
def complete_messages(draw: st.DrawFn) -> Message:
    """A message with every field of the dialect."""
    return Message(draw(mtis()), draw(st.fixed_dictionaries(_FIELD_STRATEGIES)))  # type: ignore[arg-type]


# ---------------------------------------------------------------- typed sub-fields
@st.composite
def field60s(draw: st.DrawFn) -> Field60:
    # The optional parts are positional: 60.5 only after 60.4, and so on (3.2).
    tail = draw(st.sampled_from([0, 1, 2, 3, 4]))
    parts = [draw(digits(1)) for _ in range(min(tail, 3))]
    parts += [""] * (3 - len(parts))
    account = draw(digits(3)) if tail == 4 else ""
    return Field60(draw(digits(2)), draw(digits(6)), draw(digits(3)), parts[0], parts[1], parts[2], account)


@st.composite
def field61s(draw: st.DrawFn) -> Field61:
    depth = draw(st.integers(0, 3))
    date = draw(digits(4)) if depth >= 1 else ""
    method = draw(digits(2)) if depth >= 2 else ""
    inst = draw(digits(11)) if depth >= 3 else ""
    return Field61(draw(digits(6)), draw(digits(6)), date, method, inst)


def side_totals() -> st.SearchStrategy[SideTotals]:
    return st.builds(
        SideTotals,
        st.integers(0, 10**12 - 1),
        st.integers(0, 999),
        st.integers(0, 10**12 - 1),
        st.integers(0, 999),
        DIGIT,
    )


def settlement_totals() -> st.SearchStrategy[SettlementTotals]:
    return st.builds(SettlementTotals, side_totals(), side_totals())


def pans() -> st.SearchStrategy[str]:
    return st.builds(lambda first, rest: first + rest, st.sampled_from("3456789"), digits(12, 18))


def batch_upload_entries() -> st.SearchStrategy[BatchUploadEntries]:
    entry = st.builds(BatchUploadEntry, st.booleans(), digits(6), pans(), st.integers(0, 10**12 - 1))
    return st.lists(entry, min_size=1, max_size=BatchUploadEntries.MAX).map(lambda es: BatchUploadEntries(tuple(es)))


def balances() -> st.SearchStrategy[Balance]:
    return st.builds(Balance, st.integers(-(10**12) + 1, 10**12 - 1), digits(3), digits(2), digits(2))


@st.composite
def key_blocks(draw: st.DrawFn) -> KeyBlock:
    scheme = draw(st.sampled_from(["001", "003", "004"]))
    pik = draw(st.binary(min_size=8 if scheme == "001" else 16, max_size=8 if scheme == "001" else 16))
    cv = st.binary(min_size=4, max_size=4)
    mak = draw(st.binary(min_size=8, max_size=8))
    tdk, tdk_cv = (draw(st.binary(min_size=16, max_size=16)), draw(cv)) if scheme == "004" else (b"", b"")
    return KeyBlock(scheme, pik, draw(cv), mak, draw(cv), tdk, tdk_cv)


@st.composite
def parameter_sets(draw: st.DrawFn) -> dict[str, bytes]:
    tags = draw(st.lists(st.sampled_from(sorted(PARAMETER_WIDTHS)), unique=True))
    out = {}
    for tag in tags:
        value = draw(st.binary(max_size=PARAMETER_WIDTHS[tag]))
        out[tag] = value.rstrip(b" ")  # the format pads with spaces, so a value never ends in one
    return out
