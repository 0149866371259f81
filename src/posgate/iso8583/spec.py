"""Field specifications: a field is composed of small orthogonal parts.

A :class:`FieldSpec` says what kind of data a field holds (``n``, ``z``, ``an``, ``ans``, ``b``),
its maximum length, its length prefix (fixed, LL or LLL, always BCD in the CUP dialect),
its alignment (for BCD digits: right-justified fixed fields, left-justified variable ones,
with per-field exceptions such as CUP field 22), how sensitive it is (for masking) and, for
binary fields carrying BER-TLV, that it is TLV. A dialect is a plain table of these.

Lengths count digits for ``n``/``z``, characters for ``an``/``ans`` and bytes for ``b``
(CUP section 1.5) — so ``b64`` in the spec tables means 64 *bits* and is declared here as 8.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Kind(str, Enum):
    N = "n"  # digits, packed BCD
    Z = "z"  # track data, packed BCD with '=' as nibble D (A-C, E-F only in TDK-encrypted tracks)
    AN = "an"  # ASCII letters/digits, space padded
    ANS = "ans"  # ASCII letters/digits/specials, space padded
    B = "b"  # raw bytes


class Prefix(int, Enum):
    FIXED = 0
    LL = 1  # one BCD byte
    LLL = 2  # two BCD bytes


class Sensitivity(str, Enum):
    NONE = "none"
    PAN = "pan"  # show first 6 and last 4
    TRACK = "track"  # show the masked PAN part only
    PIN = "pin"  # never shown
    KEY = "key"  # never shown (key blocks, when the context says so)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    number: int
    kind: Kind
    max_len: int
    prefix: Prefix = Prefix.FIXED
    left_justified: bool | None = None  # None: the kind's rule (fixed n → right, variable → left)
    name: str = ""
    zh: str = ""
    sensitivity: Sensitivity = Sensitivity.NONE
    tlv: bool = False

    @property
    def variable(self) -> bool:
        return self.prefix is not Prefix.FIXED

    @property
    def left(self) -> bool:
        if self.left_justified is not None:
            return self.left_justified
        return self.variable

    @property
    def notation(self) -> str:
        """The spec's own notation, e.g. ``n..19``, ``ans...163``, ``b64``."""
        if self.kind is Kind.B and not self.variable:
            return f"b{self.max_len * 8}"
        dots = {Prefix.FIXED: "", Prefix.LL: "..", Prefix.LLL: "..."}[self.prefix]
        return f"{self.kind.value}{dots}{self.max_len}"


def n(number: int, length: int, *, left: bool | None = None, **kw: object) -> FieldSpec:
    return FieldSpec(number, Kind.N, length, Prefix.FIXED, left, **kw)  # type: ignore[arg-type]


def llvar(number: int, kind: Kind, max_len: int, **kw: object) -> FieldSpec:
    return FieldSpec(number, kind, max_len, Prefix.LL, **kw)  # type: ignore[arg-type]


def lllvar(number: int, kind: Kind, max_len: int, **kw: object) -> FieldSpec:
    return FieldSpec(number, kind, max_len, Prefix.LLL, **kw)  # type: ignore[arg-type]


def fixed(number: int, kind: Kind, length: int, **kw: object) -> FieldSpec:
    return FieldSpec(number, kind, length, Prefix.FIXED, **kw)  # type: ignore[arg-type]
