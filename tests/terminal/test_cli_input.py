"""Bad input on the command line: a clear error naming the option, exit code 2, and nothing
changed in the terminal's journal (typer's CliRunner, in process; no host needed — the checks
refuse before anything is opened or sent)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from posgate.cli import app

OK = "6212142000000000012"
SUP = ("--supervisor", "123456")

BAD: list[tuple[list[str], str, str]] = [
    # (arguments after `posgate terminal --state S`, the option named, words of the message)
    (["--port", "70000", "signon"], "--port", "65535"),
    (["--port", "0", "echo"], "--port", ""),
    (["--port", "http", "echo"], "--port", ""),
    (["--host", "not a host", "echo"], "--host", "host name"),
    (["--tid", "123", "signon"], "--tid", "8 digits"),
    (["--tid", "1000000A", "signon"], "--tid", "8 digits"),
    (["--mid", "89810001234", "signon"], "--mid", "15 digits"),
    (["--tmk", "00112233", "signon"], "--tmk", "hex digits"),
    (["--tpdu", "60000300", "echo"], "--tpdu", "hex digits"),
    (["--header", "6031", "echo"], "--header", "12 digits"),
    (["--scheme", "002", "signon"], "--scheme", "001, 003 or 004"),
    (["--timeout", "-1", "echo"], "--timeout", ""),
    (["signon", "--scheme", "9"], "--scheme", "001, 003 or 004"),
    (["signon", "--operator", "1", "--password", "0000"], "--operator", "2 digits"),
    (["sale", "abc", "--card", OK], "amount", "not an amount"),
    (["sale", "nan", "--card", OK], "amount", "not an amount"),
    (["sale", "0", "--card", OK], "amount", "above 0.00"),
    (["sale", "--card", OK, "--", "-5"], "amount", "above 0.00"),
    (["sale", "1.234", "--card", OK], "amount", "two decimals"),
    (["sale", "1.00", "--card", "6212142000000000013"], "--card", "Luhn"),
    (["sale", "1.00", "--card", "62121420"], "--card", "12 to 19 digits"),
    (["sale", "1.00", "--card", OK, "--pin", "12"], "--pin", "4 to 12 digits"),
    (["sale", "1.00", "--card", OK, "--pin", "12ab56"], "--pin", "4 to 12 digits"),
    (["sale", "1.00", "--card", OK, "--entry", "wave"], "--entry", "swipe"),
    (["sale", "1.00", "--card", OK, "--signature", "/nonexistent.png"], "--signature", ""),
    (["void", "--voucher", "abc", *SUP], "--voucher", "1 to 6 digits"),
    (["void", "--voucher", "1234567", *SUP], "--voucher", "1 to 6 digits"),
    (["void", "--voucher", "000000", *SUP], "--voucher", "1 to 6 digits"),
    (["void", "--voucher", "1", "--supervisor", "abc"], "--supervisor", "4 to 12 digits"),
    (
        ["refund", "1.00", "--rrn", "12", "--date", "0302", "--card", OK, *SUP],
        "--rrn",
        "12 letters or digits",
    ),
    (["refund", "1.00", "--rrn", "000000000001", "--date", "1340", "--card", OK, *SUP], "--date", "MMDD"),
    (
        ["completion", "1.00", "--auth", "12", "--date", "0302", "--card", OK, *SUP],
        "--auth",
        "6 letters or digits",
    ),
    (["offline", "1.00", "--card", OK, "--kind", "bonus"], "--kind", "settlement"),
    (["offline", "--kind", "tip", "--voucher", "1", "--tip", "x"], "--tip", "not an amount"),
    (["signature", "--voucher", "x1", "--signature", "/nonexistent.png"], "--voucher", "1 to 6 digits"),
    (["reprint", "--voucher", "abc"], "--voucher", "1 to 6 digits"),
    (["operator", "signin", "1", "--password", "0000"], "code", "2 digits"),
    (["operator", "add", "03", "--password", "12", "--admin", "12345678"], "--password", "4 to 12 digits"),
    (
        ["operator", "add", "03", "--password", "1234", "--role", "boss", "--admin", "12345678"],
        "--role",
        "operator",
    ),
    (["tui", "--operator", "abc"], "--operator", "2 digits"),
    (["tui", "--lang", "fr"], "--lang", "zh or en"),
]


def _run(state: Path, *args: str) -> tuple[int, str]:
    r = CliRunner().invoke(
        app, ["terminal", "--state", str(state), *args], env={"COLUMNS": "400", "NO_COLOR": "1"}
    )
    return r.exit_code, r.output


def _fingerprint(state: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(state.glob("*"))}


@pytest.mark.parametrize(("args", "option", "words"), BAD, ids=[" ".join(a) for a, _, _ in BAD])
def test_bad_input_is_refused_clearly_with_exit_2_and_changes_nothing(
    tmp_path: Path, args: list[str], option: str, words: str
) -> None:
    state = tmp_path / "s"
    code, out = _run(state, "operator", "list")  # the journal exists (demo operators)
    assert code == 0 and "01 operator" in out, out
    before = _fingerprint(state)
    code, out = _run(state, *args)
    assert code == 2, out
    assert "Traceback" not in out and f"Invalid value for '{option}'" in out, out
    assert words in out, out
    assert _fingerprint(state) == before  # nothing written: not even a new journal for a bad --tid


def test_a_bad_tid_creates_no_journal(tmp_path: Path) -> None:
    code, out = _run(tmp_path / "s", "--tid", "123", "signon")
    assert code == 2 and "签到应答不符" not in out and not (tmp_path / "s").exists()


def test_good_input_is_normalised() -> None:
    from posgate.terminal import cli_checks as checks

    assert checks.voucher("12") == "000012"
    assert checks.card_number("6212 1420 0000 0000 012") == OK
    assert checks.tmk("159d86c7c1f779ea29f77a6858e0da2a") == "159D86C7C1F779EA29F77A6858E0DA2A"
    assert checks.host("::1") == "::1" and checks.host("pos.example.cn") == "pos.example.cn"
    assert checks.month_day("0229") == "0229"
