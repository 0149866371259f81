"""The TUI's status upload (admin menu) and the cashier's next step under a decline."""

from __future__ import annotations

from typing import Any

import pytest

from posgate.domain.response_codes import describe
from posgate.terminal.operations.base import Input, Result
from posgate.terminal.tui import ChoiceScreen, EntryScreen, MenuScreen, MessageScreen, PosApp, StubBackend

from .test_tui import SIZE, sale, type_digits, until


async def test_status_upload_from_the_admin_menu() -> None:
    """状态上送 had no way in: the admin menu now offers it next to the parameter download."""
    backend = StubBackend()
    app = PosApp(backend, lang="en", login=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, MenuScreen)
        await pilot.press("0")
        await until(pilot, EntryScreen)
        await type_digits(pilot, "12345678")
        choices = await until(pilot, ChoiceScreen)
        assert [k for k, _label in choices.choices][:4] == ["make_up", "echo", "params", "status"]
        await pilot.press("4")
        await until(pilot, MessageScreen)
        assert backend.inputs[-1].operation == "status_upload"


class RefusingBackend(StubBackend):
    """A stub whose host refuses every sale with ``code`` (a suspended merchant: 03...)."""

    def __init__(self, code: str) -> None:
        super().__init__()
        self.code = code

    async def run(self, inp: Input) -> Result:
        if inp.operation != "sale":
            return await super().run(inp)
        self.inputs.append(inp)
        rc = describe(self.code)
        return Result("sale", response_code=self.code, message_zh=rc.zh, message_en=rc.en)


@pytest.mark.parametrize(
    ("code", "lang", "text"),
    [
        ("03", "zh", "商户已暂停或未开通，请联系收单机构"),
        ("03", "en", "Merchant suspended or not set up: call your acquirer"),
        ("97", "zh", "设备未登记，请联系收单机构登记此设备"),
        ("97", "en", "Device not registered: call your acquirer to register it"),
        ("58", "en", "Terminal suspended: call your acquirer"),
    ],
)
async def test_a_refusal_tells_the_cashier_what_to_do(code: str, lang: str, text: str) -> None:
    app = PosApp(RefusingBackend(code), lang=lang, login=False)
    async with app.run_test(size=SIZE) as pilot:
        await sale(pilot)
        msg: Any = await until(pilot, MessageScreen)
        shown = str(msg.query_one("#message").render())
        assert code in shown and text in shown.replace("\n", "")


async def test_ic_download_from_the_admin_menu() -> None:
    """IC public keys and parameters (370-372, 380-382) on demand, next to the status upload."""
    backend = StubBackend()
    app = PosApp(backend, lang="en", login=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, MenuScreen)
        await pilot.press("0")
        await until(pilot, EntryScreen)
        await type_digits(pilot, "12345678")
        choices = await until(pilot, ChoiceScreen)
        assert [k for k, _label in choices.choices][4] == "ic_params"
        await pilot.press("5")
        await until(pilot, MessageScreen)
        assert backend.inputs[-1].operation == "ic_download"
