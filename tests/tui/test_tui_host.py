"""The POS emulator against a real host over TCP: the host (``posgate.host.server.Host`` on the
demo database, listening on port 0 in this event loop), the terminal client with its journal,
a sale from the menu to the slip with the e-signature uploaded, then its void (the host finds the
original)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from posgate.terminal.tui import (
    CardScreen,
    ClientBackend,
    EntryScreen,
    MenuScreen,
    MessageScreen,
    PosApp,
    SignatureScreen,
    SlipScreen,
    status_of,
)

from .test_tui import SIZE, draw_signature, sale, sign_in, type_digits, until

server = pytest.importorskip("posgate.host.server", reason="the host is not built yet")


@pytest.fixture
async def host_port(tmp_path) -> AsyncIterator[int]:
    from posgate.store.database import Database
    from posgate.store.demo import provision_demo

    db = Database.open(f"sqlite:///{tmp_path / 'host.db'}")
    provision_demo(db.engine, db.keyring)
    host = server.Host(db, server.ServerConfig(host="127.0.0.1", port=0))
    _, port = await host.start()
    try:
        yield port
    finally:
        await host.shutdown()
        db.close()


async def test_sale_against_a_real_host(tmp_path, host_port):
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
        assert app.operator == "01" and journal.get("operator") == "01"
        await sale(pilot, amount="1234")  # signs on by itself first (D5)
        await until(pilot, MessageScreen, timeout=20)
        sale_result = app.results[-1]
        assert sale_result.approved and sale_result.rrn, sale_result.message
        await pilot.press("enter")
        await until(pilot, SignatureScreen)
        await draw_signature(pilot)
        await pilot.click("#sig-ok")
        slip = await until(pilot, SlipScreen, timeout=20)
        upload = app.results[-1]
        assert upload.operation == "signature" and upload.approved, upload.message
        text = slip.text()
        assert "RMB 12.34" in text and "621214*********0012 /S" in text and "[已电子签名 E-SIGNED]" in text
        assert sale_result.rrn in text
        entry = backend.state.txn(sale_result.stan)
        assert entry is not None and entry.signature == "uploaded"
        await pilot.click("#slip-done")
        st = status_of(backend)
        assert st.signed_on and st.reversal == 0 and st.unsigned == 0
        assert st.address == f"127.0.0.1:{host_port}"
        # Void it: supervisor 00 (password from the journal), the voucher, re-swipe.
        await until(pilot, MenuScreen)
        await pilot.press("2")
        await until(pilot, EntryScreen)
        await type_digits(pilot, "123456")
        await until(pilot, EntryScreen)
        await type_digits(pilot, sale_result.stan)
        await until(pilot, MessageScreen)  # the original
        await pilot.press("enter")
        await until(pilot, CardScreen)
        await pilot.click("#entry-swipe")
        await until(pilot, MessageScreen, timeout=20)
        void = app.results[-1]
        assert void.operation == "void" and void.approved, void.message
        await pilot.press("enter")
        slip = await until(pilot, (SlipScreen, SignatureScreen))
        if isinstance(slip, SignatureScreen):  # whether a void is signed is the core's decision
            await pilot.click("#sig-skip")
            slip = await until(pilot, SlipScreen)
        assert "消费撤销 SALE VOID" in slip.text() and "RMB -12.34" in slip.text()
        assert backend.state.txn(sale_result.stan).status == "voided"
