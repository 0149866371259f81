"""The CUP table of :mod:`posgate.dialect.cup` as a pyiso8583 spec, plus value converters.

pyiso8583 is our independent oracle (tests/codec/test_differential.py) and the baseline of the
codec benchmark. The spec is *derived* from ``FIELDS`` rather than written out a second time,
so the two cannot drift apart; what makes it an oracle is that pyiso8583 does the byte work
with its own code from these few settings (pyiso8583 ``specs`` module docs):

* ``n``/``z`` (packed BCD): ``data_enc "b"`` (BCD is a subset of hex), ``len_count "nibbles"``
  so lengths and ``max_len`` count digits, ``len_enc "bcd"`` with ``len_type`` 1 (LL) or 2
  (LLL); odd lengths are padded with a ``0`` nibble — ``left_pad`` for right-justified fields
  (fixed ``n``, e.g. field 23 ``001`` → ``00 01``), ``right_pad`` for left-justified ones
  (variable fields and field 22, ``021`` → ``02 10``).
* ``an``/``ans``: ``data_enc "ascii"``, lengths in characters. pyiso8583 does not pad text, so
  fixed text values must be given at full length (our decoder returns them at full length too).
* ``b``: ``data_enc "b"``, lengths in bytes; pyiso8583's value is the upper-case hex string.
* ``z`` tracks: pyiso8583 has no track type; it carries the nibbles as hex, so the separator is
  the nibble ``D`` in its values where ours use ``=`` (:func:`to_pyiso`/:func:`from_pyiso`
  translate; the bytes on the wire are the same).
* MTI: 2 bytes BCD (``data_enc "b"``); bitmap: 8 binary bytes; no header (``max_len`` 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from posgate.dialect.cup import FIELDS
from posgate.iso8583 import TLV, FieldSpec, FieldValue, Kind, Message, Prefix

_LEN_TYPE = {Prefix.FIXED: 0, Prefix.LL: 1, Prefix.LLL: 2}


def field_spec(spec: FieldSpec) -> dict[str, Any]:
    """The pyiso8583 field spec equivalent to one of ours."""
    out: dict[str, Any] = {
        "len_enc": "bcd",
        "len_type": _LEN_TYPE[spec.prefix],
        "max_len": spec.max_len,
        "desc": spec.name,
    }
    if spec.kind in (Kind.N, Kind.Z):
        out["data_enc"] = "b"
        out["len_count"] = "nibbles"
        out["right_pad" if spec.left else "left_pad"] = "0"
    elif spec.kind in (Kind.AN, Kind.ANS):
        out["data_enc"] = "ascii"
        out["len_count"] = "bytes"
    else:
        out["data_enc"] = "b"
        out["len_count"] = "bytes"
    return out


def build_spec(fields: Mapping[int, FieldSpec] = FIELDS) -> dict[str, dict[str, Any]]:
    spec: dict[str, dict[str, Any]] = {
        "h": {"data_enc": "b", "len_enc": "b", "len_type": 0, "max_len": 0, "desc": "No header"},
        "t": {"data_enc": "b", "len_enc": "b", "len_type": 0, "max_len": 2, "desc": "Message type (BCD)"},
        "p": {"data_enc": "b", "len_enc": "b", "len_type": 0, "max_len": 8, "desc": "Primary bitmap"},
        "1": {"data_enc": "b", "len_enc": "b", "len_type": 0, "max_len": 8, "desc": "Secondary bitmap (never used by CUP)"},
    }
    for number, fs in fields.items():
        spec[str(number)] = field_spec(fs)
    return spec


CUP_SPEC = build_spec()


def to_pyiso_value(number: int, value: FieldValue) -> str:
    """Our value of field ``number`` as pyiso8583 represents it."""
    if isinstance(value, TLV):
        return value.raw.hex().upper()
    if isinstance(value, bytes):
        return value.hex().upper()
    if FIELDS[number].kind is Kind.Z:
        return value.replace("=", "D")
    return value


def from_pyiso_value(number: int, value: str) -> FieldValue:
    """pyiso8583's value of field ``number`` as ours."""
    spec = FIELDS[number]
    if spec.kind is Kind.B:
        raw = bytes.fromhex(value)
        return TLV.decode(raw, str(number)) if spec.tlv else raw
    if spec.kind is Kind.Z:
        return value.replace("D", "=")
    return value


def to_pyiso(msg: Message) -> dict[str, str]:
    """A pyiso8583 document for ``msg`` (``t`` = MTI, ``"N"`` = field N)."""
    doc = {"t": msg.mti}
    for number, value in msg.items():
        doc[str(number)] = to_pyiso_value(number, value)
    return doc


def from_pyiso(doc: Mapping[str, str]) -> Message:
    """A :class:`Message` from a decoded pyiso8583 document."""
    fields = {int(k): from_pyiso_value(int(k), v) for k, v in doc.items() if k.isdigit() and k != "1"}
    return Message(doc["t"], fields)
