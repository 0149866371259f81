"""Typed sub-field layouts of the CUP dialect (spec sections 3.2, 3.3, 3.13, 4.1, 9.1, 9.3, 2).

Each layout is a frozen dataclass with ``parse(value) -> layout`` and ``format() -> value``,
exact inverses for well-formed values. A malformed value raises :class:`CodecError` naming the
sub-field (``60.2``, ``48.domestic_debit_amount``...) and never the value itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from posgate.iso8583 import CodecError


def _isdigits(s: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts ``²`` and other digits ``int`` refuses."""
    return s.isascii() and s.isdigit()


def _digits(path: str, s: str, length: int) -> str:
    if len(s) != length or not _isdigits(s):
        raise CodecError(path, f"{length} digits")
    return s


# ---------------------------------------------------------------- field 60 (3.2)
@dataclass(frozen=True, slots=True)
class Field60:
    """60.1 type code n2, 60.2 batch n6, 60.3 network management code n3, then optional
    60.4 read capability n1, 60.5 chip condition n1, 60.6 partial-approval flag n1,
    60.7 account type n3. Absent optional parts are empty strings."""

    type_code: str
    batch_no: str
    nmic: str = "000"
    read_capability: str = ""
    chip_condition: str = ""
    partial_approval: str = ""
    account_type: str = ""

    @classmethod
    def parse(cls, s: str) -> Field60:
        if len(s) < 11:
            raise CodecError("60", "at least 11 digits (60.1 + 60.2 + 60.3)")
        if not _isdigits(s):
            raise CodecError("60", "digits")
        rest = s[11:]
        if len(rest) not in (0, 1, 2, 3, 6):
            raise CodecError("60.4", "0, 1, 2, 3 or 6 digits after 60.3")
        return cls(s[0:2], s[2:8], s[8:11], rest[0:1], rest[1:2], rest[2:3], rest[3:6])

    def format(self) -> str:
        out = _digits("60.1", self.type_code, 2) + _digits("60.2", self.batch_no, 6) + _digits("60.3", self.nmic, 3)
        tail = self.read_capability + self.chip_condition + self.partial_approval + self.account_type
        if tail and not _isdigits(tail):
            raise CodecError("60.4", "digits")
        return out + tail


# ---------------------------------------------------------------- field 61 (3.3)
@dataclass(frozen=True, slots=True)
class Field61:
    """61.1 original batch n6, 61.2 original STAN n6, 61.3 original date MMDD n4 (optional),
    61.4 authorisation method n2 (optional), 61.5 authorising institution n11 (optional)."""

    orig_batch_no: str
    orig_stan: str
    orig_date: str = ""
    auth_method: str = ""
    auth_institution: str = ""

    @classmethod
    def parse(cls, s: str) -> Field61:
        if len(s) not in (12, 16, 18, 29) or not _isdigits(s):
            raise CodecError("61", "12, 16, 18 or 29 digits")
        return cls(s[0:6], s[6:12], s[12:16], s[16:18], s[18:29])

    def format(self) -> str:
        out = _digits("61.1", self.orig_batch_no, 6) + _digits("61.2", self.orig_stan, 6)
        if self.orig_date:
            out += _digits("61.3", self.orig_date, 4)
            if self.auth_method:
                out += _digits("61.4", self.auth_method, 2)
                if self.auth_institution:
                    out += _digits("61.5", self.auth_institution, 11)
        return out


# ---------------------------------------------------------------- field 48: settlement totals (9.1)
@dataclass(frozen=True, slots=True)
class SideTotals:
    debit_amount: int = 0
    debit_count: int = 0
    credit_amount: int = 0
    credit_count: int = 0
    flag: str = "0"  # request: 0; reply: 1 balanced, 2 not balanced, 3 error


@dataclass(frozen=True, slots=True)
class SettlementTotals:
    """Field 48 of 0500/0510: domestic (CUP) then foreign totals, 31 digits each."""

    domestic: SideTotals = field(default_factory=SideTotals)
    foreign: SideTotals = field(default_factory=SideTotals)

    @classmethod
    def parse(cls, s: str) -> SettlementTotals:
        if len(s) != 62 or not _isdigits(s):
            raise CodecError("48", "62 digits of settlement totals")

        def side(t: str) -> SideTotals:
            return SideTotals(int(t[0:12]), int(t[12:15]), int(t[15:27]), int(t[27:30]), t[30])

        return cls(side(s[:31]), side(s[31:]))

    def format(self) -> str:
        def side(name: str, t: SideTotals) -> str:
            for what, v, width in (
                ("debit_amount", t.debit_amount, 12),
                ("debit_count", t.debit_count, 3),
                ("credit_amount", t.credit_amount, 12),
                ("credit_count", t.credit_count, 3),
            ):
                if not 0 <= v < 10**width:
                    raise CodecError(f"48.{name}_{what}", f"0..{10**width - 1}")
            if len(t.flag) != 1 or not _isdigits(t.flag):
                raise CodecError(f"48.{name}_flag", "one digit")
            return f"{t.debit_amount:012d}{t.debit_count:03d}{t.credit_amount:012d}{t.credit_count:03d}{t.flag}"

        return side("domestic", self.domestic) + side("foreign", self.foreign)


# ---------------------------------------------------------------- field 48: batch upload (9.3)
@dataclass(frozen=True, slots=True)
class BatchUploadEntry:
    foreign: bool  # card-organisation flag: 00 CUP, 01 foreign
    stan: str
    pan: str
    amount: int


@dataclass(frozen=True, slots=True)
class BatchUploadEntries:
    """Field 48 of a 0320/201: count n2 (1..8) then count × (flag n2, STAN n6, PAN n20, amount n12)."""

    entries: tuple[BatchUploadEntry, ...]

    MAX = 8

    @classmethod
    def parse(cls, s: str) -> BatchUploadEntries:
        if len(s) < 2 or not _isdigits(s):
            raise CodecError("48", "a 2-digit entry count")
        count = int(s[:2])
        if not 1 <= count <= cls.MAX or len(s) != 2 + 40 * count:
            raise CodecError("48", f"1..{cls.MAX} entries of 40 digits after the count")
        entries = []
        for i in range(count):
            e = s[2 + 40 * i : 42 + 40 * i]
            if e[0:2] not in ("00", "01"):
                raise CodecError(f"48.{i + 1}.org", "00 (CUP) or 01 (foreign)")
            entries.append(BatchUploadEntry(e[0:2] == "01", e[2:8], e[8:28].lstrip("0"), int(e[28:40])))
        return cls(tuple(entries))

    def format(self) -> str:
        if not 1 <= len(self.entries) <= self.MAX:
            raise CodecError("48", f"1..{self.MAX} batch-upload entries")
        out = [f"{len(self.entries):02d}"]
        for i, e in enumerate(self.entries):
            if len(e.pan) > 20 or not _isdigits(e.pan):
                raise CodecError(f"48.{i + 1}.pan", "up to 20 digits")
            out.append(("01" if e.foreign else "00") + _digits(f"48.{i + 1}.stan", e.stan, 6) + e.pan.zfill(20) + f"{e.amount:012d}")
        return "".join(out)


def batch_end_count(s: str) -> int:
    """Field 48 of the batch-upload end (207/202): number of transactions uploaded, n4."""
    return int(_digits("48", s, 4))


# ---------------------------------------------------------------- field 62 of the sign-on (3.4, 4.1)
SERIAL_PREFIX = b"Sequence No"


def terminal_info(serial: str) -> bytes:
    """Field 62 of a sign-on request: ``Sequence No`` + device serial (D7)."""
    return SERIAL_PREFIX + serial.encode("ascii")


def parse_terminal_info(value: bytes) -> str:
    """The device serial from field 62 of a sign-on request."""
    if not value.startswith(SERIAL_PREFIX):
        raise CodecError("62", "'Sequence No' followed by the device serial")
    try:
        return value[len(SERIAL_PREFIX) :].decode("ascii").strip()
    except UnicodeDecodeError:
        raise CodecError("62", "an ASCII device serial") from None


#: Field 62 of a financial request from an SM4 (国密) terminal: this prefix + the 16-byte SM4
#: PIN block (docs/dialect.md 4.4); field 52 then holds 8 zero bytes.
SM4_PIN_PREFIX = b"SM016"

KEY_BLOCK_LENGTHS = {"001": 24, "003": 40, "004": 60, "006": 60}


@dataclass(frozen=True, slots=True, repr=False)
class KeyBlock:
    """Field 62 of an 0810: encrypted working keys and their 4-byte check values (4.1).
    Holds only *encrypted* keys; still kept out of repr."""

    scheme: str
    pik: bytes
    pik_cv: bytes
    mak: bytes
    mak_cv: bytes
    tdk: bytes = b""
    tdk_cv: bytes = b""

    @classmethod
    def parse(cls, scheme: str, value: bytes) -> KeyBlock:
        want = KEY_BLOCK_LENGTHS.get(scheme)
        if want is None:
            raise CodecError("60.3", "key scheme 001, 003, 004 or 006")
        if len(value) != want:
            raise CodecError("62", f"{want} bytes of working keys for scheme {scheme}")
        if scheme == "001":
            return cls(scheme, value[0:8], value[8:12], value[12:20], value[20:24])
        if scheme == "006":  # SM4 (4.4): three 16-byte keys, each with its check value
            return cls(scheme, value[0:16], value[16:20], value[20:36], value[36:40], value[40:56], value[56:60])
        tdk, tdk_cv = (value[40:56], value[56:60]) if scheme == "004" else (b"", b"")
        return cls(scheme, value[0:16], value[16:20], value[20:28], value[36:40], tdk, tdk_cv)

    def format(self) -> bytes:
        if self.scheme == "001":
            return self.pik + self.pik_cv + self.mak + self.mak_cv
        if self.scheme == "006":
            return self.pik + self.pik_cv + self.mak + self.mak_cv + self.tdk + self.tdk_cv
        out = self.pik + self.pik_cv + self.mak + bytes(8) + self.mak_cv
        return out + self.tdk + self.tdk_cv if self.scheme == "004" else out

    def __repr__(self) -> str:
        return f"KeyBlock(scheme={self.scheme}, {len(self.format())} bytes)"


# ---------------------------------------------------------------- field 63 (2)
@dataclass(frozen=True, slots=True)
class Field63:
    """63.1 an3 (operator code in requests, card organisation in replies) + 63.2 free texts
    (replies: issuer 20, CUP 20, acquirer 20)."""

    code: str
    issuer_info: str = ""
    cup_info: str = ""
    acquirer_info: str = ""

    @classmethod
    def parse(cls, s: str) -> Field63:
        rest = s[3:]
        return cls(s[:3], rest[0:20].rstrip(), rest[20:40].rstrip(), rest[40:60].rstrip())

    def format(self) -> str:
        texts = (self.issuer_info, self.cup_info, self.acquirer_info)
        if not any(texts):
            return self.code.ljust(3)
        return self.code.ljust(3) + "".join(t[:20].ljust(20) for t in texts).rstrip()

    @property
    def domestic(self) -> bool:
        return self.code.strip() == "CUP"


# ---------------------------------------------------------------- field 54 balance (3.9)
@dataclass(frozen=True, slots=True)
class Balance:
    """Field 54: account type n2, amount type n2, currency n3, sign C/D, amount n12 (fen)."""

    amount: int
    currency: str = "156"
    account_type: str = "10"
    amount_type: str = "02"

    @classmethod
    def parse(cls, s: str) -> Balance:
        if len(s) != 20 or s[7] not in "CD" or not _isdigits(s[8:]):
            raise CodecError("54", "20 characters: type n2, amount type n2, currency n3, C/D, amount n12")
        amount = int(s[8:])
        return cls(amount if s[7] == "C" else -amount, s[4:7], s[0:2], s[2:4])

    def format(self) -> str:
        sign = "C" if self.amount >= 0 else "D"
        return f"{self.account_type}{self.amount_type}{self.currency}{sign}{abs(self.amount):012d}"


# ---------------------------------------------------------------- field 44 (2)
@dataclass(frozen=True, slots=True)
class Field44:
    issuer_bank: str
    acquirer_bank: str

    @classmethod
    def parse(cls, s: str) -> Field44:
        return cls(s[0:11].strip(), s[11:22].strip())

    def format(self) -> str:
        return self.issuer_bank.ljust(11)[:11] + self.acquirer_bank.ljust(11)[:11]


# ---------------------------------------------------------------- field 62 parameters (3.12)
PARAMETER_WIDTHS = {
    "11": 2, "12": 2, "13": 1, "14": 14, "15": 14, "16": 14, "17": 14, "18": 1, "19": 2,
    "20": 1, "21": 1, "22": 40, "23": 1, "24": 1, "25": 1, "26": 4,
}  # fmt: skip


def format_parameters(params: dict[str, bytes]) -> bytes:
    """Field 62 of a parameter download reply: tag (2 digits) + fixed-width value, in tag order.
    Values are bytes (tag 22, the merchant name, is GBK); each is padded with spaces to its width."""
    out = bytearray()
    for tag in sorted(params):
        width = PARAMETER_WIDTHS.get(tag)
        if width is None:
            raise CodecError(f"62.{tag}", "a known parameter tag (11..26)")
        value = params[tag]
        if len(value) > width:
            raise CodecError(f"62.{tag}", f"at most {width} bytes")
        out += tag.encode() + value.ljust(width, b" ")
    return bytes(out)


def parse_parameters(value: bytes) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    p = 0
    while p < len(value):
        tag = value[p : p + 2].decode("ascii", "replace")
        width = PARAMETER_WIDTHS.get(tag)
        if width is None or p + 2 + width > len(value):
            raise CodecError(f"62.{tag}", "a known parameter tag with its full value", p)
        out[tag] = value[p + 2 : p + 2 + width].rstrip(b" ")
        p += 2 + width
    return out


STATUS_PREFIX = b"011021031041051"
