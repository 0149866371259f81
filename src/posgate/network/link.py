"""The acquirer's upstream link: persistent host-to-host connections to one card network.

Theory of operation
-------------------
A :class:`Link` runs its own event loop in a thread of the acquirer process, so the host's
pipeline (which runs synchronously, inside a database unit of work, on the host's loop thread or
a commit worker) can wait for a reply with :meth:`Link.call` without stalling the link. It keeps
``pool`` connections; each one:

1. connects (on failure: exponential back-off from ``backoff_min`` to ``backoff_max`` with jitter);
2. signs on (0800, 70 = 001) and takes the zone PIN key and the connection's MAC key from the
   reply's field 48 (both under the zone master key, each with its check value, which must
   match); a connection is usable only once signed on;
3. reads replies and hands each to the request waiting for it, matched by (STAN, RRN, MTI): replies
   may come back out of order, twice, or after their request gave up (those are counted and
   dropped: ``stats["late"]``/``["unmatched"]``). Every message but the sign-on carries a MAC
   (field 128, :mod:`posgate.network.keys`): one is computed for each message as it is written,
   and a reply whose MAC does not verify is dropped as if it never came (counted in
   ``stats["mac_failures"]`` and the ``posgate_upstream_mac_failures`` metric, logged masked):
   its request times out and the caller reverses it. A reply ``A0`` (the network could not
   verify our MAC: nothing was done) is no answer either (:meth:`Link.send` returns None);
3a. key change (0800, 70 = 101): the network may push a new MAC key (answered 0810 under the
   new key), and the link asks for one every ``rekey_every`` seconds per connection and on
   :meth:`Link.change_keys`; the key it replaces still verifies for ``key_grace`` seconds. A
   key whose check value does not match closes the connection (it signs on again);
4. sends an echo (0800, 70 = 301) after ``echo_every`` seconds without traffic; an echo left
   unanswered for ``timeout`` closes the connection (and it reconnects);
5. signs off (0800, 70 = 002) when the link stops.

``up`` is true while at least one connection is signed on: the stand-in decision reads it.
:meth:`Link.status` is a snapshot for people (``posgate.network.status``: state, since when, the
last message, echo and error, requests in flight), taken from any thread.
Field 11 is the terminal's STAN (``next_stan`` numbers the link's own network management messages).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import random
import secrets
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from posgate.dialect import network as h2h
from posgate.domain.masking import mask_pan
from posgate.iso8583 import CodecError, Message
from posgate.network.keys import KEY_BLOCK, SessionKeys, unwrap
from posgate.network.status import LinkStatus
from posgate.network.wire import read_frame, write_frame

log = logging.getLogger("posgate.upstream")


class LinkDown(Exception):
    """No signed-on connection to send on."""


def transmission_time(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%m%d%H%M%S")


class _Conn:
    def __init__(self, link: Link, index: int) -> None:
        self.link = link
        self.index = index
        self.writer: asyncio.StreamWriter | None = None
        self.signed_on = False
        self.last_traffic = 0.0
        self.keys: SessionKeys | None = None


class Link:
    def __init__(self, name: str, address: tuple[str, int], zmk: bytes, *, acquirer_id: str = "00049990",
                 pool: int = 2, timeout: float = 2.0, echo_every: float = 30.0, backoff_min: float = 0.05,
                 backoff_max: float = 5.0, rekey_every: float = 0.0, key_grace: float = 30.0,
                 down_after: float | None = None) -> None:  # fmt: skip
        self.name = name
        self.address = address
        self.acquirer_id = acquirer_id
        self.pool = pool
        self.timeout = timeout
        self.echo_every = echo_every
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.rekey_every = rekey_every  # 0: the link never asks for a key change itself (the network does)
        self.key_grace = key_grace
        self.stats: Counter[str] = Counter()
        self.zpk: bytes | None = None
        self._zmk = zmk
        self._conns = [_Conn(self, i) for i in range(pool)]
        self._rr = itertools.count()
        self._stan = itertools.count(secrets.randbelow(900_000))
        self._stan_lock = threading.Lock()
        self._waiting: dict[tuple[str, str, str], asyncio.Future[Message]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._ready = threading.Event()
        # For status(): wall-clock times (epoch seconds), written on the link's loop only.
        self.down_after = down_after if down_after is not None else max(5.0, 2 * timeout)
        self._running = False
        self._up_since: float | None = None  # when the link last became signed on
        self._not_up_since = time.time()  # when it last stopped being signed on (or started)
        self._last_message: float | None = None
        self._last_echo: float | None = None
        self._last_error: tuple[float, str, str] | None = None  # (when, kind, text)

    # ------------------------------------------------------------------ life cycle
    def start(self) -> Link:
        """Start the link's thread and connections (returns at once; ``up`` turns true when signed on)."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._running = True
        self._not_up_since = time.time()
        self._thread = threading.Thread(target=self._run, name=f"posgate-link-{self.name}", daemon=True)
        self._thread.start()
        self._ready.wait(5)
        return self

    def _run(self) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        self._tasks = [self._loop.create_task(self._keep(c)) for c in self._conns]
        self._ready.set()
        self._loop.run_forever()
        # What stop() could not finish in time (a sign-off waiting on a late reply, a connection
        # task still unwinding) is cancelled and run to its end here, as asyncio.run does, so that
        # no task is destroyed pending and no socket is left open.
        pending = asyncio.all_tasks(self._loop)
        for t in pending:
            t.cancel()
        if pending:
            self._loop.run_until_complete(asyncio.wait(pending, timeout=5))
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    def stop(self) -> None:
        """Sign off, close every connection and stop the thread."""
        loop = self._loop
        if loop is None or self._thread is None:
            return
        with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(self.timeout + 2)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        self._loop = None
        self._running = False

    async def _shutdown(self) -> None:
        self._stopping = True
        signed = [c for c in self._conns if c.signed_on]
        if signed:  # every connection signs off at once: one timeout in all, not one each
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.gather(*(self._exchange(c, self._network_message(h2h.SIGN_OFF))
                                                        for c in signed), return_exceptions=True), self.timeout)  # fmt: skip
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(BaseException):
                await t
        for c in self._conns:
            if c.writer is not None:
                c.writer.close()
        for _ in range(3):  # let the transports finish closing before the loop stops
            await asyncio.sleep(0)

    @property
    def up(self) -> bool:
        return any(c.signed_on for c in self._conns)

    def _mark(self, up_before: bool) -> None:
        """Note a change of ``up`` (called after a connection's ``signed_on`` changed)."""
        up = self.up
        if up and not up_before:
            self._up_since = time.time()
        elif up_before and not up:
            self._not_up_since = time.time()

    def status(self) -> LinkStatus:
        """A snapshot for the console, the metrics and ``/health`` (see ``posgate.network.status``)."""
        now = time.time()
        signed = sum(1 for c in self._conns if c.signed_on)
        connected = any(c.writer is not None for c in self._conns)
        if signed:
            state, since = "signed_on", self._up_since or now
        else:
            since = self._not_up_since
            if not self._running or now - since >= self.down_after:
                state = "down"
            else:
                state = "connected" if connected else "reconnecting"
        err = self._last_error

        def dt(t: float | None) -> datetime | None:
            return None if t is None else datetime.fromtimestamp(t, UTC)

        return LinkStatus(
            name=self.name, host=self.address[0], port=self.address[1], state=state,
            since=datetime.fromtimestamp(since, UTC), pool=self.pool, signed_on=signed,
            in_flight=sum(1 for k in list(self._waiting) if k[2] != "0810"),  # not network management
            last_message_at=dt(self._last_message), last_echo_at=dt(self._last_echo),
            last_error=err[2] if err else None, last_error_kind=err[1] if err else None,
            last_error_at=dt(err[0]) if err else None,
            sign_ons=self.stats["sign_ons"], reconnects=self.stats["reconnects"], timeouts=self.stats["timeouts"],
        )  # fmt: skip

    def next_stan(self) -> str:
        with self._stan_lock:
            return f"{next(self._stan) % 999_999 + 1:06d}"

    # ------------------------------------------------------------------ sending
    def call(self, msg: Message, timeout: float | None = None) -> Message | None:
        """Send ``msg`` and wait for its reply (any thread but the link's). None: no reply in
        time. Raises :class:`LinkDown` when no connection is signed on (nothing was sent)."""
        loop = self._loop
        if loop is None or not self.up:
            raise LinkDown(self.name)
        wait = self.timeout if timeout is None else timeout
        fut = asyncio.run_coroutine_threadsafe(self.send(msg, wait), loop)
        try:
            return fut.result(wait + 1.0)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            return None

    async def send(self, msg: Message, timeout: float) -> Message | None:
        """On the link's loop: send on a signed-on connection, wait for the reply (None: timeout)."""
        ready = [c for c in self._conns if c.signed_on]
        if not ready:
            raise LinkDown(self.name)
        conn = ready[next(self._rr) % len(ready)]
        try:
            reply = await asyncio.wait_for(self._exchange(conn, msg), timeout)
        except TimeoutError:
            self.stats["timeouts"] += 1
            return None
        if reply.text(39) == h2h.MAC_FAILURE:
            return None  # the network could not verify our MAC and did nothing: no answer
        return reply

    def change_keys(self) -> int:
        """Ask the network for a new MAC key on every signed-on connection (any thread but the
        link's); how many connections changed keys."""
        if self._loop is None:
            return 0
        try:
            return int(self.run_soon(self._change_keys()).result(self.timeout + 2))
        except (concurrent.futures.TimeoutError, RuntimeError):
            return 0

    def change_keys_soon(self) -> None:
        """:meth:`change_keys` without waiting (from any thread)."""
        if self._loop is not None:
            self.run_soon(self._change_keys())

    async def _change_keys(self) -> int:
        results = await asyncio.gather(*(self._change_key(c) for c in self._conns if c.signed_on), return_exceptions=True)
        return sum(1 for r in results if r is True)

    async def _change_key(self, c: _Conn) -> bool:
        """0800, 70 = 101 (MAC'd under the current key); the reader installs the key of the 0810."""
        before = c.keys.changes if c.keys is not None else -1
        reply = await asyncio.wait_for(self._exchange(c, self._network_message(h2h.KEY_CHANGE)), self.timeout)
        ok = reply.text(39) == "00" and c.keys is not None and c.keys.changes > before
        self.stats["key_changes" if ok else "key_change_failures"] += 1
        return ok

    async def _exchange(self, conn: _Conn, msg: Message) -> Message:
        assert self._loop is not None
        # A reply is known by its STAN, RRN and MTI: a late 0210 must never answer the 0420 that
        # reverses its request (they share the STAN and RRN).
        key = (msg.text(11), msg.text(37), h2h.reply_mti(msg.mti))
        fut: asyncio.Future[Message] = self._loop.create_future()
        if key in self._waiting:
            raise LinkDown(f"{self.name}: STAN {key[0]} already in flight")
        self._waiting[key] = fut
        try:
            if conn.writer is None or conn.writer.is_closing():
                raise LinkDown(self.name)
            if h2h.needs_mac(msg):
                if conn.keys is None:
                    raise LinkDown(f"{self.name}: no MAC key (not signed on)")
                body = conn.keys.sign(msg)  # under the key in force where this frame goes on the wire
            else:
                body = h2h.encode(msg)
            try:
                await write_frame(conn.writer, body)
            except (ConnectionError, OSError) as e:
                raise LinkDown(self.name) from e
            conn.last_traffic = self._loop.time()
            self.stats[f"sent_{msg.mti}"] += 1
            return await fut
        finally:
            self._waiting.pop(key, None)

    def _network_message(self, code: str) -> Message:
        return Message("0800", {7: transmission_time(), 11: self.next_stan(), 32: self.acquirer_id, 70: code})

    # ------------------------------------------------------------------ one connection
    async def _keep(self, c: _Conn) -> None:
        attempt = 0
        while not self._stopping:
            reader_task: asyncio.Task[None] | None = None
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(*self.address), self.timeout)
                c.writer = writer
                reader_task = asyncio.ensure_future(self._read(c, reader))
                reply = await self._sign_on(c, reader_task)
                if reply.text(39) != "00":
                    raise LinkDown(f"sign-on refused {reply.text(39)}")
                self._take_keys(c, reply.text(48))
                before = self.up
                c.signed_on = True
                self._mark(before)
                self.stats["sign_ons"] += 1
                log.info("upstream link %s connection %d signed on", self.name, c.index)
                attempt = 0
                await self._idle(c, reader_task)
            except asyncio.CancelledError:
                raise
            except (OSError, LinkDown, TimeoutError, ValueError) as e:
                self.stats["connect_failures"] += 1
                self._last_error = (time.time(), *_describe(e, self.name))
                log.debug("upstream link %s connection %d: %s", self.name, c.index, e)
            finally:
                before = self.up
                c.signed_on = False
                c.keys = None
                self._mark(before)
                if c.writer is not None:
                    c.writer.close()
                    c.writer = None
                if reader_task is not None:
                    reader_task.cancel()
                    with contextlib.suppress(BaseException):
                        await reader_task
            if self._stopping:
                return
            delay = min(self.backoff_max, self.backoff_min * 2**attempt) * (0.5 + random.random() / 2)
            attempt += 1
            self.stats["reconnects"] += 1
            await asyncio.sleep(delay)

    async def _sign_on(self, c: _Conn, reader_task: asyncio.Task[None]) -> Message:
        """The sign-on exchange, given up at once when the network closes the connection
        instead of answering (a front end that accepts and drops, a network refusing this
        acquirer): ``connection closed`` then, not a wait for the whole timeout that the console
        would show as "no answer in time"."""
        exchange = asyncio.ensure_future(self._exchange(c, self._network_message(h2h.SIGN_ON)))
        try:
            done, _ = await asyncio.wait({exchange, reader_task}, timeout=self.timeout,
                                         return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        except BaseException:
            exchange.cancel()
            raise
        if exchange in done:
            return exchange.result()
        exchange.cancel()  # its own finally drops the waiting STAN
        if reader_task.done():
            raise LinkDown("connection closed")
        raise TimeoutError(f"{self.name}: no sign-on reply in {self.timeout:g} s")

    def _take_keys(self, c: _Conn, field48: str) -> None:
        """Sign-on reply 48: the zone PIN key block, then the connection's MAC key block."""
        if len(field48) != 2 * KEY_BLOCK:
            raise ValueError("sign-on reply without a zone PIN key and a MAC key")
        zpk = unwrap(self._zmk, field48[:KEY_BLOCK])
        mak = unwrap(self._zmk, field48[KEY_BLOCK:])
        assert self._loop is not None
        c.keys = SessionKeys(mak, self._loop.time())
        self.zpk = zpk

    async def _idle(self, c: _Conn, reader_task: asyncio.Task[None]) -> None:
        """Until the connection breaks: an echo after ``echo_every`` s without traffic."""
        assert self._loop is not None
        loop = self._loop
        while not reader_task.done():
            if self.rekey_every > 0 and c.keys is not None and loop.time() - c.keys.since >= self.rekey_every:
                await self._change_key(c)
                continue
            wait = c.last_traffic + self.echo_every - loop.time()
            if self.rekey_every > 0 and c.keys is not None:
                wait = min(wait, c.keys.since + self.rekey_every - loop.time())
            if wait > 0:
                done, _ = await asyncio.wait({reader_task}, timeout=min(wait, 1.0))
                continue
            reply = await asyncio.wait_for(self._exchange(c, self._network_message(h2h.ECHO)), self.timeout)
            if reply.text(39) != "00":
                raise LinkDown("echo refused")
            self.stats["echoes"] += 1
            self._last_echo = time.time()
        raise LinkDown("connection closed")

    async def _read(self, c: _Conn, reader: asyncio.StreamReader) -> None:
        assert self._loop is not None
        while True:
            try:
                body = await read_frame(reader)
            except (ConnectionError, asyncio.IncompleteReadError, OSError):
                return
            if body is None:
                return
            now = c.last_traffic = self._loop.time()
            self._last_message = time.time()
            try:
                reply = h2h.decode(body)
            except CodecError as e:
                self.stats["undecodable"] += 1
                log.warning("upstream link %s: undecodable reply (%s)", self.name, e)
                continue
            if h2h.needs_mac(reply) and (c.keys is None or not c.keys.verify(reply, now)):
                self._mac_failure(reply)
                continue  # as if it never came: its request times out (and is reversed)
            if reply.mti == "0800":  # the network's own request: a key change (or an echo)
                self._network_request(c, reply, now)
                continue
            if reply.mti == "0810" and reply.text(70) == h2h.KEY_CHANGE and reply.text(39) == "00":
                # The key we asked for: in force from the next frame on, so installed here, in order.
                if not self._install(c, reply.text(48), now):
                    continue
            if reply.text(39) == h2h.MAC_FAILURE:
                self.stats["mac_refused"] += 1
                _metric(self.name, "refused")
                log.warning("upstream link %s: the network refused our MAC (%s A0, STAN %s RRN %s): treated as no reply",
                            self.name, reply.mti, reply.text(11), reply.text(37) or "-")  # fmt: skip
            fut = self._waiting.get((reply.text(11), reply.text(37), reply.mti))
            if fut is None:
                self.stats["unmatched"] += 1  # late (its request gave up) or a duplicate
                continue
            if fut.done():
                self.stats["duplicates"] += 1
                continue
            fut.set_result(reply)

    def _mac_failure(self, reply: Message) -> None:
        self.stats["mac_failures"] += 1
        _metric(self.name, "reply")
        pan = reply.text(2)
        log.warning("upstream link %s: MAC failure on %s STAN %s RRN %s PAN %s: dropped, treated as no reply",
                    self.name, reply.mti, reply.text(11), reply.text(37) or "-", mask_pan(pan) if pan else "-")  # fmt: skip

    def _install(self, c: _Conn, block: str, now: float) -> bool:
        """A new MAC key from the network; a wrong check value closes the connection."""
        if c.keys is None:
            return False
        try:
            mak = unwrap(self._zmk, block)
        except ValueError as e:
            self.stats["key_change_failures"] += 1
            log.warning("upstream link %s connection %d: key change refused (%s); signing on again", self.name, c.index, e)
            if c.writer is not None:
                c.writer.close()
            return False
        c.keys.rotate(mak, now, self.key_grace)
        log.info("upstream link %s connection %d: new MAC key (check value %s)", self.name, c.index, c.keys.kcv)
        return True

    def _network_request(self, c: _Conn, msg: Message, now: float) -> None:
        """Answer the network's 0800 at once, on the reader (a new key signs the answer)."""
        code = msg.text(70)
        if code == h2h.KEY_CHANGE:
            if not self._install(c, msg.text(48), now):
                return
            self.stats["key_changes_pushed"] += 1
        elif code != h2h.ECHO:
            return
        assert c.keys is not None
        reply = Message("0810", {7: msg.text(7), 11: msg.text(11), 39: "00", 70: code})
        if c.writer is not None and not c.writer.is_closing():
            body = c.keys.sign(reply)
            c.writer.write(len(body).to_bytes(2, "big") + body)

    def run_soon(self, coro: Any) -> concurrent.futures.Future[Any]:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop)


def _metric(link: str, kind: str) -> None:
    from posgate.host.metrics import UPSTREAM_MAC_FAILURES

    UPSTREAM_MAC_FAILURES.labels(link, kind).inc()


def _describe(e: BaseException, name: str) -> tuple[str, str]:
    """A failure as (kind, a few words) for the console: ``timeout``, ``refused``, ``lost``, ``closed``,
    ``sign_on_refused``, ``key`` (the zone PIN key does not check) or ``other``. No card data:
    these are connection errors."""
    text = str(e) or type(e).__name__
    if isinstance(e, LinkDown) and text == name:
        return "lost", "connection lost"
    if isinstance(e, LinkDown) and text == "connection closed":
        return "closed", "connection closed by the network"
    if isinstance(e, TimeoutError):
        return "timeout", "timed out (no answer)"
    if isinstance(e, ConnectionRefusedError):
        return "refused", "connection refused"
    if isinstance(e, LinkDown) and text.startswith("sign-on refused"):
        return "sign_on_refused", text
    if isinstance(e, ValueError):
        return "key", text
    return "other", text if len(text) <= 200 else text[:197] + "..."
