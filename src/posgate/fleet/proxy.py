"""A fault-injecting TCP proxy for CUP framed traffic (loopback only).

Theory of operation
-------------------
:class:`FaultProxy` listens on a loopback port and, for every terminal connection, opens one
connection to the target host. Two pumps copy bytes, one per direction; each feeds what it
reads to its own :class:`~posgate.framing.FrameReader`, so the proxy sees whole messages and can
act on one message at a time:

============== ========= ==================================================================
fault          direction what the terminal and the host see
============== ========= ==================================================================
cut_request    request   the host receives a prefix of the request, then both connections
                         close: the host must not act on half a frame; the terminal has
                         *sent* and must reverse (section 8, reason 06)
cut_reply      reply     the host processed the request; the terminal receives a prefix of
                         the reply and then the connection closes (reversal, reason 06)
delay_reply    reply     the reply is held ``plan.delay`` seconds (set it past the terminal's
                         timeout) and then delivered late, on the same connection: the
                         terminal must have reversed (98) and must ignore the stale reply
drop_reply     reply     the reply is swallowed; the connection stays open (timeout, 98)
corrupt_reply  reply     1 to ``plan.flips`` random bits of the reply body (MTI onwards) are
                         flipped; the length prefix is kept so the stream stays in sync.
                         The MAC (or the echo checks of section 10) must catch it
============== ========= ==================================================================

Which message gets which fault is decided by, in order: commands queued with
:meth:`FaultProxy.inject` ("the next reply is cut"), then the :class:`FaultPlan`'s per-message
probabilities drawn from a seeded :class:`random.Random` (same seed, same sequence of
decisions for the same sequence of messages). A plan may restrict faults to some MTIs (e.g.
only financial requests, so that sign-ons always get through). :meth:`FaultProxy.sever_all`
cuts every open connection at once (what a host crash looks like from the terminal side), and
:meth:`FaultProxy.retarget` points new connections elsewhere (several targets: round-robin,
skipping one that refuses), :meth:`FaultProxy.pause` / :meth:`FaultProxy.resume` stop and
restart listening (while a host restarts, terminals see "connection refused", as they would).

A stream that does not parse as CUP frames (fuzzing through the proxy) is passed through
unchanged from then on: the proxy never becomes the component that rejects input.

Must never: listen on or connect to anything outside 127.0.0.0/8 (``require_loopback``); hold
more than one partial frame per direction; leave a task behind after :meth:`close`.

``stats`` counts connections, frames per direction and faults injected by kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter, deque
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from posgate.fleet.net import require_loopback
from posgate.framing import DEFAULT_MAX_FRAME, PREFIX_LEN, Frame, FrameReader, FramingError

REQUEST_FAULTS = ("cut_request",)
REPLY_FAULTS = ("cut_reply", "delay_reply", "drop_reply", "corrupt_reply")
FAULT_KINDS = REQUEST_FAULTS + REPLY_FAULTS
PASS = "pass"  # noqa: S105 - the "no fault" decision, not a password


@dataclass
class FaultPlan:
    """Per-message fault probabilities (each 0..1; their sum per direction at most 1)."""

    rates: dict[str, float] = field(default_factory=dict)
    delay: float = 3.0  # delay_reply: seconds to hold the reply (past the terminal's timeout)
    flips: int = 3  # corrupt_reply: at most this many bits flipped
    mtis: frozenset[str] | None = None  # only messages with these MTIs (request MTI for both directions)

    def __post_init__(self) -> None:
        unknown = set(self.rates) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(FAULT_KINDS)}")
        for kinds in (REQUEST_FAULTS, REPLY_FAULTS):
            if sum(self.rates.get(k, 0.0) for k in kinds) > 1.0:
                raise ValueError("fault rates of one direction add up to more than 1")

    def draw(self, rng: random.Random, kinds: Iterable[str]) -> str:
        x = rng.random()
        for k in kinds:
            r = self.rates.get(k, 0.0)
            if x < r:
                return k
            x -= r
        return PASS


def _mti(body: bytes) -> str:
    return body[:2].hex() if len(body) >= 2 else ""


def _reply_mti_to_request(mti: str) -> str:
    # Response MTI = request MTI + 10 (1.4).
    return f"{int(mti) - 10:04d}" if mti.isdigit() and len(mti) == 4 and int(mti) >= 10 else mti


def _raw(frame: Frame) -> bytes:
    size = PREFIX_LEN + len(frame.body)
    return size.to_bytes(2, "big") + frame.tpdu + frame.header + frame.body


class _Conn:
    __slots__ = ("id", "client", "upstream", "closed")

    def __init__(self, cid: int, client: asyncio.StreamWriter) -> None:
        self.id = cid
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.closed = False

    def sever(self) -> None:
        if self.closed:
            return
        self.closed = True
        for w in (self.client, self.upstream):
            if w is not None:
                with contextlib.suppress(Exception):
                    w.close()


class FaultProxy:
    """See the module docstring. Use as ``async with FaultProxy((host, port), plan=...) as p``."""

    def __init__(
        self,
        target: tuple[str, int] | Sequence[tuple[str, int]],
        *,
        listen: tuple[str, int] = ("127.0.0.1", 0),
        plan: FaultPlan | None = None,
        seed: int | None = 0,
        max_frame: int = DEFAULT_MAX_FRAME,
        on_fault: Callable[[str, str], None] | None = None,
    ) -> None:
        self.targets: list[tuple[str, int]] = []
        self.retarget(target)
        self.listen = (require_loopback(listen[0]), listen[1])
        self.plan = plan or FaultPlan()
        self.rng = random.Random(seed)
        self.max_frame = max_frame
        self.on_fault = on_fault
        self.stats: Counter[str] = Counter()
        self._commands: dict[str, deque[str]] = {"request": deque(), "reply": deque()}
        self._conns: dict[int, _Conn] = {}
        self._tasks: set[asyncio.Task[Any]] = set()  # the pumps
        self._handlers: set[asyncio.Task[Any]] = set()  # one per connection (asyncio's own tasks)
        self._server: asyncio.Server | None = None
        self._next_id = 0
        self._rr = 0

    # -- lifecycle
    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._handle, self.listen[0], self.listen[1], reuse_address=True)
        self.listen = (self.listen[0], self.port)  # a resume() listens on the same port
        return self

    async def pause(self) -> None:
        """Stop listening: new connections are refused (what a terminal sees while its host is
        down). Open connections are left alone; :meth:`resume` listens again on the same port."""
        if self._server is not None:
            self._server.close()
            self._server = None

    async def resume(self) -> None:
        if self._server is None:
            await self.start()

    @property
    def port(self) -> int:
        if self._server is None:
            assert self.listen[1], "start() first"
            return self.listen[1]
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def address(self) -> tuple[str, int]:
        return self.listen[0], self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.sever_all()
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        # The connection handlers end by themselves once their pumps are gone; cancelling them
        # would make asyncio log the cancellation as an error.
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=self.plan.delay + 2)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- commands
    def inject(self, kind: str, count: int = 1) -> None:
        """Apply ``kind`` to the next ``count`` eligible messages of its direction."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
        direction = "request" if kind in REQUEST_FAULTS else "reply"
        self._commands[direction].extend([kind] * count)

    def calm(self) -> None:
        """No more faults: the plan's rates are cleared and queued commands dropped."""
        self.plan = FaultPlan(delay=self.plan.delay, flips=self.plan.flips)
        for q in self._commands.values():
            q.clear()

    def sever_all(self) -> int:
        """Cut every open connection now; returns how many were cut."""
        n = 0
        for c in list(self._conns.values()):
            if not c.closed:
                c.sever()
                n += 1
        return n

    def retarget(self, target: tuple[str, int] | Sequence[tuple[str, int]]) -> None:
        """New connections go to ``target`` (open ones are left alone). With several targets,
        connections are spread round-robin, skipping a target that refuses (a crude balancer
        for when HAProxy is not installed)."""
        many: list[Any] = [target] if isinstance(target[0], str) else list(target)
        self.targets = [(require_loopback(str(t[0])), int(t[1])) for t in many]
        if not self.targets:
            raise ValueError("the proxy needs a target")

    @property
    def target(self) -> tuple[str, int]:
        return self.targets[0]

    @property
    def open_connections(self) -> int:
        return sum(1 for c in self._conns.values() if not c.closed)

    # -- internals
    def _decide(self, direction: str, request_mti: str) -> str:
        plan = self.plan
        if plan.mtis is not None and request_mti not in plan.mtis:
            return PASS
        queued = self._commands[direction]
        if queued:
            return queued.popleft()
        return plan.draw(self.rng, REQUEST_FAULTS if direction == "request" else REPLY_FAULTS)

    def _count(self, kind: str, mti: str) -> None:
        self.stats[kind] += 1
        if self.on_fault is not None:
            self.on_fault(kind, mti)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        self._next_id += 1
        conn = _Conn(self._next_id, cwriter)
        self._conns[conn.id] = conn
        self.stats["connections"] += 1
        me = asyncio.current_task()
        if me is not None:
            self._handlers.add(me)
            me.add_done_callback(self._handlers.discard)
        try:
            upstream = await self._open_upstream()
            if upstream is None:
                self.stats["upstream_refused"] += 1
                return
            ureader, uwriter = upstream
            conn.upstream = uwriter
            up = self._spawn(self._pump(creader, uwriter, conn, "request"))
            down = self._spawn(self._pump(ureader, cwriter, conn, "reply"))
            await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
            # One side ended: a delayed reply still in flight toward a live client may finish.
            if up.done() and not down.done() and not conn.closed:
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(down), self.plan.delay + 1)
            for t in (up, down):
                t.cancel()
            await asyncio.gather(up, down, return_exceptions=True)
        except asyncio.CancelledError:
            pass  # the loop is closing: this connection ends with it
        finally:
            conn.sever()
            self._conns.pop(conn.id, None)

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        n = len(self.targets)
        for i in range(n):
            host, port = self.targets[(self._rr + i) % n]
            try:
                pair = await asyncio.open_connection(host, port)
            except OSError:
                continue
            self._rr = (self._rr + i + 1) % n
            return pair
        return None

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: _Conn, direction: str) -> None:
        frames = FrameReader(self.max_frame)
        transparent = False
        last_request_mti = ""
        try:
            while not conn.closed:
                data = await reader.read(65536)
                if not data:
                    if direction == "request" and conn.upstream is not None:
                        with contextlib.suppress(Exception):
                            conn.upstream.write_eof()
                    return
                if transparent:
                    writer.write(data)
                    await writer.drain()
                    continue
                try:
                    got = frames.feed(data)
                except FramingError:
                    # Not CUP framing (a fuzzer): from here on pass bytes through untouched.
                    self.stats[f"unframed_{direction}"] += 1
                    transparent = True
                    writer.write(data)
                    await writer.drain()
                    continue
                for frame in got:
                    self.stats[f"frames_{direction}"] += 1
                    mti = _mti(frame.body)
                    req_mti = mti if direction == "request" else _reply_mti_to_request(mti)
                    if direction == "request":
                        last_request_mti = mti
                    kind = self._decide(direction, req_mti or last_request_mti)
                    if not await self._apply(kind, frame, writer, conn, req_mti):
                        return
                if frames.error is not None:  # whole frames, then stray bytes: those pass through untouched
                    self.stats[f"unframed_{direction}"] += 1
                    transparent = True
                    writer.write(frames.error.rest)
                    await writer.drain()
        except (ConnectionError, OSError):
            return
        finally:
            if direction == "reply" or conn.closed:
                conn.sever()

    async def _apply(self, kind: str, frame: Frame, writer: asyncio.StreamWriter, conn: _Conn, mti: str) -> bool:
        """Forward ``frame`` under fault ``kind``; False when the connection was cut."""
        raw = _raw(frame)
        if kind == PASS:
            writer.write(raw)
            await writer.drain()
            return True
        self._count(kind, mti)
        if kind in ("cut_request", "cut_reply"):
            writer.write(raw[: self.rng.randrange(1, len(raw))])
            with contextlib.suppress(ConnectionError, OSError):
                await writer.drain()
            conn.sever()
            return False
        if kind == "drop_reply":
            return True
        if kind == "delay_reply":
            await asyncio.sleep(self.plan.delay)
            if conn.closed:
                return False
            writer.write(raw)
            await writer.drain()
            return True
        if kind == "corrupt_reply":
            body = bytearray(frame.body)
            if body:
                for _ in range(self.rng.randint(1, max(1, self.plan.flips))):
                    i = self.rng.randrange(len(body))
                    body[i] ^= 1 << self.rng.randrange(8)
            writer.write(_raw(Frame(frame.tpdu, frame.header, bytes(body))))
            await writer.drain()
            return True
        raise AssertionError(kind)
