"""The POS emulator on the real terminal core against the real host pipeline, in memory (the
pair harness of tests/pair: no sockets, the demo issuer): menu → sale → signature upload →
slip, then a void, all answered by the host's participants."""

from __future__ import annotations

from typing import Any

from pair.harness import make_world
from posgate.framing import Header
from posgate.terminal import machine
from posgate.terminal.machine import Done, Input, Result, Send
from posgate.terminal.state import TerminalState
from posgate.terminal.tui import (
    CardScreen,
    EntryScreen,
    MenuScreen,
    MessageScreen,
    PosApp,
    SignatureScreen,
    SlipScreen,
    status_of,
)

from .test_tui import SIZE, draw_signature, sale, type_digits, until


class PairBackend:
    """The terminal core wired straight to ``world.process`` (what TerminalSession does over TCP)."""

    address = "in-memory host"

    def __init__(self) -> None:
        self.world = make_world()
        self.clock = self.world.clock
        self._state: TerminalState = machine.new_state()

    @property
    def state(self) -> TerminalState:
        return self._state

    async def run(self, inp: Input) -> Result:
        now = self.world.clock()
        state, out = machine.start(self._state, inp, now)
        while isinstance(out, Send):
            reply = self.world.process(out.body, Header(category=out.category).encode())
            if reply.body is None:
                state, out = machine.on_timeout(state, now)
            else:
                state, out = machine.on_reply(state, reply.body, now, requirement=f"{reply.header[2] & 0x0F}")
        assert isinstance(out, Done)
        self._state = state.drained()
        return out.result

    def verify_operator(self, code: str, password: str, role: str | None = None) -> str:
        return "" if (code, password) == ("00", "123456") else "wrong password"

    async def close(self) -> None:
        return None


async def test_sale_signature_and_void_against_the_host_pipeline(tmp_path: Any) -> None:
    backend = PairBackend()
    app = PosApp(backend, slip_dir=tmp_path, lang="en")
    async with app.run_test(size=SIZE) as pilot:
        await sale(pilot, amount="1234")
        await until(pilot, MessageScreen)
        sale_result = app.results[-1]
        assert sale_result.approved and sale_result.rrn, sale_result.message
        await pilot.press("enter")
        await until(pilot, SignatureScreen)
        await draw_signature(pilot)
        await pilot.click("#sig-ok")
        slip = await until(pilot, SlipScreen)
        upload = app.results[-1]
        assert upload.operation == "signature" and upload.approved, upload.message
        assert backend.state.txn(sale_result.stan).signature == "uploaded"
        text = slip.text()
        assert sale_result.rrn in text and "E-SIGNED" in text and "RMB 12.34" in text
        await pilot.click("#slip-done")
        assert status_of(backend).signed_on
        # Void it (supervisor 00), re-swiping the card; the host finds the original.
        await until(pilot, MenuScreen)
        await pilot.press("2")
        await until(pilot, EntryScreen)
        await type_digits(pilot, "123456")
        voucher = await until(pilot, EntryScreen)
        assert voucher.mode == "digits"
        await type_digits(pilot, sale_result.stan)
        await until(pilot, MessageScreen)
        await pilot.press("enter")
        await until(pilot, CardScreen)
        await pilot.click("#entry-swipe")
        await until(pilot, MessageScreen)
        void = app.results[-1]
        assert void.operation == "void" and void.approved, void.message
        await pilot.press("enter")
        slip = await until(pilot, (SlipScreen, SignatureScreen))
        if isinstance(slip, SignatureScreen):  # whether a void is signed is the core's decision
            await pilot.click("#sig-skip")
            slip = await until(pilot, SlipScreen)
        assert "SALE VOID" in slip.text() and "RMB -12.34" in slip.text()
