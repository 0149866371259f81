"""扫码 in the POS emulator against a real host over TCP (docs/decisions.md Q1–Q4): the cashier
picks "Scan code" and pastes the customer's code; the code that waits for the password is
answered 09, the emulator offers the query, the query approves it, and the slip prints
"扫码支付 UnionPay QR" with the code masked and no signature step."""

from __future__ import annotations

from posgate.terminal.tui import (
    CardScreen,
    ClientBackend,
    EntryScreen,
    MenuScreen,
    MessageScreen,
    PosApp,
    SlipScreen,
)

from .test_tui import SIZE, sign_in, type_digits, until
from .test_tui_host import host_port  # noqa: F401  (fixture)

WAITING = "6288000000000000029"


async def test_scanned_code_waits_for_the_password_then_the_query_prints_the_slip(tmp_path, host_port):  # noqa: F811
    from textual import events

    from posgate.terminal.client import Endpoint, TerminalSession
    from posgate.terminal.journal import Journal
    from posgate.terminal.state import TerminalConfig

    journal = Journal.open(tmp_path / "terminal", "10000001", TerminalConfig())
    journal.seed_demo_operators()
    session = TerminalSession.from_journal(journal, Endpoint("127.0.0.1", host_port, timeout=10))
    backend = ClientBackend(session)
    app = PosApp(backend, slip_dir=tmp_path / "slips")
    async with app.run_test(size=SIZE) as pilot:
        await sign_in(pilot, "01", "0000")  # operator sign-in against the journal's register
        await until(pilot, MenuScreen)
        await pilot.press("1")
        await until(pilot, EntryScreen)
        await type_digits(pilot, "3000")
        await until(pilot, CardScreen)
        await pilot.click("#entry-qr")
        entry = await until(pilot, EntryScreen)
        entry.post_message(events.Paste(WAITING))  # pasted, as a scanner or the clipboard gives it
        await pilot.pause()
        await pilot.press("enter")
        await until(pilot, MessageScreen, timeout=20)
        first = app.results[-1]
        assert first.response_code == "09" and first.error == "pending", first.message
        await pilot.press("enter")  # the 09 result
        await until(pilot, MessageScreen)  # waiting: Enter to query
        await pilot.press("enter")
        await until(pilot, MessageScreen, timeout=20)
        query = app.results[-1]
        assert query.operation == "qr_query" and query.approved, query.message
        await pilot.press("enter")
        slip = await until(pilot, SlipScreen, timeout=20)  # straight to the slip: no signature
        text = slip.text()
        assert "扫码支付 UnionPay QR" in text and "628800*********0029" in text and WAITING not in text
        assert "SIGNATURE" not in text
        logged = backend.state.txn(first.stan)
        assert logged is not None and logged.status == "approved" and logged.signature == ""
        await pilot.click("#slip-done")
        await until(pilot, MenuScreen)
