"""The asyncio client and the journal over a real socket (the host pipeline behind a small
TCP server in a thread)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from posgate.terminal.cards import read_card
from posgate.terminal.client import Endpoint, TerminalSession, run_operation, run_sync
from posgate.terminal.journal import Journal
from posgate.terminal.machine import Done, Input, Send, new_state

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


class _Broken(TerminalSession):
    """A session whose transport refuses writes as uvloop does on a connection the peer has
    just reset: ``RuntimeError`` from ``write`` (nothing left). ``break_after`` exchanges go
    through first; ``refuse`` writes are refused after that."""

    def __init__(self, *a: object, break_after: int, refuse: int, **kw: object) -> None:
        super().__init__(*a, **kw)  # type: ignore[arg-type]
        self.break_after, self.refuse, self.exchanges = break_after, refuse, 0

    def _write(self, frame: bytes) -> bool:
        if self.exchanges >= self.break_after and self.refuse > 0:
            self.refuse -= 1
            w = self._writer
            assert w is not None
            orig = w.write

            def boom(data: bytes) -> None:
                raise RuntimeError("unable to perform operation on <TCPTransport closed=True>; the handler is closed")

            w.write = boom  # type: ignore[method-assign]
            try:
                return super()._write(frame)
            finally:
                w.write = orig  # type: ignore[method-assign]
        return super()._write(frame)

    async def _exchange(self, send: Send) -> Send | Done:
        try:
            return await super()._exchange(send)
        finally:
            self.exchanges += 1


def test_write_refused_on_a_kept_connection_goes_again_on_a_new_one(host: HostThread) -> None:
    # A new terminal's first sale is one flow of two messages on one connection: sign-on, sale.
    s = _Broken(new_state(), Endpoint(port=host.port, timeout=5), break_after=1, refuse=1)
    r = run_operation(s, Input("sale", amount=300, card=card(300)))  # type: ignore[arg-type]
    assert r.approved, r.message
    assert [x.purpose for x in s.last_sends] == ["sign_on", "sale"] and host.requests == 2
    assert s.state.reversal is None


def test_write_refused_on_a_fresh_connection_was_not_sent(host: HostThread) -> None:
    s = _Broken(new_state(), Endpoint(port=host.port, timeout=5), break_after=1, refuse=2)
    r = run_operation(s, Input("sale", amount=300, card=card(300)))  # type: ignore[arg-type]
    assert r.error == "comm" and host.requests == 1  # only the sign-on reached the host
    assert s.state.reversal is None and s.state.flow is None  # nothing left, nothing to reverse


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_host_resets_the_connection_between_two_messages_of_a_flow(host: HostThread, loop: str) -> None:
    factory = None
    if loop == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        factory = uvloop.new_event_loop

    class Slow(TerminalSession):
        async def _exchange(self, send: Send) -> Send | Done:
            if self.last_sends:
                # The host has reset the connection (its RST has left) before the terminal's next
                # message, and the terminal's loop has had the chance to see it: a few iterations
                # (asyncio closes the transport then; uvloop may only refuse the next write).
                assert await asyncio.to_thread(host.resets.acquire, True, 30)
                for _ in range(20):
                    if self._dead():
                        break
                    await asyncio.sleep(0)
            return await super()._exchange(send)

    host.reset_after_reply = True
    s = Slow(new_state(), Endpoint(port=host.port, timeout=5))
    with asyncio.Runner(loop_factory=factory) as runner:
        r = runner.run(s.run(Input("sale", amount=300, card=card(300))))  # type: ignore[arg-type]
    assert r.approved, r.message
    assert [x.purpose for x in s.last_sends] == ["sign_on", "sale"] and host.requests == 2


def test_keep_open_uses_one_connection_for_several_operations(host: HostThread) -> None:
    """``keep_open``: the connection outlives the operation (a load generator holding terminals
    connected); without it every operation opens its own."""

    async def go() -> tuple[int, bool, int]:
        s = TerminalSession(new_state(), Endpoint(port=host.port, timeout=5))
        s.keep_open = True
        before = len(host._writers)
        assert (await s.run(Input("sign_on"))).approved
        kept = s._writer
        sale = await s.run(Input("sale", amount=300, card=card(300)))  # type: ignore[arg-type]
        assert sale.approved, sale.message
        same = kept is not None and s._writer is kept
        kept_open = len(host._writers) - before
        s.keep_open = False
        for amount in (400, 500):
            assert (await s.run(Input("sale", amount=amount, card=card(amount)))).approved  # type: ignore[arg-type]
        assert s._writer is None
        return kept_open, same, len(host._writers) - before

    assert run_sync(go()) == (1, True, 2)  # the first sale after keep_open=False still reuses the kept one


def test_a_reversal_is_sent_again_only_after_a_redial_pause(host: HostThread, tmp_path: Path) -> None:
    """A front end that accepts and closes (a host restarting behind a balancer): each reversal
    attempt is sent and its connection lost. The three attempts (parameter 23) must be spread
    out like a real terminal's re-dials, not spent within a second (chaos once saw the reversal
    dropped that way while the sale stood on the host)."""
    import socket
    import threading
    import time

    s = TerminalSession(new_state(), Endpoint(port=host.port, timeout=5, redial_pause=0.3))
    assert run_operation(s, Input("sign_on")).approved
    host.mute = True
    s.endpoint = replace(s.endpoint, timeout=0.3)
    assert run_operation(s, Input("sale", amount=700, card=card(700))).error == "timeout"  # type: ignore[arg-type]
    assert s.state.reversal is not None

    front = socket.create_server(("127.0.0.1", 0))
    arrivals: list[float] = []

    def accept_and_close() -> None:
        front.settimeout(10)
        for _ in range(3):
            conn, _ = front.accept()
            conn.recv(4096)  # the reversal arrives, the connection closes unanswered
            arrivals.append(time.monotonic())
            conn.close()

    th = threading.Thread(target=accept_and_close, daemon=True)
    th.start()
    s.endpoint = replace(s.endpoint, port=front.getsockname()[1], timeout=5)
    r = run_operation(s, Input("sale", amount=100, card=card(100)))  # type: ignore[arg-type]
    th.join(10)
    front.close()
    assert [x.purpose for x in s.last_sends][-3:] == ["reversal"] * 3 and r.error == "reversal"
    assert len(arrivals) == 3
    # At least the pause, then twice it, between the attempts (lower bounds only).
    assert arrivals[1] - arrivals[0] >= 0.3 and arrivals[2] - arrivals[1] >= 0.6, arrivals
