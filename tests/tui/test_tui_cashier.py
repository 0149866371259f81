"""The emulator as a cashier meets it: operator sign-in with number and password (locked after
three wrong ones, by the journal's rule), supervisor functions behind 00's password, result
titles that follow the outcome, and Enter on a focused button pressing that button."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from posgate.terminal.operations.base import Input
from posgate.terminal.tui import (
    ChoiceScreen,
    EntryScreen,
    MenuScreen,
    MessageScreen,
    PosApp,
    SlipScreen,
    StubBackend,
    build_app,
)

from .test_tui import SIZE, sale, seed_sale, sign_in, type_digits, until


def _settings(state: Path, port: int = 9, timeout: float = 5.0) -> Any:
    from posgate.terminal.cli import Settings

    return Settings(
        state, "127.0.0.1", port, "10000001", None, None, "6000030000", "603100000000", None, None, timeout
    )


def heading(screen: Any) -> str:
    return str(screen.query_one("#heading").render())


def message(screen: Any) -> str:
    return str(screen.query_one("#message").render())


async def test_the_tui_starts_with_operator_sign_in_and_locks_after_three_wrong_passwords(
    tmp_path: Path,
) -> None:
    app = build_app(_settings(tmp_path / "s"), lang="en")
    async with app.run_test(size=SIZE) as pilot:
        login = await until(pilot, EntryScreen)
        assert "Operator sign-in" in str(login.query_one("#title").render()) and app.operator == "--"
        await pilot.press("escape")  # there is nothing behind the sign-in
        await pilot.pause()
        assert app.screen is login and not login.query("#cancel")
        # The system administrator may not trade.
        await sign_in(pilot, "99", "12345678")
        msg = await until(pilot, MessageScreen)
        assert "Sign-in refused" in heading(msg) and "system administrator" in message(msg)
        await pilot.press("enter")
        # Three wrong passwords for 01: two say how many tries are left, the third locks.
        for left in ("2 tries left", "1 tries left", "locked"):
            await sign_in(pilot, "01", "9999")
            msg = await until(pilot, MessageScreen)
            assert "Sign-in refused" in heading(msg) and left in message(msg), message(msg)
            await pilot.press("enter")
        # Locked: even the right password is refused, and the time is the terminal's local time.
        await sign_in(pilot, "01", "0000")
        msg = await until(pilot, MessageScreen)
        assert "locked until" in message(msg) and "Asia/Shanghai" in message(msg), message(msg)
        await pilot.press("enter")
        # Another operator signs in; the menu is now the operator's.
        await sign_in(pilot, "02", "0000")
        await until(pilot, MenuScreen)
        assert app.operator == "02" and app.backend.session.journal.get("operator") == "02"
        assert "Op 02" in str(app.screen.query_one("#status").render())


async def test_supervisor_functions_ask_for_the_supervisor_password() -> None:
    backend = StubBackend()
    await seed_sale(backend, 1000)
    app = PosApp(backend, lang="en")
    async with app.run_test(size=SIZE) as pilot:
        await sign_in(pilot, "01", "0000")
        await until(pilot, MenuScreen)
        assert app.operator == "01"
        await pilot.press("6")  # settlement
        pwd = await until(pilot, EntryScreen)
        assert "Supervisor password" in str(pwd.query_one("#prompt").render())
        await type_digits(pilot, "0000")  # a cashier's password is not the supervisor's
        msg = await until(pilot, MessageScreen)
        assert "Wrong password" in heading(msg)
        await pilot.press("enter")
        await until(pilot, MenuScreen)
        assert [i.operation for i in backend.inputs] == ["sale"] and backend.state.batch == "000001"
        await pilot.press("5")  # pre-auth menu → pre-auth void: a supervisor function too
        await until(pilot, ChoiceScreen)
        await pilot.press("2")
        pwd = await until(pilot, EntryScreen)
        assert "Supervisor password" in str(pwd.query_one("#prompt").render())


async def test_enter_on_a_focused_save_pdf_saves_the_pdf(tmp_path: Path) -> None:
    backend = StubBackend()
    app = PosApp(backend, slip_dir=tmp_path, login=False)
    async with app.run_test(size=SIZE) as pilot:
        await sale(pilot)
        await until(pilot, MessageScreen)
        await pilot.press("enter")
        await pilot.click("#sig-skip")
        slip = await until(pilot, SlipScreen)
        assert app.focused is slip.query_one("#slip-next")  # Enter's default: the next copy
        slip.query_one("#slip-pdf").focus()
        await pilot.press("enter")
        await pilot.pause()
        assert list(tmp_path.glob("slip-*.pdf")) and slip.index == 0  # saved, still the first copy
        await pilot.press("tab")  # to Done? whichever: Enter presses what has the focus
        slip.query_one("#slip-next").focus()
        await pilot.press("enter")
        await pilot.pause()
        assert slip.index == 1 and app.focused is slip.query_one("#slip-done")
        await pilot.press("enter")
        await until(pilot, MenuScreen)


async def test_enter_on_a_focused_cancel_cancels_the_entry() -> None:
    backend = StubBackend()
    app = PosApp(backend, login=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, MenuScreen)
        await pilot.press("1")
        entry = await until(pilot, EntryScreen)
        await pilot.press("5", "0", "0")
        entry.query_one("#cancel").focus()
        await pilot.press("enter")
        await until(pilot, MenuScreen)
        assert backend.inputs == []


# ------------------------------------------------------------------ result titles per outcome


async def test_a_refusal_by_the_terminal_is_not_called_declined() -> None:
    backend = StubBackend()
    app = PosApp(backend, lang="en", login=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, MenuScreen)
        app.run_worker(app.process(Input("void", voucher="000099")))
        msg = await until(pilot, MessageScreen)
        assert "Not sent" in heading(msg) and "Declined" not in heading(msg)


async def _signed_on_app(tmp_path: Path, port: int, timeout: float = 5.0) -> PosApp:
    app = build_app(_settings(tmp_path / "s", port, timeout), lang="en")
    result = await app.backend.run(Input("sign_on"))
    assert result.approved, result.message
    return app


async def test_no_answer_is_titled_communication_failure_and_says_the_reversal_is_pending(
    tmp_path: Path,
) -> None:
    from terminal.hostd import HostThread

    with HostThread() as host:
        app = await _signed_on_app(tmp_path, host.port, timeout=0.5)
        host.mute = True
        async with app.run_test(size=SIZE) as pilot:
            await sign_in(pilot, "01", "0000")
            await sale(pilot, amount="300")
            msg = await until(pilot, MessageScreen, timeout=20)
            assert "Communication failure" in heading(msg) and "Declined" not in heading(msg), heading(msg)
            stan = app.results[-1].stan
            assert f"reversal pending: voucher {stan}" in message(msg), message(msg)
            assert app.backend.state.reversal is not None and app.backend.state.reversal.stan == stan
            await pilot.press("enter")
            await until(pilot, MenuScreen)


async def test_approved_after_a_make_up_sign_on_says_nothing_of_a_reversal(tmp_path: Path) -> None:
    from terminal.hostd import HostThread
    from terminal.test_cli_cashier import FORETOLD, _answer_once

    with HostThread() as host:
        app = await _signed_on_app(tmp_path, host.port)
        host.rewrite = _answer_once("A0")
        async with app.run_test(size=SIZE) as pilot:
            await sign_in(pilot, "01", "0000")
            await sale(pilot, amount="500")
            msg = await until(pilot, MessageScreen, timeout=20)
            assert "Approved" in heading(msg), heading(msg)
            assert not any(p in message(msg) for p in FORETOLD) and "reversal pending" not in message(msg), (
                message(msg)
            )
            assert app.results[-1].approved and app.backend.state.reversal is None


async def test_sign_off_hands_the_terminal_back_to_operator_sign_in() -> None:
    backend = StubBackend()
    app = PosApp(backend, lang="en")
    async with app.run_test(size=SIZE) as pilot:
        await sign_in(pilot, "01", "0000")
        await until(pilot, MenuScreen)
        await pilot.press("8")
        msg = await until(pilot, MessageScreen)
        assert "Done" in heading(msg) and "Approved" not in heading(msg)  # no money moved
        await pilot.press("enter")
        login = await until(pilot, EntryScreen)
        assert "Operator sign-in" in str(login.query_one("#title").render()) and app.operator == "--"
        await sign_in(pilot, "02", "0000")
        await until(pilot, MenuScreen)
        assert app.operator == "02"


async def test_settlement_tells_the_cashier_what_was_settled_unsigned() -> None:
    backend = StubBackend()
    voucher = await seed_sale(backend, 1000)  # never signed
    app = PosApp(backend, lang="en", login=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, MenuScreen)
        await pilot.press("6")
        await until(pilot, EntryScreen)
        await type_digits(pilot, "123456")
        await until(pilot, MessageScreen)
        await pilot.press("enter")
        await until(pilot, SlipScreen)
        await pilot.press("enter")  # Done has the focus
        msg = await until(pilot, MessageScreen)
        assert f"Settled unsigned: {voucher}" in message(msg), message(msg)


async def test_the_stub_locks_an_operator_after_three_wrong_passwords_too() -> None:
    backend = StubBackend()
    app = PosApp(backend, lang="en")
    async with app.run_test(size=SIZE) as pilot:
        for left in ("2 tries left", "1 tries left", "locked"):
            await sign_in(pilot, "01", "9999")
            msg = await until(pilot, MessageScreen)
            assert left in message(msg), message(msg)
            await pilot.press("enter")
        await sign_in(pilot, "01", "0000")
        msg = await until(pilot, MessageScreen)
        assert "locked until" in message(msg) and app.operator == "--"


async def test_f2_on_an_entry_screen_translates_its_prompt_too() -> None:
    app = PosApp(StubBackend(), lang="en")
    async with app.run_test(size=SIZE) as pilot:
        login = await until(pilot, EntryScreen)
        assert "Operator number" in str(login.query_one("#prompt").render())
        await pilot.press("f2")
        await pilot.pause()
        assert "请输入操作员号" in str(app.screen.query_one("#prompt").render())
        assert "操作员签到" in str(app.screen.query_one("#title").render())
