"""The clearing file: what is written reads back the same; a damaged or hostile file is refused
with the line, column and field of the fault, and never half-read."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posgate.clearing.file import (
    DETAIL,
    ClearingFileError,
    ClearingRecord,
    format_clearing_file,
    parse_clearing_file,
    read_clearing_file,
    write_clearing_file,
)

DATE = "20261203"


def rec(**kw: object) -> ClearingRecord:
    base: dict[str, object] = dict(
        business_date=DATE, acquirer_id="00049990", stan="000101", transmission_time="1203101010",
        pan_masked="621214*********0012", amount=12_34, mti="0200", processing_code="000000", terminal_id="10000001",
        merchant_id="898100012340001", rrn="000000000101", response_code="00", auth_code="123456", card_kind="debit",
    )  # fmt: skip
    base.update(kw)
    return ClearingRecord(**base)  # type: ignore[arg-type]


digits = lambda n: st.text("0123456789", min_size=n, max_size=n)  # noqa: E731
word = lambda n: st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=n)  # noqa: E731
optional = lambda n: st.one_of(st.just(""), word(n))  # noqa: E731

records = st.builds(
    ClearingRecord,
    business_date=st.just(DATE),
    acquirer_id=word(11),
    stan=digits(6),
    transmission_time=st.sampled_from(["1203000000", "0101235959", "1231120000"]),
    pan_masked=st.sampled_from(["621214*********0012", "622588******0010", "****"]),
    amount=st.integers(0, 999_999_999_999),
    mti=st.sampled_from(["0200", "0220"]),
    processing_code=st.sampled_from(["000000", "200000", "003000"]),
    terminal_id=word(8),
    merchant_id=word(15),
    rrn=word(12),
    response_code=st.sampled_from(["00", "10", "A2", "51"]),
    forwarding_id=optional(11),
    mcc=optional(4),
    condition_code=optional(2),
    auth_code=optional(6),
    original_stan=optional(6),
    entry_mode=optional(3),
    original_time=st.sampled_from(["", "1202235959"]),
    kind=st.sampled_from(["authorisation", "advice"]),
    stand_in=st.booleans(),
    card_kind=st.sampled_from(["", "debit", "credit", "foreign", "qr"]),
    original_rrn=optional(12),
    currency=st.just("156"),
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records, max_size=8))
def test_round_trip(rs: list[ClearingRecord]) -> None:
    data = format_clearing_file(
        rs, business_date=DATE, sender="CUPNETWORK", receiver="00049990", created="20261204010203"
    )
    f = parse_clearing_file(data)
    assert list(f.records) == rs
    assert (f.business_date, f.sender, f.receiver, f.created) == (
        DATE,
        "CUPNETWORK",
        "00049990",
        "20261204010203",
    )
    assert f.debit_count + f.credit_count == len(rs)
    assert f.debit_total == sum(r.amount for r in rs if r.processing_code.startswith("00"))
    assert len({len(line) for line in data.decode().splitlines()[1:-1]}) <= 1  # fixed width


def test_write_and_read_a_file(tmp_path) -> None:
    path = tmp_path / "IND26120301ACOM"
    data = write_clearing_file(
        path, [rec(), rec(stan="000102", rrn="000000000102", processing_code="200000", amount=5)]
    )
    assert path.read_bytes() == data and not list(tmp_path.glob(".*part"))
    f = read_clearing_file(path)
    assert (f.debit_count, f.debit_total, f.credit_count, f.credit_total) == (1, 12_34, 1, 5)
    assert f.lines == (2, 3)


def _valid() -> bytes:
    return format_clearing_file(
        [rec(), rec(stan="000102", rrn="000000000102")], sender="CUPNETWORK", created="20261204000000"
    )


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_damage_is_refused_or_harmless(data: st.DataObject) -> None:
    """Flip, insert or delete bytes anywhere: the parser raises ClearingFileError (nothing
    else), or — when the change happens not to alter anything — returns the original records."""
    good = _valid()
    original = parse_clearing_file(good).records
    buf = bytearray(good)
    for _ in range(data.draw(st.integers(1, 3))):
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        at = data.draw(st.integers(0, max(0, len(buf) - 1)))
        if op == "flip" and buf:
            buf[at] = data.draw(st.integers(0, 255))
        elif op == "insert":
            buf.insert(at, data.draw(st.integers(0, 255)))
        elif op == "delete" and buf:
            del buf[at]
        elif op == "truncate":
            del buf[at:]
    try:
        f = parse_clearing_file(bytes(buf))
    except ClearingFileError as e:
        assert str(e)
        return
    assert f.records == original


@settings(max_examples=200)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_only_raise_clearing_file_error(blob: bytes) -> None:
    try:
        parse_clearing_file(blob)
    except ClearingFileError:
        pass


def _col(name: str) -> int:
    pos = 2  # "D" and the first space
    for c in DETAIL:
        if c.name == name:
            return pos + 1
        pos += c.width + 1
    raise KeyError(name)


def _refuse(data: bytes, *parts: str) -> ClearingFileError:
    with pytest.raises(ClearingFileError) as e:
        parse_clearing_file(data)
    for p in parts:
        assert p in str(e.value), str(e.value)
    return e.value


def _with_trailer(lines: list[str]) -> bytes:
    """Lines (header + details) with a trailer recomputed, as a careless writer would."""
    import hashlib

    from posgate.clearing.file import TRAILER, _line, totals

    body = "".join(x + "\n" for x in lines).encode()
    rs = parse_clearing_file(_valid()).records
    dn, dt, cn, ct = totals(rs)
    return body + _line("T", TRAILER, {"record_count": len(lines) - 1, "debit_count": dn, "debit_total": dt,
                                       "credit_count": cn, "credit_total": ct,
                                       "sha256": hashlib.sha256(body).hexdigest()}).encode()  # fmt: skip


def test_errors_name_line_column_and_field() -> None:
    lines = _valid().decode().splitlines()
    amount = _col("amount")
    bad = lines[:2] + [lines[2][: amount - 1] + "00000000012X" + lines[2][amount - 1 + 12 :]]
    e = _refuse(_with_trailer(bad), "line 3", f"column {amount} (amount)", "digits")
    assert (e.line, e.column, e.name) == (3, amount, "amount")

    full_pan = lines[:1] + [lines[1].replace("621214*********0012", "6212142000000000012")] + lines[2:3]
    _refuse(_with_trailer(full_pan), "line 2", f"column {_col('pan')} (pan)", "masked card numbers only")

    _refuse(_with_trailer([lines[0], lines[1][:-3]]), "line 2", "characters long")
    _refuse(_with_trailer([lines[0].replace("20261203", "20261232"), *lines[1:3]]), "line 1", "business_date")
    _refuse(_with_trailer([lines[0], lines[1].replace(" A N ", " X N ")]), "line 2", "(kind)")


def test_trailer_checks() -> None:
    good = _valid()
    text = good.decode()
    _refuse(good[: -len(text.splitlines()[-1]) - 1], "no trailer")
    _refuse(good.replace(b"0200 000000", b"0200 000001", 1), "checksum")
    _refuse(good + b"D extra\n", "after the trailer")
    _refuse(good[:-1], "cut short")
    _refuse(b"", "empty")
    _refuse(good.replace(b"\n", b"\r\n"), "0x0d", "line 1")
    t = text.splitlines()[-1]
    wrong_count = text.replace(t, "T 000000003" + t[11:]).encode()
    _refuse(wrong_count, "record_count", "trailer says 3", "add up to 2")


def test_writer_refuses_what_it_cannot_write() -> None:
    with pytest.raises(ValueError, match="amount"):
        format_clearing_file([rec(amount=-1)])
    with pytest.raises(ValueError, match="longer than"):
        format_clearing_file([rec(terminal_id="123456789")])
    with pytest.raises(ValueError, match="financial"):
        format_clearing_file([rec(processing_code="310000")])
    with pytest.raises(ValueError, match="business_date"):
        format_clearing_file([])
    with pytest.raises(ValueError, match="another business date"):
        format_clearing_file(
            [rec(), dataclasses.replace(rec(), business_date="20261204")], business_date=DATE
        )
    assert parse_clearing_file(format_clearing_file([], business_date=DATE)).records == ()
