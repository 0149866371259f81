"""The POS emulator against a real host: ``posgate serve --demo`` on port 0, the terminal client
with its journal, a sale from the menu to the slip with the e-signature uploaded."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from posgate.terminal.tui import MessageScreen, PosApp, SignatureScreen, SlipScreen, status_of

from .test_tui import SIZE, draw_signature, sale, until

pytest.importorskip("posgate.host.cli", reason="the host (posgate serve) is not built yet")


@pytest.fixture
def host_port(tmp_path) -> Iterator[int]:
    db = tmp_path / "host.db"
    cmd = [sys.executable, "-c", "from posgate.cli import main; main()", "serve", "--demo", "--port", "0",
           "--no-console", "--console-port", "0", "--db", f"sqlite:///{db}", "--log-level", "info"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path, env={**os.environ})
    assert proc.stdout is not None
    port = None
    seen: list[str] = []
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 20
    try:
        while port is None and time.monotonic() < deadline and proc.poll() is None:
            if not sel.select(timeout=0.5):
                continue
            line = proc.stdout.readline().decode(errors="replace")
            seen.append(line)
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "listening" in str(record.get("msg", "")) and record.get("port"):
                port = int(record["port"])
        if port is None:
            pytest.fail("posgate serve did not start:\n" + "".join(seen[-20:]))
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        proc.stdout.close()


async def test_sale_against_a_real_host(tmp_path, host_port):
    from posgate.terminal.client import Endpoint, TerminalSession
    from posgate.terminal.journal import Journal
    from posgate.terminal.state import TerminalConfig
    from posgate.terminal.tui import ClientBackend

    journal = Journal.open(tmp_path / "terminal", "10000001", TerminalConfig())
    journal.seed_demo_operators()
    session = TerminalSession.from_journal(journal, Endpoint("127.0.0.1", host_port, timeout=10))
    backend = ClientBackend(session)
    # The host must be able to sign a terminal on; if it cannot, that is the host's bug (its own
    # tests say which), not the emulator's.
    from posgate.terminal.operations.base import Input

    signed = await session.run(Input("sign_on"))
    if not signed.approved:
        await backend.close()
        pytest.skip(f"the host does not sign terminals on ({signed.message}); see the host's tests")
    app = PosApp(backend, slip_dir=tmp_path / "slips")
    async with app.run_test(size=SIZE) as pilot:
        await sale(pilot, amount="1234")
        await until(pilot, MessageScreen, timeout=20)
        assert app.results and app.results[-1].approved, app.results[-1].message
        await pilot.press("enter")
        await until(pilot, SignatureScreen)
        await draw_signature(pilot)
        await pilot.click("#sig-ok")
        slip = await until(pilot, SlipScreen, timeout=20)
        sig_result = app.results[-1]
        assert sig_result.operation == "signature" and sig_result.approved, sig_result.message
        text = slip.text()
        assert "RMB 12.34" in text and "621214*********0012 /S" in text and "[已电子签名 E-SIGNED]" in text
        entry = backend.state.txn(app.results[0].stan)
        assert entry is not None and entry.signature == "uploaded" and entry.rrn and entry.rrn in text
        await pilot.click("#slip-done")
        st = status_of(backend)
        assert st.signed_on and st.reversal == 0 and st.unsigned == 0
        assert st.address == f"127.0.0.1:{host_port}"
