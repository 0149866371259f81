"""The POS emulator driven headlessly with Textual's pilot: menu → amount → card → PIN →
result → signature (mouse) → slip, against the in-memory stub."""

from __future__ import annotations

import asyncio
from typing import Any

from posgate.terminal.operations.base import Input
from posgate.terminal.tui import (
    DEMO_CARDS,
    CardScreen,
    ChoiceScreen,
    EntryScreen,
    MenuScreen,
    MessageScreen,
    PosApp,
    SignatureCanvas,
    SignatureScreen,
    SlipScreen,
    StubBackend,
    make_card,
    status_of,
)

SIZE = (100, 40)


async def until(pilot: Any, screen_type: type | tuple[type, ...], timeout: float = 5.0) -> Any:
    """Wait until the app shows a screen of ``screen_type`` and return it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        await pilot.pause()
        if isinstance(pilot.app.screen, screen_type):
            return pilot.app.screen
    raise AssertionError(f"expected {screen_type}, on {type(pilot.app.screen).__name__}")


async def type_digits(pilot: Any, digits: str) -> None:
    """Key a value into the keypad screen and confirm. The key events themselves are exercised
    by the sale test (``press``); elsewhere the value goes straight to the screen's keypad,
    which keeps the suite fast on a busy machine."""
    screen = pilot.app.screen
    assert isinstance(screen, EntryScreen), type(screen).__name__
    for d in digits:
        screen.type_key(d)
    screen.type_key("enter")
    await pilot.pause()


async def sign_in(pilot: Any, code: str, password: str) -> None:
    """The operator sign-in the TUI starts with: number, then password (on the keypad)."""
    await until(pilot, EntryScreen)
    pilot.app.screen.value = ""
    await type_digits(pilot, code)
    await until(pilot, EntryScreen)
    await type_digits(pilot, password)


async def draw_signature(pilot: Any) -> None:
    await pilot.mouse_down("#canvas", offset=(3, 2))
    for x, y in ((8, 6), (14, 3), (20, 8), (26, 2), (32, 7)):
        await pilot.hover("#canvas", offset=(x, y))
    await pilot.mouse_up("#canvas", offset=(32, 7))
    await pilot.mouse_down("#canvas", offset=(40, 3))
    for x, y in ((44, 8), (50, 4)):
        await pilot.hover("#canvas", offset=(x, y))
    await pilot.mouse_up("#canvas", offset=(50, 4))


async def seed_sale(backend: StubBackend, amount: int, card_index: int = 0) -> str:
    """A sale run straight on the backend (no screens): for tests about what comes after."""
    card = make_card(DEMO_CARDS[card_index], "swipe", "123456", amount)
    result = await backend.run(Input("sale", amount=amount, card=card))
    assert result.approved
    return result.stan


async def sale(pilot: Any, amount: str = "1234", card_index: int = 0, pin: str = "123456", keys: bool = False) -> None:
    """Menu → amount → card (swipe) → PIN; ``keys`` types on the keyboard, else on the keypad."""
    await until(pilot, MenuScreen)
    await pilot.press("1")
    await until(pilot, EntryScreen)
    if keys:
        await pilot.press(*amount, "enter")
    else:
        await type_digits(pilot, amount)
    cards = await until(pilot, CardScreen)
    cards.query_one("#cards").highlighted = card_index
    await pilot.click("#entry-swipe")
    await until(pilot, EntryScreen)  # PIN
    if keys:
        await pilot.press(*pin, "enter")
    else:
        await type_digits(pilot, pin)


async def test_sale_from_menu_to_slip_with_a_mouse_signature(tmp_path):
    backend = StubBackend()
    app = PosApp(backend, slip_dir=tmp_path, login=False)
    async with app.run_test(size=SIZE) as pilot:
        await sale(pilot, keys=True)
        result = await until(pilot, MessageScreen)
        assert "00" in str(result.query_one("#message").render())
        await pilot.press("enter")
        sig_screen = await until(pilot, SignatureScreen)
        await draw_signature(pilot)
        canvas = sig_screen.query_one(SignatureCanvas)
        assert len(canvas.pad.strokes) == 2 and len(canvas.pad.strokes[0]) == 6
        await pilot.click("#sig-ok")
        slip_screen = await until(pilot, SlipScreen)
        text = slip_screen.text()
        assert "POS签购单" in text and "商户存根" in text
        assert "621214*********0012 /S" in text and "6212142000000000012" not in text
        assert "RMB 12.34" in text and "[已电子签名 E-SIGNED]" in text
        # The signature went up as a JBIG of at most 999 bytes, for the sale's STAN.
        sale_in, sig_in = backend.inputs[-2], backend.inputs[-1]
        assert sale_in.operation == "sale" and sale_in.amount == 1234 and sale_in.card.pin == "123456"
        assert sig_in.operation == "signature" and 0 < len(sig_in.signature) <= 999
        assert sig_in.voucher == app.results[0].stan
        assert backend.state.txns[-1].signature == "uploaded"
        # Next copy: the cardholder's, then done and back at the menu.
        await pilot.press("enter")
        await pilot.pause()
        assert "持卡人存根" in app.screen.text()
        await pilot.click("#slip-pdf")
        assert list(tmp_path.glob("slip-*.pdf"))
        await pilot.click("#slip-done")
        await until(pilot, MenuScreen)
        st = status_of(backend)
        assert st.signed_on and st.stan == "000002" and st.unsigned == 0


async def test_manual_entry_of_a_lost_card_is_declined_and_prints_nothing():
    backend = StubBackend()
    app = PosApp(backend, lang="en", login=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, MenuScreen)
        await pilot.press("1")
        await until(pilot, EntryScreen)
        await type_digits(pilot, "5000")
        await until(pilot, CardScreen)
        await pilot.click("#entry-manual")
        await until(pilot, EntryScreen)
        await type_digits(pilot, "6217000000000000046")  # lost card
        await until(pilot, EntryScreen)
        await type_digits(pilot, "3012")
        await until(pilot, EntryScreen)  # PIN: none
        await pilot.press("enter")
        msg = await until(pilot, MessageScreen)
        assert "41" in str(msg.query_one("#message").render())
        assert "Declined" in str(msg.query_one("#heading").render())
        card = backend.inputs[-1].card
        assert card.entry == "manual" and card.pan == "6217000000000000046" and card.expiry == "3012" and not card.pin
        await pilot.press("enter")
        await until(pilot, MenuScreen)
        assert not app.results[0].approved


async def test_unsigned_sale_is_made_up_from_admin():
    backend = StubBackend()
    voucher = await seed_sale(backend, 500)  # approved, never signed
    app = PosApp(backend, login=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, MenuScreen)
        assert status_of(backend).unsigned == 1
        # Admin (sysadmin 99) → make-up signature (补签) → the unsigned transaction.
        await pilot.press("0")
        await until(pilot, EntryScreen)
        await type_digits(pilot, "12345678")
        await until(pilot, ChoiceScreen)
        await pilot.press("1")
        choices = await until(pilot, ChoiceScreen)  # the unsigned transactions
        assert choices.choices[0][0] == voucher
        await pilot.press("1")
        await until(pilot, SignatureScreen)
        await pilot.click("#sig-sample")
        await pilot.click("#sig-ok")
        slip = await until(pilot, SlipScreen)
        assert "补签 MAKE-UP SIGNATURE" in slip.text() and "RMB 5.00" in slip.text()
        await pilot.click("#slip-done")
        await until(pilot, MenuScreen)
        assert status_of(backend).unsigned == 0
        assert backend.inputs[-1].operation == "signature" and backend.inputs[-1].voucher == voucher


async def test_void_with_supervisor_password_and_reprint():
    backend = StubBackend()
    voucher = await seed_sale(backend, 2000)
    app = PosApp(backend, lang="en", login=False)
    async with app.run_test(size=SIZE) as pilot:
        # Void: wrong password first.
        await until(pilot, MenuScreen)
        await pilot.press("2")
        await until(pilot, EntryScreen)
        await type_digits(pilot, "999999")
        msg = await until(pilot, MessageScreen)
        assert "Wrong password" in str(msg.query_one("#heading").render())
        await pilot.press("enter")
        await until(pilot, MenuScreen)
        await pilot.press("2")
        await until(pilot, EntryScreen)
        await type_digits(pilot, "123456")
        await until(pilot, EntryScreen)
        await type_digits(pilot, voucher)
        await until(pilot, MessageScreen)  # the original transaction
        await pilot.press("enter")
        await until(pilot, CardScreen)
        await pilot.click("#entry-swipe")
        result = await until(pilot, MessageScreen)
        assert "Approved" in str(result.query_one("#heading").render())
        await pilot.press("enter")
        await until(pilot, SignatureScreen)
        await pilot.click("#sig-skip")  # the cardholder walks away: unsigned
        slip = await until(pilot, SlipScreen)
        assert "SALE VOID" in slip.text() and "RMB -20.00" in slip.text() and "UNSIGNED" in slip.text()
        assert f"ORIG VOUCHER(原凭证号):{voucher}" in slip.text()
        await pilot.click("#slip-done")
        # Reprint the last slip.
        await until(pilot, MenuScreen)
        await pilot.press("9")
        await until(pilot, ChoiceScreen)
        await pilot.press("1")
        slip = await until(pilot, SlipScreen)
        assert "REPRINT" in slip.text() and "SALE VOID" in slip.text()
        await pilot.click("#slip-done")
        await until(pilot, MenuScreen)


async def test_settlement_slip_and_language_toggle():
    backend = StubBackend()
    await seed_sale(backend, 1000)
    await seed_sale(backend, 250, card_index=2)  # foreign card
    app = PosApp(backend, login=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, MenuScreen)
        assert "已签到" in str(app.screen.query_one("#status").render())
        await pilot.press("f2")
        await pilot.pause()
        assert app.lang == "en"
        assert "Sale" in str(app.screen.query_one("#menu-sale").label)
        assert "Batch 000001" in str(app.screen.query_one("#status").render())
        await pilot.press("6")
        await until(pilot, EntryScreen)  # settlement is a supervisor function
        await type_digits(pilot, "123456")
        await until(pilot, MessageScreen)
        await pilot.press("enter")
        slip = await until(pilot, SlipScreen)
        text = slip.text()
        assert "SETTLEMENT SLIP" in text and "BALANCED" in text
        assert "10.00" in text and "2.50" in text
        await pilot.click("#slip-done")
        msg = await until(pilot, MessageScreen)  # the two sales were settled unsigned: said so
        assert "Settled unsigned: 000002, 000003" in str(msg.query_one("#message").render())
        await pilot.press("enter")
        await until(pilot, MenuScreen)
        assert backend.state.batch == "000002" and not backend.state.txns
        # Reprint the settlement slip.
        await pilot.press("9")
        await until(pilot, ChoiceScreen)
        await pilot.press("3")
        slip = await until(pilot, SlipScreen)
        assert "REPRINT" in slip.text() and "000001" in slip.text()


async def test_escape_cancels_a_flow_before_anything_is_sent():
    backend = StubBackend()
    app = PosApp(backend, login=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, MenuScreen)
        await pilot.press("1")
        entry = await until(pilot, EntryScreen)
        await pilot.press("1", "2")
        assert entry.shown() == "RMB 0.12"
        await pilot.press("escape")
        await until(pilot, MenuScreen)
        assert backend.inputs == []


async def test_status_line_shows_counts():
    backend = StubBackend()
    await seed_sale(backend, 100)
    app = PosApp(backend, lang="en", login=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, MenuScreen)
        status = str(app.screen.query_one("#status").render())
        assert "SIGNED ON" in status and "NOT" not in status
        assert "Batch 000001" in status and "STAN 000002" in status and "Unsig 1" in status and "stub" in status


async def test_escape_at_the_settlement_confirmation_settles_nothing():
    backend = StubBackend()
    await seed_sale(backend, 100)
    app = PosApp(backend, login=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, MenuScreen)
        await pilot.press("6")
        await until(pilot, EntryScreen)
        await type_digits(pilot, "123456")
        await until(pilot, MessageScreen)
        await pilot.press("escape")
        await until(pilot, MenuScreen)
        assert [i.operation for i in backend.inputs] == ["sale"] and backend.state.batch == "000001"
