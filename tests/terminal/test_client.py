"""The asyncio client and the journal over a real socket (the host pipeline behind a small
TCP server in a thread)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from posgate.terminal.cards import read_card
from posgate.terminal.client import Endpoint, TerminalSession, run_operation, run_sync
from posgate.terminal.journal import Journal
from posgate.terminal.machine import Input, new_state

from .hostd import HostThread

OK = "6212142000000000012"


@pytest.fixture
def host() -> Iterator[HostThread]:
    with HostThread() as h:
        yield h


def card(amount: int = 0) -> object:
    return read_card(OK, "swipe", pin="123456", amount=amount)


def test_session_sign_on_sale_void_with_journal(host: HostThread, tmp_path: Path) -> None:
    j = Journal.open(tmp_path)
    s = TerminalSession.from_journal(j, Endpoint(port=host.port, timeout=5))
    assert run_operation(s, Input("sign_on")).approved
    sale = run_operation(s, Input("sale", amount=1500, card=card(1500)))  # type: ignore[arg-type]
    assert sale.approved, sale.message
    void = run_operation(s, Input("void", voucher=sale.stan))
    assert void.approved, void.message
    j.close()
    j2 = Journal.open(tmp_path)
    state = j2.load()
    assert [t.operation for t in state.txns] == ["sale", "void"] and state.txns[0].status == "voided"
    assert any(e.kind == "sign_on" and e.result == "ok" for e in j2.events("sign_on"))
    j2.close()


def test_timeout_leaves_reversal_on_disk_and_sends_it_next(host: HostThread, tmp_path: Path) -> None:
    j = Journal.open(tmp_path)
    s = TerminalSession.from_journal(j, Endpoint(port=host.port, timeout=0.3))
    assert run_operation(s, Input("sign_on")).approved
    host.mute = True
    r = run_operation(s, Input("sale", amount=700, card=card(700)))  # type: ignore[arg-type]
    assert r.error == "timeout"
    j.close()
    host.mute = False
    j2 = Journal.open(tmp_path)
    assert j2.load().reversal is not None  # survives a restart
    s2 = TerminalSession.from_journal(j2, Endpoint(port=host.port, timeout=5))
    r2 = run_operation(s2, Input("sale", amount=100, card=card(100)))  # type: ignore[arg-type]
    assert r2.approved and [x.purpose for x in s2.last_sends] == ["reversal", "sale"]
    assert j2.load().reversal is None
    j2.close()


def test_connection_refused_is_an_error_without_reversal(tmp_path: Path) -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    s = TerminalSession(new_state(), Endpoint(port=port, timeout=1))
    r = run_operation(s, Input("sign_on"))
    assert r.error == "comm" and r.exit_code == 2 and s.state.reversal is None and s.state.flow is None


def test_many_sessions_share_one_loop(host: HostThread) -> None:
    async def main() -> list[bool]:
        sessions = [TerminalSession(new_state(), Endpoint(port=host.port, timeout=5)) for _ in range(3)]
        # The demo has one terminal per TID; they sign on one after the other (same TID).
        out = []
        for sess in sessions:
            out.append((await sess.run(Input("sign_on"))).approved)
        return out

    assert run_sync(main()) == [True, True, True]
