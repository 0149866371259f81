"""The asyncio shell around the terminal core: sockets, the clock, timeouts, the journal.

Theory of operation: :class:`TerminalSession` owns one terminal's state (and, optionally,
its :class:`~posgate.terminal.journal.Journal`). :meth:`TerminalSession.run` feeds the core
(``machine.start`` → ``Send`` → frame with TPDU + header → socket → reply frame → ``on_reply``
...) until it says ``Done``. Before every send the new state goes to the journal (the
reversal record is on disk before the request leaves). Each message waits at most the comm
timeout (parameter tag 12, default 60 s, or the ``timeout`` override); a timeout or a broken
connection closes the connection (a late reply must never be taken for the next one's) and
the next message of the flow opens a new one. Sent or not, for the reversal: a refused connect
or a write the transport refuses (uvloop's RuntimeError on a connection the host has just
reset) sent nothing — on a connection kept from the flow's previous message the request goes
once more on a fresh one, otherwise ``on_comm_error(sent=False)``; a failure after the write
(drain, read) may have let the request out: ``sent=True``. The pending reversal goes first, the trickle
after, header requirements are obeyed — all decided by the core.

Cheap to multiply: a session holds a state, an endpoint and no thread; any number of them
share one event loop (the load generator runs a thousand). :func:`run_operation` is the
synchronous wrapper the CLI uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from posgate.framing import FrameReader, FramingError, Header, Tpdu, encode_frame
from posgate.terminal import machine
from posgate.terminal.journal import Journal
from posgate.terminal.machine import Done, Input, Result, Send
from posgate.terminal.state import TerminalState

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str = "127.0.0.1"
    port: int = 8583
    tpdu: Tpdu = field(default_factory=lambda: Tpdu.from_hex("6000030000"))
    header: Header = field(default_factory=lambda: Header.from_hex("603100000000"))
    timeout: float | None = None  # overrides parameter tag 12
    connect_timeout: float = 10.0
    # Before a reversal goes again after its connection was lost: this pause, doubled each time.
    redial_pause: float = 1.0


def utc_now() -> datetime:
    return datetime.now(UTC)


class TerminalSession:
    """One terminal talking to one host. Not for concurrent use: one operation at a time."""

    def __init__(
        self,
        state: TerminalState,
        endpoint: Endpoint | None = None,
        journal: Journal | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.state = state
        self.endpoint = endpoint or Endpoint()
        self.journal = journal
        self.clock = clock
        self.last_sends: list[Send] = []
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._frames = FrameReader()
        # Keep the connection open between operations (a terminal on a leased line, or a load
        # generator holding thousands of terminals connected): only a timeout or an error
        # closes it then; a connection the host has closed meanwhile is noticed (_dead) and
        # replaced before the next request.
        self.keep_open = False
        # (STAN of the pending reversal, its attempts in a row whose connection was lost after
        # the write): see _exchange.
        self._reversal_lost: tuple[str, int] = ("", 0)

    @classmethod
    def from_journal(
        cls, journal: Journal, endpoint: Endpoint | None = None, clock: Callable[[], datetime] = utc_now
    ) -> TerminalSession:
        return cls(journal.load(), endpoint, journal, clock)

    def _commit(self, state: TerminalState) -> None:
        if self.journal is not None:
            state = self.journal.save(state)
        elif state.events:
            state = state.drained()  # nothing keeps them: do not let them pile up
        self.state = state

    async def _connect(self) -> None:
        ep = self.endpoint
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(ep.host, ep.port), ep.connect_timeout
        )
        self._frames = FrameReader()

    async def close(self) -> None:
        w, self._writer, self._reader = self._writer, None, None
        if w is not None:
            w.close()
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                await asyncio.wait_for(w.wait_closed(), 1.0)

    async def _read_frame(self) -> bytes:
        assert self._reader is not None
        while True:
            data = await self._reader.read(4096)
            if not data:
                raise ConnectionResetError("the host closed the connection")
            frames = self._frames.feed(data)
            if frames:
                f = frames[0]
                return bytes(f.header) + f.body

    async def run(self, inp: Input) -> Result:
        """Run one operation end to end. Raises :class:`machine.TerminalError` only when the
        core refuses to start it (nothing was sent)."""
        now = self.clock()
        state, out = machine.start(self.state, inp, now)
        self._commit(state)
        self.last_sends = []
        try:
            while isinstance(out, Send):
                out = await self._exchange(out)
        except BaseException:
            # Cancelled or crashed mid-flow: what was journaled stands (a pending reversal
            # included); the flow itself is abandoned so the next operation can start.
            self.state = replace(self.state, flow=None)
            await self.close()
            raise
        finally:
            if not self.keep_open:
                await self.close()
        assert isinstance(out, Done)
        return out.result

    def _dead(self) -> bool:
        """The connection kept from an earlier message of the flow is known to be gone: the
        transport is closing, or the host's end of it has already been read to EOF."""
        w, r = self._writer, self._reader
        return w is not None and (w.is_closing() or (r is not None and r.at_eof()))

    def _write(self, frame: bytes) -> bool:
        """Hand ``frame`` to the transport; False when it refused it, in which case nothing of
        it left (uvloop raises RuntimeError "the handler is closed" on a transport the peer has
        just reset, before ``is_closing()`` says so)."""
        assert self._writer is not None
        try:
            self._writer.write(frame)
        except (RuntimeError, OSError):
            return False
        return True

    async def _exchange(self, send: Send) -> Send | Done:
        ep = self.endpoint
        self.last_sends.append(send)
        header = replace(ep.header, category=send.category, requirement="0")
        frame = encode_frame(ep.tpdu.encode(), header.encode(), send.body)
        timeout = ep.timeout if ep.timeout is not None else send.timeout
        pending = self.state.reversal
        lost_stan, lost = self._reversal_lost
        if send.purpose == "reversal" and pending is not None and pending.stan == lost_stan and lost and ep.redial_pause > 0:
            # The core sends a reversal again at once after a lost connection (three attempts,
            # parameter 23, as the CUP terminals do). Those terminals re-dial first, which takes
            # seconds; without a pause the three attempts were spent within a second against a
            # front end that accepts and closes while the host restarts, and the reversal was
            # dropped with the sale standing on the host (posgate chaos found it).
            await asyncio.sleep(ep.redial_pause * 2 ** (lost - 1))
        if self._dead():
            await self.close()
        # A connection kept from the flow's previous message may have been reset by the host
        # since; a refused write there sent nothing, so the request goes once more on a fresh
        # connection. A refused connect, or a refused write on a fresh connection, means the
        # request never left: no reversal (on_comm_error sent=False).
        reused = self._writer is not None
        while True:
            if self._writer is None:
                try:
                    await self._connect()
                except (TimeoutError, OSError):
                    return self._not_sent()
            if self._write(frame):
                break
            await self.close()
            if not reused:
                return self._not_sent()
            reused = False
        assert self._writer is not None
        try:
            await self._writer.drain()
            raw = await asyncio.wait_for(self._read_frame(), timeout)
        except TimeoutError:
            await self.close()
            self._reversal_lost = ("", 0)  # the timeout was the wait
            state, out = machine.on_timeout(self.state, self.clock())
        except (OSError, FramingError, asyncio.IncompleteReadError):
            await self.close()
            if send.purpose == "reversal" and pending is not None:
                self._reversal_lost = (pending.stan, lost + 1 if pending.stan == lost_stan else 1)
            state, out = machine.on_comm_error(self.state, self.clock(), sent=True)
        else:
            self._reversal_lost = ("", 0)
            requirement = f"{raw[2] & 0x0F}"
            state, out = machine.on_reply(self.state, raw[6:], self.clock(), requirement=requirement)
        self._commit(state)
        return out

    def _not_sent(self) -> Send | Done:
        state, out = machine.on_comm_error(self.state, self.clock(), sent=False)
        self._commit(state)
        return out


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to the end from synchronous code: on a fresh event loop, or — when this
    thread already runs one (a notebook, a Textual app, a Playwright sync session) — on a
    fresh loop in a short-lived worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: list[Any] = []

    def work() -> None:
        try:
            box.append((True, asyncio.run(coro)))
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            box.append((False, e))

    t = threading.Thread(target=work, name="posgate-terminal-sync")
    t.start()
    t.join()
    ok, value = box[0]
    if not ok:
        raise value
    return cast(T, value)


def run_operation(session: TerminalSession, inp: Input) -> Result:
    """Synchronous wrapper (the CLI's): run ``inp`` on a fresh event loop."""
    return run_sync(session.run(inp))
