"""``posgate terminal sale AMOUNT --qr CODE`` and ``posgate terminal query`` as a subprocess
against the host pipeline (docs/decisions.md Q1–Q3): each demo code's outcome, the waiting
code settled by the query, refund and void of QR sales, bad input refused with exit code 2."""

from __future__ import annotations

from pathlib import Path

from .hostd import HostThread
from .test_cli import cli


def test_cli_scan_to_pay(tmp_path: Path) -> None:
    state = tmp_path / "s"
    with HostThread() as host:
        assert cli(state, host.port, "signon", "--json")[0] == 0
        for code, want, rc_want in (("6288000000000000011", "00", 0), ("134567890123456789", "00", 0),
                                    ("281234567890123456", "00", 0), ("6288000000000000037", "51", 1),
                                    ("6288000000000000045", "54", 1)):  # fmt: skip
            rc, r = cli(state, host.port, "sale", "12.00", "--qr", code, "--json")
            assert rc == rc_want and r["response_code"] == want, r
            assert code not in str(r) and r["pan_masked"].endswith(code[-4:])
        rc, r = cli(state, host.port, "sale", "30.00", "--qr", "6288000000000000029", "--json")
        assert rc == 2 and r["response_code"] == "09" and r["error"] == "pending", r
        waiting = r["stan"]
        rc, r = cli(state, host.port, "query", "--json")
        assert rc == 0 and r["approved"] and r["amount"] == 3000, r
        rc, r = cli(state, host.port, "query", "--json")  # nothing waits any more
        assert rc == 2 and "no QR payment is waiting" in r["message"], r
        rc, r = cli(state, host.port, "query", "--voucher", waiting, "--json")  # asked again: same answer
        assert rc == 0 and r["approved"], r
        rc, r = cli(state, host.port, "void", "--voucher", waiting, "--supervisor", "123456", "--json")
        assert rc == 0 and r["approved"], r
        # Bad input changes nothing: exit 2 and a clear message.
        for args in (("sale", "1.00", "--qr", "12345"), ("sale", "1.00", "--qr", "6288000000000000011", "--card",
                     "6212142000000000012"), ("sale", "1.00")):  # fmt: skip
            rc, r = cli(state, host.port, *args, "--json")
            assert rc == 2 and r["error"] == "refused", (args, r)
        rc, r = cli(state, host.port, "settle", "--supervisor", "123456", "--json")
        assert rc == 0 and (r["domestic_result"], r["foreign_result"]) == ("1", "1"), r
