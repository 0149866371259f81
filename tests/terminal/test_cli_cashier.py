"""What a cashier reads from ``posgate terminal ...`` after each outcome, and how the CLI
refuses bad input — as a subprocess against the test host (tests/terminal/hostd.py)."""

from __future__ import annotations

from pathlib import Path

from .hostd import HostThread
from .test_cli import OK, _signature_png, cli


def test_reprint_of_an_e_signed_slip_says_signed(tmp_path: Path) -> None:
    with HostThread() as host:
        state = tmp_path / "s"
        png = tmp_path / "sig.png"
        _signature_png(png)
        assert cli(state, host.port, "signon")[0] == 0
        rc, r = cli(
            state,
            host.port,
            "sale",
            "3.21",
            "--card",
            OK,
            "--pin",
            "123456",
            "--signature",
            str(png),
            "--json",
        )
        assert rc == 0 and r["approved"], r
        rc, out = cli(state, host.port, "reprint")
        assert rc == 0 and "已电子签名 E-SIGNED" in out and "UNSIGNED" not in out, out
        assert "重打印 REPRINT" in out and "621214*********0012" in out and OK not in out
        rc, out = cli(state, host.port, "reprint", "--voucher", r["stan"])
        assert rc == 0 and "E-SIGNED" in out and "UNSIGNED" not in out, out
        # An unsigned sale still reprints as unsigned: the mark follows the journal, not a default.
        rc, r2 = cli(state, host.port, "sale", "1.00", "--card", OK, "--pin", "123456", "--json")
        rc, out = cli(state, host.port, "reprint", "--voucher", r2["stan"])
        assert rc == 0 and "未签名 UNSIGNED" in out and "E-SIGNED" not in out, out
        # After settlement the transaction is reprinted from the settled batch, still signed.
        assert cli(state, host.port, "settle", "--supervisor", "123456")[0] == 0
        rc, out = cli(state, host.port, "reprint", "--voucher", r["stan"])
        assert rc == 0 and "E-SIGNED" in out and "UNSIGNED" not in out, out


# ------------------------------------------------------------------ messages after each outcome

FORETOLD = ("将被冲正", "will be reversed")


def _answer_once(code: str, *, mti: str = "0200", mac: bool = False):  # noqa: ANN202 - a test hook
    """A rewrite hook: the first reply to an ``mti`` request gets 39 = ``code`` (without a MAC
    unless ``mac``); later replies are the pipeline's own."""
    from posgate.dialect.cup import CODEC

    done: list[bool] = []

    def rewrite(request: bytes, reply: bytes) -> bytes:
        req = CODEC.decode(request)
        if done or req.mti != mti:
            return reply
        done.append(True)
        msg = CODEC.decode(reply)
        msg = msg.with_fields({39: code, 64: None})
        assert not mac
        return CODEC.encode(msg)

    return rewrite


def _next_stan(state: Path, port: int) -> str:
    """The STAN the next request will carry (the first sign-on also fetched IC parameters)."""
    rc, j = cli(state, port, "journal", "--json")
    return f"{int(j['status']['last_stan']) + 1:06d}"


def test_approved_after_a_make_up_sign_on_never_says_it_will_be_reversed(tmp_path: Path) -> None:
    """Response A0 without a MAC: sign on again, reverse the first attempt, retry: approved.
    The cashier reads approved and nothing about a reversal to come (it is done)."""
    with HostThread() as host:
        state = tmp_path / "s"
        assert cli(state, host.port, "signon")[0] == 0
        host.rewrite = _answer_once("A0")
        rc, out = cli(state, host.port, "sale", "5.00", "--card", OK, "--pin", "123456")
        assert rc == 0 and out.startswith("交易成功 Approved"), out
        assert not any(p in out for p in FORETOLD) and "冲正未完成" not in out, out
        rc, j = cli(state, host.port, "journal", "--json")
        assert j["status"]["pending_reversal"] is None
        host.rewrite = _answer_once("22")
        rc, r = cli(state, host.port, "sale", "6.00", "--card", OK, "--pin", "123456", "--json")
        assert rc == 0 and r["approved"] and r["outcome"] == "approved" and r["reversal_pending"] is None, r
        assert not any(p in n for n in r["notices"] for p in FORETOLD), r


def test_a_decline_without_a_mac_says_plainly_that_a_reversal_is_pending(tmp_path: Path) -> None:
    with HostThread() as host:
        state = tmp_path / "s"
        assert cli(state, host.port, "signon")[0] == 0
        stan = _next_stan(state, host.port)  # after the sign-on and its IC parameter download
        host.rewrite = _answer_once("51")
        rc, out = cli(state, host.port, "sale", "5.00", "--card", OK, "--pin", "123456")
        assert rc == 1 and out.startswith("交易拒绝 Declined"), out
        assert f"冲正未完成：凭证号 {stan}" in out and f"reversal pending: voucher {stan}" in out, out
        # The next sale sends the reversal first; approved, nothing pending any more.
        rc, out = cli(state, host.port, "sale", "5.00", "--card", OK, "--pin", "123456")
        assert rc == 0 and out.startswith("交易成功 Approved") and "冲正未完成" not in out, out


def test_no_answer_is_a_communication_failure_with_the_reversal_said_once(tmp_path: Path) -> None:
    with HostThread() as host:
        state = tmp_path / "s"
        assert cli(state, host.port, "signon")[0] == 0
        stan = _next_stan(state, host.port)
        host.mute = True
        rc, out = cli(state, host.port, "sale", "3.00", "--card", OK, "--pin", "123456", timeout=0.5)
        assert rc == 2 and out.startswith("通讯失败 Communication failure"), out
        assert f"冲正未完成：凭证号 {stan}" in out, out
        port = host.port
    # The host is gone: nothing left, so nothing to reverse — and no claim that anything will be.
    rc, out = cli(state, port, "sale", "3.00", "--card", OK, "--pin", "123456", timeout=0.5)
    assert rc == 2 and out.startswith("通讯失败 Communication failure"), out


def test_operator_lock_times_are_the_terminals_local_time(tmp_path: Path) -> None:
    import re
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    state = tmp_path / "s"
    for _ in range(3):
        rc, out = cli(state, 9, "operator", "signin", "01", "--password", "9999")
    rc, out = cli(state, 9, "operator", "list")
    m = re.search(r"01 operator locked until (\S+ \S+) \(Asia/Shanghai\)", out)
    assert rc == 0 and m, out
    shown = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    assert 0 < (shown - datetime.now(UTC)).total_seconds() <= 10 * 60 + 5  # the lock, in local time


def test_text_settle_prints_the_totals_as_the_slip_does(tmp_path: Path) -> None:
    import re

    with HostThread() as host:
        state = tmp_path / "s"
        assert cli(state, host.port, "signon")[0] == 0
        stan = int(_next_stan(state, host.port))
        for amount in ("12.34", "7.66"):
            assert cli(state, host.port, "sale", amount, "--card", OK, "--pin", "123456")[0] == 0
        rc, out = cli(state, host.port, "settle", "--supervisor", "123456")
        assert rc == 0 and out.startswith("交易成功 Approved"), out
        assert (
            "结算总计单 SETTLEMENT SLIP" in out and "内卡 CUP CARDS" in out and "外卡 FOREIGN CARDS" in out
        ), out
        assert re.search(r"借记 DEBIT\s+2\s+20\.00", out) and re.search(r"贷记 CREDIT\s+0\s+0\.00", out), out
        assert (
            "对账平 BALANCED" in out and "批上送 batch upload: 0" in out and "新批次 new batch: 000002" in out
        ), out
        assert f"未签名 unsigned: {stan:06d}, {stan + 1:06d}" in out, out


def test_the_slip_names_the_issuing_bank_not_the_organisation_code_and_bin(tmp_path: Path) -> None:
    """The host answers field 44.1 ``CUP621214`` for the demo debit card (unchanged on the wire);
    the printed slip says who issued the card, with its institution code, as a CUP slip does."""
    with HostThread() as host:
        state = tmp_path / "s"
        assert cli(state, host.port, "signon")[0] == 0
        rc, r = cli(state, host.port, "sale", "2.00", "--card", OK, "--pin", "123456", "--json")
        assert rc == 0 and r["approved"], r
        rc, out = cli(state, host.port, "reprint")
        assert rc == 0 and "CUP621214" not in out, out
        lines = out.splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith("发卡行(ISSUER)"))
        assert "演示银行" in "\n".join(lines[at:at + 2]) and "00049990" in "\n".join(lines[at:at + 3]), out
