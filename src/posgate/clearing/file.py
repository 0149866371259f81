"""The daily clearing file (清算文件): one business day of the network's financial records.

Layout (docs/clearing.md has the full table): ASCII text, one record per line ended by ``\\n``,
fixed-width columns separated by one space, like the UnionPay switch's acquirer transaction
file ``IND{yymmdd}01ACOM``. Three record types, named by the line's first character:

* ``H`` header: format, version, business date, sender (the network), receiver (the acquirer),
  creation time;
* ``D`` detail: the 34 columns of an ACOM transaction line, in ACOM's order and widths, then
  posgate's extension columns (business date, record kind, stand-in flag, card kind, original
  RRN, currency);
* ``T`` trailer: record count, debit and credit counts and totals, and the SHA-256 of every byte
  before the trailer line (header and details).

The format and parse functions are sans-IO (bytes in, bytes out); :func:`write_clearing_file`
and :func:`read_clearing_file` are their thin file shells. A file that does not parse raises
:class:`ClearingFileError` naming the line, the column (1-based character position) and the
field, so whoever sent it can find the fault; nothing is half-read.

Card numbers: the PAN column carries the masked PAN only (first 6, last 4). A PAN column that
holds a full card number is refused: the file sits on disk at both ends.
"""

from __future__ import annotations

import calendar
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "ACOM"
VERSION = "01"
SEP = " "
MAX_AMOUNT = 999_999_999_999  # n12 fen


class ClearingFileError(ValueError):
    """A clearing file that cannot be read: where (line, column, field) and why."""

    def __init__(
        self, message: str, line: int | None = None, column: int | None = None, name: str | None = None
    ) -> None:
        self.line, self.column, self.name, self.reason = line, column, name, message
        where = []
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column}" + (f" ({name})" if name else ""))
        super().__init__(", ".join(where) + ": " + message if where else message)


@dataclass(frozen=True, slots=True)
class Col:
    """One fixed-width column: ``n`` digits (right-justified, zero-filled) or ``an`` printable
    ASCII (left-justified, space-filled); ``attr`` the ClearingRecord attribute, or None for an
    ACOM column posgate does not use (written blank, ignored when read)."""

    name: str
    width: int
    kind: str  # n | an
    attr: str | None = None
    required: bool = False


# The 34 ACOM columns (widths as the switch writes them), then posgate's extension.
DETAIL: tuple[Col, ...] = (
    Col("acquirer_id", 11, "an", "acquirer_id", True),  # 代理机构标识码, field 32
    Col("forwarding_id", 11, "an", "forwarding_id"),  # 发送机构标识码, field 33
    Col("stan", 6, "n", "stan", True),  # 系统跟踪号, field 11
    Col("transmission_time", 10, "n", "transmission_time", True),  # 交易传输时间 MMDDhhmmss, field 7
    Col("pan", 19, "an", "pan_masked", True),  # 主账号 (masked), field 2
    Col("amount", 12, "n", "amount", True),  # 交易金额 in fen, field 4
    Col("acom_7", 12, "an"),
    Col("acom_8", 12, "an"),
    Col("mti", 4, "n", "mti", True),  # 报文类型
    Col("processing_code", 6, "n", "processing_code", True),  # 交易处理码, field 3
    Col("mcc", 4, "an", "mcc"),  # 商户类别, field 18
    Col("terminal_id", 8, "an", "terminal_id", True),  # 受卡机终端标识码, field 41
    Col("merchant_id", 15, "an", "merchant_id", True),  # 受卡方标识码, field 42
    Col("rrn", 12, "an", "rrn", True),  # 检索参考号, field 37
    Col("condition_code", 2, "an", "condition_code"),  # 服务点条件码, field 25
    Col("auth_code", 6, "an", "auth_code"),  # 授权应答码, field 38
    Col("receiving_id", 11, "an"),  # 接收机构标识码, field 100
    Col("original_stan", 6, "an", "original_stan"),  # 原始交易的系统跟踪号
    Col("response_code", 2, "an", "response_code", True),  # 交易返回码, field 39
    Col("entry_mode", 3, "an", "entry_mode"),  # 服务点输入方式, field 22
    Col("acom_21", 12, "an"),
    Col("acom_22", 12, "an"),
    Col("acom_23", 12, "an"),
    Col("acom_24", 1, "an"),
    Col("acom_25", 3, "an"),
    Col("acom_26", 1, "an"),
    Col("acom_27", 1, "an"),
    Col("original_time", 10, "an", "original_time"),  # 原始交易日期时间 MMDDhhmmss
    Col("issuer_id", 11, "an"),  # 发卡机构标识码
    Col("acom_30", 1, "an"),
    Col("acom_31", 2, "an"),
    Col("acom_32", 2, "an"),
    Col("acom_33", 12, "an"),
    Col("acom_34", 14, "an"),
    # posgate's extension
    Col("business_date", 8, "n", "business_date", True),  # the network's settlement date YYYYMMDD
    Col("kind", 1, "an", "kind", True),  # A authorisation | V advice
    Col("stand_in", 1, "an", "stand_in", True),  # Y an advice of an acquirer stand-in approval | N
    Col("card_kind", 7, "an", "card_kind"),  # debit | credit | foreign | qr
    Col("original_rrn", 12, "an", "original_rrn"),  # the original's RRN (voids, refunds, completions)
    Col("currency", 3, "n", "currency", True),  # field 49, 156 = CNY
)
HEADER: tuple[Col, ...] = (
    Col("format", 4, "an", "format", True),
    Col("version", 2, "n", "version", True),
    Col("business_date", 8, "n", "business_date", True),
    Col("sender", 11, "an", "sender", True),
    Col("receiver", 11, "an", "receiver"),
    Col("created", 14, "n", "created", True),  # YYYYMMDDhhmmss UTC
)
TRAILER: tuple[Col, ...] = (
    Col("record_count", 9, "n", "record_count", True),
    Col("debit_count", 9, "n", "debit_count", True),
    Col("debit_total", 15, "n", "debit_total", True),
    Col("credit_count", 9, "n", "credit_count", True),
    Col("credit_total", 15, "n", "credit_total", True),
    Col("sha256", 64, "an", "sha256", True),
)
KINDS = {"authorisation": "A", "advice": "V"}
KIND_NAMES = {v: k for k, v in KINDS.items()}
CARD_KINDS = ("debit", "credit", "foreign", "qr")


def _length(cols: Sequence[Col]) -> int:
    return 1 + sum(1 + c.width for c in cols)


@dataclass(frozen=True, slots=True)
class ClearingRecord:
    """One financial record the network cleared (approved and not reversed)."""

    business_date: str  # YYYYMMDD
    acquirer_id: str
    stan: str
    transmission_time: str  # MMDDhhmmss
    pan_masked: str
    amount: int  # fen
    mti: str
    processing_code: str
    terminal_id: str
    merchant_id: str
    rrn: str
    response_code: str
    forwarding_id: str = ""
    mcc: str = ""
    condition_code: str = ""
    auth_code: str = ""
    original_stan: str = ""
    entry_mode: str = ""
    original_time: str = ""
    kind: str = "authorisation"
    stand_in: bool = False
    card_kind: str = ""
    original_rrn: str = ""
    currency: str = "156"

    @property
    def side(self) -> str:
        """``debit`` (the merchant is owed it: sales, completions) or ``credit`` (voids, refunds)."""
        return "debit" if self.processing_code.startswith("00") else "credit"

    @property
    def key(self) -> tuple[str, str, str]:
        """What the two sides match on within a business date (RRN, terminal, STAN)."""
        return (self.rrn, self.terminal_id, self.stan)


@dataclass(frozen=True, slots=True)
class ClearingFile:
    business_date: str
    sender: str
    receiver: str
    created: str
    records: tuple[ClearingRecord, ...]
    debit_count: int
    debit_total: int
    credit_count: int
    credit_total: int
    sha256: str  # the trailer's checksum (of header + details)
    lines: tuple[int, ...] = field(default=())  # the file line of each record


def totals(records: Iterable[ClearingRecord]) -> tuple[int, int, int, int]:
    dn = dt = cn = ct = 0
    for r in records:
        if r.side == "debit":
            dn, dt = dn + 1, dt + r.amount
        else:
            cn, ct = cn + 1, ct + r.amount
    return dn, dt, cn, ct


# ------------------------------------------------------------------ writing


def _cell(col: Col, value: object) -> str:
    text = "" if value is None else str(value)
    if col.required and not text:
        raise ValueError(f"{col.name} may not be blank")
    if col.kind == "n":
        if text and not text.isdigit():
            raise ValueError(f"{col.name}: {text!r} is not digits")
        text = text.rjust(col.width, "0") if text else ""
    if text != text.strip(" "):
        raise ValueError(f"{col.name}: {text!r} has leading or trailing spaces")
    if len(text) > col.width:
        raise ValueError(f"{col.name}: {text!r} is longer than {col.width}")
    if not text.isascii() or not text.isprintable():
        raise ValueError(f"{col.name}: {text!r} is not printable ASCII")
    return text.ljust(col.width)


def _line(kind: str, cols: Sequence[Col], values: dict[str, object]) -> str:
    return kind + "".join(SEP + _cell(c, values.get(c.attr or "", "")) for c in cols) + "\n"


def _record_values(r: ClearingRecord) -> dict[str, object]:
    if r.amount < 0 or r.amount > MAX_AMOUNT:
        raise ValueError(f"amount {r.amount} is outside 0..{MAX_AMOUNT}")
    if r.kind not in KINDS:
        raise ValueError(f"kind {r.kind!r}: one of {', '.join(KINDS)}")
    if not r.processing_code.startswith(("00", "20")):
        raise ValueError(
            f"processing code {r.processing_code!r} is not a financial debit (00) or credit (20)"
        )
    values = {c.attr: getattr(r, c.attr) for c in DETAIL if c.attr}
    values.update(kind=KINDS[r.kind], stand_in="Y" if r.stand_in else "N")
    return values


def format_clearing_file(records: Sequence[ClearingRecord], *, business_date: str | None = None, sender: str = "",
                         receiver: str = "", created: str = "") -> bytes:  # fmt: skip
    """The file's bytes. ``business_date`` defaults to the records' (they must all share it);
    ``created`` is YYYYMMDDhhmmss (the caller's clock: this function reads none)."""
    dates = {r.business_date for r in records}
    if business_date is None:
        if len(dates) != 1:
            raise ValueError("give business_date: the records have none or several")
        business_date = dates.pop()
    elif dates - {business_date}:
        raise ValueError(
            f"records of another business date than {business_date}: {sorted(dates - {business_date})}"
        )
    head = _line("H", HEADER, {"format": FORMAT, "version": VERSION, "business_date": business_date,
                               "sender": sender or "NETWORK", "receiver": receiver,
                               "created": created or f"{business_date}000000"})  # fmt: skip
    body = head + "".join(_line("D", DETAIL, _record_values(r)) for r in records)
    data = body.encode("ascii")
    dn, dt, cn, ct = totals(records)
    trailer = _line("T", TRAILER, {"record_count": len(records), "debit_count": dn, "debit_total": dt, "credit_count": cn,
                                   "credit_total": ct, "sha256": hashlib.sha256(data).hexdigest()})  # fmt: skip
    return data + trailer.encode("ascii")


def write_clearing_file(path: str | Path, records: Sequence[ClearingRecord], *, business_date: str | None = None,
                        sender: str = "", receiver: str = "", created: str = "") -> bytes:  # fmt: skip
    """Write the file atomically (a temporary name, then a rename: a reader never sees half a
    file); returns the bytes written."""
    data = format_clearing_file(
        records, business_date=business_date, sender=sender, receiver=receiver, created=created
    )
    target = Path(path)
    tmp = target.with_name(f".{target.name}.part")
    tmp.write_bytes(data)
    tmp.replace(target)
    return data


# ------------------------------------------------------------------ reading


@dataclass(frozen=True)
class _Layout:
    """A record type's columns with their offsets, computed once (a day's file has many lines)."""

    name: str
    length: int
    spans: tuple[tuple[Col, int], ...]  # (column, 0-based index of its first character)
    where: dict[str, int]  # attribute or name -> 1-based column, for error messages

    @classmethod
    def of(cls, name: str, cols: Sequence[Col]) -> _Layout:
        spans, pos = [], 2
        for c in cols:
            spans.append((c, pos))
            pos += c.width + 1
        return cls(name, _length(cols), tuple(spans), {(c.attr or c.name): i + 1 for c, i in spans})


_LAYOUTS = {
    "H": _Layout.of("header", HEADER),
    "D": _Layout.of("detail", DETAIL),
    "T": _Layout.of("trailer", TRAILER),
}
_BAD_BYTE = re.compile(rb"[^\x20-\x7e\n]")


def _fields(text: str, kind: str, lineno: int) -> dict[str, str]:
    layout = _LAYOUTS[kind]
    if len(text) != layout.length:
        raise ClearingFileError(
            f"a {layout.name} record is {layout.length} characters long, this line has {len(text)}", lineno
        )
    out: dict[str, str] = {"@": kind}
    for c, start in layout.spans:
        if text[start - 1] != SEP:
            raise ClearingFileError("expected a space between columns", lineno, start)
        raw = text[start : start + c.width]
        value = raw.rstrip(" ")
        if value:
            if c.kind == "n" and not (len(value) == c.width and value.isdigit() and value.isascii()):
                raise ClearingFileError(f"expected {c.width} digits, got {raw!r}", lineno, start + 1, c.name)
            if value[0] == " ":
                raise ClearingFileError(
                    f"text must be left-justified, got {raw!r}", lineno, start + 1, c.name
                )
        elif c.required:
            raise ClearingFileError("this column may not be blank", lineno, start + 1, c.name)
        if c.attr:
            out[c.attr] = value
    return out


def _col(f: dict[str, str], attr: str) -> int:
    return _LAYOUTS[f["@"]].where[attr]


def _check_date(value: str, lineno: int, column: int, name: str) -> None:
    y, m, d = int(value[:4]), int(value[4:6]), int(value[6:8])
    if not (1 <= m <= 12 and 1 <= d <= calendar.monthrange(max(y, 1), m)[1]) or y < 2000:
        raise ClearingFileError(f"{value!r} is not a date YYYYMMDD", lineno, column, name)


def _check_time10(value: str, lineno: int, column: int, name: str) -> None:
    if len(value) != 10 or not value.isdigit():
        raise ClearingFileError(f"expected MMDDhhmmss, got {value!r}", lineno, column, name)
    mo, d, h, mi, s = (int(value[i : i + 2]) for i in range(0, 10, 2))
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 60):
        raise ClearingFileError(f"{value!r} is not a time MMDDhhmmss", lineno, column, name)


def _detail(f: dict[str, str], lineno: int, business_date: str) -> ClearingRecord:
    if f["business_date"] != business_date:
        raise ClearingFileError(f"business date {f['business_date']} differs from the header's {business_date}", lineno,
                                _col(f, "business_date"), "business_date")  # fmt: skip
    _check_time10(f["transmission_time"], lineno, _col(f, "transmission_time"), "transmission_time")
    if f["original_time"]:
        _check_time10(f["original_time"], lineno, _col(f, "original_time"), "original_time")
    pan = f["pan_masked"]
    if not all(ch.isdigit() or ch == "*" for ch in pan):
        raise ClearingFileError(
            "a masked card number is digits and '*' only", lineno, _col(f, "pan_masked"), "pan"
        )
    if sum(ch.isdigit() for ch in pan) > 10:
        raise ClearingFileError("more than 10 digits of a card number: a clearing file carries masked card numbers only "
                                "(first 6, last 4)", lineno, _col(f, "pan_masked"), "pan")  # fmt: skip
    if not f["processing_code"].startswith(("00", "20")):
        raise ClearingFileError(f"processing code {f['processing_code']} is not a financial debit (00…) or credit (20…)",
                                lineno, _col(f, "processing_code"), "processing_code")  # fmt: skip
    if f["kind"] not in KIND_NAMES:
        raise ClearingFileError(
            f"record kind {f['kind']!r}: A (authorisation) or V (advice)", lineno, _col(f, "kind"), "kind"
        )
    if f["stand_in"] not in ("Y", "N"):
        raise ClearingFileError(
            f"stand-in flag {f['stand_in']!r}: Y or N", lineno, _col(f, "stand_in"), "stand_in"
        )
    if f["card_kind"] and f["card_kind"] not in CARD_KINDS:
        raise ClearingFileError(f"card kind {f['card_kind']!r}: one of {', '.join(CARD_KINDS)}", lineno,
                                _col(f, "card_kind"), "card_kind")  # fmt: skip
    for attr in ("stan", "rrn", "terminal_id", "merchant_id", "response_code", "mti"):
        if " " in f[attr]:
            raise ClearingFileError("spaces inside a value", lineno, _col(f, attr), attr)
    values: dict[str, Any] = {c.attr: f[c.attr] for c in DETAIL if c.attr}
    values.update(amount=int(f["amount"]), kind=KIND_NAMES[f["kind"]], stand_in=f["stand_in"] == "Y")
    return ClearingRecord(**values)


def parse_clearing_file(data: bytes) -> ClearingFile:
    """The file's header, records and totals; :class:`ClearingFileError` for anything wrong."""
    if not data:
        raise ClearingFileError("the file is empty")
    bad = _BAD_BYTE.search(data)
    if bad is not None:
        i = bad.start()
        lineno, column = data.count(b"\n", 0, i) + 1, i - (data.rfind(b"\n", 0, i) + 1) + 1
        raise ClearingFileError(f"byte 0x{data[i]:02x} is not printable ASCII", lineno, column)
    if not data.endswith(b"\n"):
        raise ClearingFileError("the last line has no line end: the file is cut short", data.count(b"\n") + 1)
    text = data.decode("ascii")
    lines = text.split("\n")[:-1]
    if not lines or not lines[0].startswith("H"):
        raise ClearingFileError("the first line must be the header (H)", 1, 1)
    h = _fields(lines[0], "H", 1)
    if h["format"] != FORMAT:
        raise ClearingFileError(f"format {h['format']!r}, expected {FORMAT}", 1, _col(h, "format"), "format")
    if h["version"] != VERSION:
        raise ClearingFileError(
            f"version {h['version']!r}, this reader knows {VERSION}", 1, _col(h, "version"), "version"
        )
    _check_date(h["business_date"], 1, _col(h, "business_date"), "business_date")
    records: list[ClearingRecord] = []
    where: list[int] = []
    trailer_at = None
    for n, line in enumerate(lines[1:], start=2):
        kind = line[:1]
        if trailer_at is not None:
            raise ClearingFileError("a line after the trailer", n, 1)
        if kind == "D":
            records.append(_detail(_fields(line, "D", n), n, h["business_date"]))
            where.append(n)
        elif kind == "T":
            trailer_at = n
        elif kind == "H":
            raise ClearingFileError("a second header", n, 1)
        else:
            raise ClearingFileError(f"unknown record type {kind!r}: H, D or T", n, 1)
    if trailer_at is None:
        raise ClearingFileError("no trailer (T): the file is incomplete", len(lines) + 1)
    t = _fields(lines[trailer_at - 1], "T", trailer_at)
    body = data[: sum(len(x) + 1 for x in lines[: trailer_at - 1])]
    digest = hashlib.sha256(body).hexdigest()
    if t["sha256"] != digest:
        raise ClearingFileError("the checksum does not match the file's content (altered or damaged)", trailer_at,
                                _col(t, "sha256"), "sha256")  # fmt: skip
    dn, dt, cn, ct = totals(records)
    for attr, have in (("record_count", len(records)), ("debit_count", dn), ("debit_total", dt), ("credit_count", cn),
                       ("credit_total", ct)):  # fmt: skip
        if int(t[attr]) != have:
            raise ClearingFileError(f"the trailer says {int(t[attr])}, the records add up to {have}", trailer_at,
                                    _col(t, attr), attr)  # fmt: skip
    return ClearingFile(business_date=h["business_date"], sender=h["sender"], receiver=h["receiver"], created=h["created"],
                        records=tuple(records), debit_count=dn, debit_total=dt, credit_count=cn, credit_total=ct,
                        sha256=digest, lines=tuple(where))  # fmt: skip


def read_clearing_file(path: str | Path) -> ClearingFile:
    return parse_clearing_file(Path(path).read_bytes())
