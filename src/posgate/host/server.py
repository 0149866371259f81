"""The TCP host: frames in, group-committed replies out.

Theory of operation
-------------------
The event loop (uvloop when installed) owns the sockets; one :class:`TerminalProtocol` per
connection (``asyncio.Protocol``, not streams: half the cost per message) feeds bytes to a
:class:`~posgate.framing.FrameReader` and queues each whole frame for the commit workers. A
connection has at most one request being processed; further frames wait in its own queue (and
reading pauses when that queue is long), so one terminal's flood cannot starve the others and
replies leave in request order.

Group commit, two shapes (nothing is ever answered before its commit is durable):

* SQLite (:class:`InlineCommitter`): SQLite has one writer, so the pipeline runs on the loop
  thread itself; the frames read in one loop iteration form a batch, committed without fsync,
  and :class:`WalSyncer` (a thread) fsyncs the write-ahead log and only then hands the replies
  back to the loop. The next batch is processed while the previous one's fsync is under way.
* PostgreSQL (:class:`WorkerPool`): ``workers`` threads, each with its own connection, take
  every request queued (up to ``batch_max``), run them in one transaction, commit (one fsync
  on the server for the whole batch), and only then hand the replies back to the loop with
  ``call_soon_threadsafe``; PostgreSQL round trips release the GIL, so workers overlap.

Both run a batch with :class:`BatchRunner`: when a request fails, the batch is rolled back
and run again with a SAVEPOINT around each request, so the failing request alone loses its
writes and the others go on (see :meth:`BatchRunner.run`).

Failure handling: a framing error (bad or oversized length) closes the connection: the stream
has lost sync. A partial frame pending longer than ``frame_timeout`` (slow drip) and a
connection silent for ``idle_timeout`` are closed by a sweeper that runs once a second. Past
``max_connections`` new connections are closed at once. A request whose ``process()`` raises,
or whose batch cannot commit, gets no reply and its connection is closed: the terminal then
reverses, which is the protocol's own recovery.

Shutdown (SIGTERM/SIGINT, or :meth:`Host.shutdown`): stop accepting, wait until every request
already received is committed and its reply written, close the connections (their buffers are
flushed first), stop the committer, close the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import os
import queue
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from posgate.crypto import cipher_for, decrypt_track, generate_working_keys
from posgate.dialect.cup import decode
from posgate.dialect.describe import describe_short
from posgate.domain.masking import split_track
from posgate.framing import DEFAULT_MAX_FRAME, HEADER_LEN, TPDU_LEN, Frame, FrameReader, FramingError
from posgate.host import metrics as m
from posgate.host.logging import fields
from posgate.host.ports import Env, HostStore, Issuer
from posgate.store.database import Database
from posgate.store.sql import SqlHostStore

log = logging.getLogger("posgate.host")


class Reply(Protocol):
    """What ``process()`` returns (``posgate.host.pipeline.HostReply``)."""

    @property
    def header(self) -> bytes: ...
    @property
    def body(self) -> bytes | None: ...
    @property
    def close(self) -> bool: ...


Processor = Callable[[bytes, bytes, HostStore, Issuer, Env], Reply]
IssuerFactory = Callable[[SqlHostStore], Issuer]


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8583
    workers: int = 1  # commit workers (PostgreSQL); SQLite commits on the loop thread (InlineCommitter)
    batch_max: int = 256  # requests per group commit at most
    max_connections: int = 2000
    max_frame: int = DEFAULT_MAX_FRAME
    frame_timeout: float = 10.0  # a partial frame may be pending this long (slow drip)
    idle_timeout: float = 300.0  # a connection with no bytes for this long is closed
    max_queued_per_connection: int = 32  # frames waiting behind the one in process; then reading pauses
    log_transactions: bool = True  # one INFO line per answered request
    lock_timeout: float = 0.2  # PostgreSQL: a row lock waited for longer is a conflict between batches


# -- the stand-in processor (tests, the echo bench) --------------------------------------------


@dataclass(frozen=True, slots=True)
class EchoReply:
    header: bytes
    body: bytes | None
    close: bool = False
    operation: str | None = "echo"
    response_code: str | None = "00"
    trace: list[list[str]] = field(default_factory=list)
    error: str | None = None


def echo_process(frame_header: bytes, body: bytes, store: HostStore, issuer: Issuer, env: Env) -> EchoReply:
    """Same signature as ``posgate.host.pipeline.process``: answers the body unchanged."""
    return EchoReply(frame_header, body)


# -- environment for the core ---------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def make_env(db: Database) -> Env:
    """The core's Env from the acquirer settings in the database."""
    from posgate.store.admin import get_settings

    with db.engine.connect() as conn:
        st = get_settings(conn.execution_options(sqlite_readonly=True))
    kw: dict[str, Any] = {}
    for key in ("timezone", "institution_id", "currency"):
        if key in st:
            kw[key] = st[key]
    for key in ("lapse_days", "resign_after_mac_failures"):
        if key in st and st[key].isdigit():
            kw[key] = int(st[key])
    return Env(now=_now, randbytes=secrets.token_bytes, **kw)


def builtin_issuer_factory(env: Env) -> IssuerFactory | None:
    """The built-in issuer over each worker's store, with one zone key for the whole process."""
    try:
        issuer_mod = importlib.import_module("posgate.host.issuer")
    except ModuleNotFoundError:
        return None
    # The PIN zone key between the pipeline and the issuer: fresh per process, never stored.
    zone_key = generate_working_keys("003", env.randbytes).pik

    def factory(store: SqlHostStore) -> Issuer:
        issuer: Issuer = issuer_mod.BuiltinIssuer(store, zone_key, env.timezone)
        return issuer

    return factory


def default_processor() -> Processor:
    try:
        from posgate.host.pipeline import process
    except ModuleNotFoundError:
        log.warning("the host pipeline is not installed: answering with the echo stand-in")
        return echo_process
    return process


DEFAULT: Any = object()  # Host(issuer_factory=DEFAULT): the built-in issuer; None: no issuer at all


class _NoIssuer:
    zone_key = b""

    def authorize(self, request: Any, now: datetime) -> Any:
        raise RuntimeError("no issuer configured")


# -- the connection ------------------------------------------------------------------------------


class TerminalProtocol(asyncio.Protocol):
    __slots__ = ("host", "transport", "reader", "peer", "pending", "busy", "last_rx", "partial_since", "paused", "closed", "eof",
                 "stray")

    def __init__(self, host: Host) -> None:
        self.host = host
        self.transport: asyncio.Transport | None = None
        self.reader = FrameReader(host.config.max_frame)
        self.peer = "?"
        self.pending: deque[tuple[Frame, float]] = deque()
        self.busy = False
        self.last_rx = 0.0
        self.partial_since: float | None = None
        self.paused = False
        self.closed = False
        self.eof = False
        self.stray: str | None = None  # stray bytes after whole frames: answer those, then close

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance check here.
        self.transport = cast(asyncio.Transport, transport)
        host = self.host
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        if len(host.connections) >= host.config.max_connections or host.stopping:
            m.CONNECTIONS.labels("refused").inc()
            host.note_refused(self.peer)
            self.closed = True
            self.transport.abort()
            return
        m.CONNECTIONS.labels("accepted").inc()
        host.connections.add(self)
        m.OPEN_CONNECTIONS.set(len(host.connections))
        self.last_rx = host.loop.time()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        host = self.host
        if self in host.connections:
            host.connections.discard(self)
            m.OPEN_CONNECTIONS.set(len(host.connections))
        if self.pending:
            m.IN_FLIGHT.dec(len(self.pending))
            self.pending.clear()

    def data_received(self, data: bytes) -> None:
        now = self.host.loop.time()
        self.last_rx = now
        try:
            frames = self.reader.feed(data)
        except FramingError as e:
            self.reject("framing", str(e))
            return
        if frames:
            m.IN_FLIGHT.inc(len(frames))
            pending = self.pending
            for f in frames:
                pending.append((f, now))
            if not self.busy:
                self._submit_next()
            if len(pending) > self.host.config.max_queued_per_connection and not self.paused:
                self.paused = True
                assert self.transport is not None
                self.transport.pause_reading()
        if self.reader.error is not None:
            # Whole frames, then bytes that cannot start a frame: the frames are answered first
            # (they were complete and may be money), then the connection is closed, since
            # nothing after the stray bytes can be found again.
            self.stray = str(self.reader.error)
            if not self.paused and self.transport is not None:
                self.paused = True
                self.transport.pause_reading()
            if not self.busy and not self.pending:
                self.finish("framing", self.stray)
            return
        if self.reader.pending:
            if self.partial_since is None:
                self.partial_since = now
        else:
            self.partial_since = None

    def eof_received(self) -> bool | None:
        # The terminal finished sending; keep the socket half-open until pending replies are out.
        self.eof = True
        if not self.busy and not self.pending:
            return None  # close now
        return True

    # host side
    def _submit_next(self) -> None:
        frame, t0 = self.pending.popleft()
        self.busy = True
        self.host.submit(self, frame, t0)
        if (self.paused and self.stray is None and len(self.pending) <= self.host.config.max_queued_per_connection // 2
                and self.transport):  # fmt: skip
            self.paused = False
            self.transport.resume_reading()

    def deliver(self, frame: Frame, t0: float, reply: Reply | None) -> None:
        """Called on the loop after the commit: write the reply, then start the next request."""
        self.busy = False
        m.IN_FLIGHT.dec()
        transport = self.transport
        if self.closed or transport is None or transport.is_closing():
            return
        if reply is None:  # process() failed or the commit failed: no answer; the terminal will reverse
            self.reject("error", "request could not be processed")
            return
        if reply.body is not None:
            tp = frame.tpdu
            # D1: the reply swaps the TPDU's destination and source addresses.
            tpdu = tp[:1] + tp[3:5] + tp[1:3]
            size = TPDU_LEN + HEADER_LEN + len(reply.body)
            transport.write(size.to_bytes(2, "big") + tpdu + reply.header + reply.body)
        m.LATENCY.observe(self.host.loop.time() - t0)
        if reply.close:
            self.closed = True
            transport.close()  # close(), not abort(): a reply just written still leaves
            return
        if self.pending:
            self._submit_next()
        elif self.stray is not None:
            self.finish("framing", self.stray)
        elif self.eof:
            transport.close()

    def finish(self, reason: str, detail: str) -> None:
        """Close after the replies already written have left (stray bytes after whole frames)."""
        m.FRAMES_REJECTED.labels(reason).inc()
        log.warning("closing connection after answering the whole frames: %s", detail,
                    extra=fields(peer=self.peer, reason=reason))  # fmt: skip
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def reject(self, reason: str, detail: str) -> None:
        m.FRAMES_REJECTED.labels(reason).inc()
        log.warning("closing connection: %s", detail, extra=fields(peer=self.peer, reason=reason))
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


# -- group commit -------------------------------------------------------------------------------

_STOP = object()
# Errors after which the same request is simply run again (PostgreSQL lock conflicts between workers).
TRANSIENT = frozenset({"DeadlockDetected", "SerializationFailure", "LockNotAvailable"})
Result = tuple["TerminalProtocol", Frame, float, Reply | None]


class BatchRunner:
    """Runs a batch of requests as one unit of work on one database connection and commits it.

    Shared by both commit shapes (:class:`InlineCommitter` on SQLite, :class:`CommitWorker` on
    PostgreSQL). :meth:`run` returns one result per request (reply ``None``: that request could
    not be processed) or raises after rolling back when the database itself failed.
    """

    def __init__(self, host: Host, conn: Any) -> None:
        self.host = host
        self.conn = conn
        if not host.db.is_sqlite:
            # A lock wait longer than this is a conflict between batches (see run()), not a
            # batch that is about to commit: give up early instead of waiting for the deadlock
            # detector (1 s by default).
            conn.exec_driver_sql(f"SET lock_timeout = '{int(host.config.lock_timeout * 1000)}ms'")
            conn.commit()
        self.store = host.db.store(conn, driver=True)
        self.issuer: Issuer = host.issuer_factory(self.store) if host.issuer_factory else _NoIssuer()
        self.driver = self.store.driver
        self.counters_on_writer = False  # SQLite: RRN/auth-code blocks reserved on this connection
        # PostgreSQL: the batch's reads ahead in one round trip and its writes pipelined (see
        # _attempt_pipelined); the old path stays as the fallback.
        self.pipelined = not host.db.is_sqlite and hasattr(self.driver, "pipeline")

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - a broken connection is dropped, not closed
            self.conn.invalidate()

    def run(self, batch: list[Any]) -> list[Result]:
        """One unit of work for ``batch``, committed.

        Optimistic first: the whole batch in one transaction, no SAVEPOINT per request (two
        statements, two round trips on PostgreSQL). If a request fails, the transaction is
        rolled back (nothing has been answered, so running a request again is invisible) and:

        * a lock conflict (PostgreSQL, several workers or processes: batches that lock the same
          rows in different orders wait on each other until ``lock_timeout``): the batch is run
          again one request per transaction, which holds one request's locks at a time and so
          cannot form a cycle;
        * any other failure: the batch is run again with a SAVEPOINT around each request, so the
          failing request alone loses its writes.
        """
        driver = self.driver
        try:
            # Before BEGIN: see IdAllocator.top_up.
            self.host.db.ids.top_up(2 * len(batch), self.driver if self.counters_on_writer else None)
            results, failure = None, ""
            if self.pipelined:
                results = self._attempt_pipelined(batch)
                if results is None:  # run again as below, which tells a lock conflict from an error
                    driver.rollback()
                    self.store.forget()
                    m.ERRORS.labels("batch_retry_pipeline").inc()
            if results is None:
                results, failure = self._attempt(batch, careful=False)
            if results is None:
                driver.rollback()
                self.store.forget()
                m.ERRORS.labels(f"batch_retry_{failure}").inc()
                log.info("batch of %d rolled back (%s) and run again %s", len(batch), failure,
                         "one request per transaction" if failure == "lock" else "with savepoints")  # fmt: skip
                if failure == "lock":
                    results = self._solo(batch)
                else:
                    results, _ = self._attempt(batch, careful=True)
                    assert results is not None
            driver.commit()
        except BaseException:
            self.store.forget()
            with contextlib.suppress(Exception):
                driver.rollback()
            raise
        return results

    def _begin(self, cur: Any) -> None:
        if self.host.db.is_sqlite:
            cur.execute("BEGIN IMMEDIATE")  # psycopg begins by itself on the first statement
        self.store.begin_unit()

    def _attempt_pipelined(self, batch: list[Any]) -> list[Result] | None:
        """PostgreSQL, issue 12: the batch as one unit in psycopg's pipeline mode, its reads
        ahead (``SqlHostStore.prefetch``: the terminals locked, the duplicate check, the new
        transactions' ids, in one round trip). A sale then waits for one round trip (its
        card's row) instead of five; its writes travel with the next read or the final sync.
        None at the first failure of any kind (an error in pipeline mode surfaces at a later
        statement, so it cannot be pinned on a request): the caller rolls back and runs the
        batch again on the plain path, which sorts lock conflicts from errors as before."""
        keys, pans = request_keys([frame.body for _, frame, _ in batch], self.store.track_key)
        results: list[Result] | None = None
        try:
            with self.store.pipelined(keys, len(batch), pans):
                results, _ = self._attempt(batch, careful=False, begun=True)
        except Exception:  # noqa: BLE001 - any failure: run again on the plain path
            results = None
        return results

    def _attempt(self, batch: list[Any], careful: bool, begun: bool = False) -> tuple[list[Result] | None, str]:
        """Run ``process()`` for each request in one open transaction. Not ``careful``: (None,
        "lock" | "error") at the first failure; the caller rolls back. ``careful``: each request
        in a SAVEPOINT; a failing one is rolled back alone."""
        host, store, issuer = self.host, self.store, self.issuer
        process, env = host.processor, host.env
        results: list[Result] = []
        cur = self.driver.cursor()
        if not begun:  # (begun: by SqlHostStore.pipelined)
            self._begin(cur)
        for proto, frame, tr in batch:
            if careful:
                cur.execute("SAVEPOINT r")
            try:
                reply: Reply | None = process(frame.header, frame.body, store, issuer, env)
                error = getattr(reply, "error", None)
            except Exception as e:  # noqa: BLE001 - a bug in one request must not take the batch down
                if not careful:
                    cur.close()
                    return None, "lock" if type(e).__name__ in TRANSIENT else "error"
                cur.execute("ROLLBACK TO SAVEPOINT r")
                cur.execute("RELEASE SAVEPOINT r")
                store.forget()  # rows kept from this request may hold what was just undone
                log.exception("process() raised; request rolled back", extra=fields(peer=proto.peer))
                m.ERRORS.labels("process").inc()
                reply = None
            else:
                if error and not careful:
                    cur.close()
                    return None, "lock" if error in TRANSIENT else "error"
                if error:
                    cur.execute("ROLLBACK TO SAVEPOINT r")  # the 96 reply goes out; the writes do not stay
                    store.forget()
                    m.ERRORS.labels("pipeline").inc()
                    log.error("request failed in the pipeline (%s); its writes were rolled back", error,
                              extra=fields(peer=proto.peer))  # fmt: skip
                if careful:
                    cur.execute("RELEASE SAVEPOINT r")
            results.append((proto, frame, tr, reply))
        cur.close()
        return results, ""

    def _solo(self, batch: list[Any]) -> list[Result]:
        """Each request in its own transaction (after a lock conflict); a request that keeps
        conflicting is retried a few times with a short random pause, then gets no reply."""
        driver = self.driver
        results: list[Result] = []
        for item in batch:
            reply: Reply | None = None
            for attempt in range(5):
                done, failure = self._attempt([item], careful=False)
                if done is not None:
                    driver.commit()
                    reply = done[0][3]
                    break
                driver.rollback()
                self.store.forget()
                if failure != "lock":
                    done, _ = self._attempt([item], careful=True)
                    assert done is not None
                    driver.commit()
                    reply = done[0][3]
                    break
                time.sleep(0.002 * (attempt + 1) * (1 + secrets.randbelow(4)))
            else:
                m.ERRORS.labels("lock").inc()
                log.error("request gave up after repeated lock conflicts", extra=fields(peer=item[0].peer))
            results.append((*item, reply))
        return results


def request_keys(bodies: list[bytes], track_key: Callable[[str], tuple[bytes, str] | None] | None = None,
                 ) -> tuple[list[tuple[str, str, str] | None], list[str]]:  # fmt: skip
    """For ``SqlHostStore.prefetch``: each request's (terminal ID, batch number, STAN) as the
    pipeline will read them (41, 60.2, 11), None when the baseline codec cannot read the body,
    and the card numbers in field 2. The store asks the database as usual for anything not
    read ahead; a key read differently by a terminal's dialect profile is simply never asked
    for, and a card read ahead but not used is only read.

    ``track_key`` (``SqlHostStore.track_key``): a swiped sale without field 2 carries its card
    number only in track 2, encrypted with the terminal's TDK when 53.3 = 1; with the TDK the
    store last saw for that terminal the number is read from the track, so that its card is read
    ahead too (issue 12: it used to cost every swiped sale a round trip of its own). The number
    only picks a row to read; ``ReadCard`` reads the card from the request as always."""
    keys: list[tuple[str, str, str] | None] = []
    pans: list[str] = []
    for body in bodies:
        try:
            msg = decode(body)
        except Exception:  # noqa: BLE001 - an unreadable request is the pipeline's business
            keys.append(None)
            continue
        tid = msg.text(41).strip()
        f60 = msg.text(60)
        keys.append((tid, f60[2:8] if len(f60) >= 8 else "", msg.text(11)) if tid else None)
        pan = msg.text(2)
        if not pan and 35 in msg:
            encrypted = msg.text(53)[2:3] == "1"
            pan = _track_pan(msg.text(35), encrypted, track_key(tid) if encrypted and track_key else None)
        if pan:
            pans.append(pan)
    return keys, pans


def _track_pan(track: str, encrypted: bool, key: tuple[bytes, str] | None) -> str:
    """The card number in a track as ``ReadCard`` would read it, or "" (see ``request_keys``)."""
    if encrypted:
        if key is None:
            return ""
        try:
            track = decrypt_track(key[0], track, separator="=", cipher=cipher_for(key[1]))
        except Exception:  # noqa: BLE001 - any track a terminal sends: a hint is dropped, never a batch
            return ""
    return split_track(track)[0]


def _observe_commit(t0: float, size: int) -> None:
    m.COMMIT_SECONDS.observe(time.perf_counter() - t0)
    m.BATCH_SIZE.observe(size)
    m.HEALTH.database = "ok"
    m.HEALTH.last_commit = time.time()


def _commit_failed(batch: list[Any]) -> list[Result]:
    log.exception("group commit failed; %d requests unanswered", len(batch))
    m.ERRORS.labels("commit").inc(len(batch))
    m.HEALTH.database = "error"
    return [(p, f, tr, None) for p, f, tr in batch]


class InlineCommitter:
    """SQLite: the pipeline runs on the event-loop thread; only the fsync runs in a thread.

    Why: SQLite has one writer, so a commit thread buys no parallelism for the pipeline, and
    handing every request to a thread and its reply back costs more than the pipeline's own
    work (the two threads pass the GIL back and forth). Here the frames that arrived in one
    loop iteration form a batch (``call_soon``: it runs after that iteration's reads); the
    batch is processed and committed on the loop thread with ``synchronous=NORMAL`` (the WAL
    is written, not yet synced), and the replies go to :class:`WalSyncer`, which fsyncs the
    WAL file and only then hands them back to the loop to be written. While one batch's fsync
    is under way the loop already processes the next (pipelined group commit, "early lock
    release"): one fsync per loop iteration at most, never on the loop thread.

    Durability is the same as ``synchronous=FULL``: a reply leaves only after an fsync of the
    WAL that began after its commit, and a WAL commit is durable once its frames are on disk
    (SQLite recovers a WAL up to the last valid commit frame; the WAL is synced again before
    every checkpoint). What differs: another connection (the console) may read a commit a
    millisecond before it is durable; a power cut then loses it together with its reply, which
    never left, so the terminal reverses it as for any unanswered request.
    """

    def __init__(self, host: Host) -> None:
        self.host = host
        self.pending: list[Any] = []
        self.scheduled = False
        self.runner: BatchRunner | None = None
        self.syncer: WalSyncer | None = None

    def start(self) -> None:
        self.runner = self._connect()
        self.syncer = WalSyncer(self.host, self.host.db.url)
        if self.syncer.db_path is not None:
            self.syncer.checkpointer = WalCheckpointer(self.host)
            self.syncer.checkpointer.start()
        self.syncer.start()

    def _connect(self) -> BatchRunner:
        conn = self.host.db.engine.connect()
        try:
            runner = BatchRunner(self.host, conn)
            # Commits write the WAL without fsync; WalSyncer makes them durable before the replies.
            runner.driver.execute("PRAGMA synchronous=NORMAL")
            # Checkpoints run in WalCheckpointer's thread, not inside this thread's commits.
            runner.driver.execute("PRAGMA wal_autocheckpoint=0")
            runner.store.keep_rows()  # the only writer: terminal and card rows kept between batches
            runner.counters_on_writer = True  # so that reserving RRNs does not drop what is kept
        except BaseException:
            conn.close()
            raise
        return runner

    def submit(self, item: Any) -> None:
        self.pending.append(item)
        if not self.scheduled:
            self.scheduled = True
            self.host.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self.scheduled = False
        batch_max = self.host.config.batch_max
        batch = self.pending[:batch_max]
        del self.pending[:batch_max]
        if self.pending:  # the rest in the next loop iteration, after the sockets are read again
            self.scheduled = True
            self.host.loop.call_soon(self._flush)
        if not batch:
            return
        t0 = time.perf_counter()
        try:
            if self.runner is None:
                self.runner = self._connect()
            results = self.runner.run(batch)
        except Exception:  # noqa: BLE001 - the database failed: nobody gets a reply for this batch
            if self.runner is not None:
                self._release(self.runner, broken=True)
                self.runner = None  # a fresh connection for the next batch
            self.host.deliver_batch(_commit_failed(batch))
            return
        _observe_commit(t0, len(batch))
        assert self.syncer is not None
        self.syncer.put(results)

    async def stop(self) -> None:
        if self.syncer is not None:
            self.syncer.put(None)
            await self.host.loop.run_in_executor(None, self.syncer.join)
            if self.syncer.checkpointer is not None:
                self.syncer.checkpointer.stop()
                await self.host.loop.run_in_executor(None, self.syncer.checkpointer.join)
        if self.runner is not None:
            self._release(self.runner)
            self.runner = None

    @staticmethod
    def _release(runner: BatchRunner, broken: bool = False) -> None:
        """The writer's connection never goes back to the pool with the writer's settings: the
        pool may hand it to the console, whose commits must fsync and checkpoint by themselves."""
        if broken:
            with contextlib.suppress(Exception):
                runner.conn.invalidate()
            return
        with contextlib.suppress(Exception):
            runner.driver.execute("PRAGMA synchronous=FULL")
            runner.driver.execute("PRAGMA wal_autocheckpoint=1000")  # SQLite's default
        runner.close()


class WalSyncer(threading.Thread):
    """fsyncs the SQLite WAL for the batches committed since its last fsync, then hands their
    replies to the loop (see :class:`InlineCommitter`). One fsync serves every batch committed
    before it began."""

    def __init__(self, host: Host, url: str) -> None:
        super().__init__(name="posgate-wal-sync", daemon=True)
        from posgate.store.engine import sqlite_path

        self.host = host
        path = sqlite_path(url)
        self.db_path = str(path) if path is not None else None
        self.wal_path = f"{self.db_path}-wal" if self.db_path else None
        self.cond = threading.Condition()
        self.items: list[Result] = []
        self.stopping = False
        self.checkpointer: WalCheckpointer | None = None
        if self.db_path is not None:
            # The WAL file exists from the first write (migrations); make its directory entry
            # durable too, once, since our fsyncs below only cover the file's contents.
            _fsync_path(os.path.dirname(os.path.abspath(self.db_path)) or ".", directory=True)

    def put(self, results: list[Result] | None) -> None:
        with self.cond:
            if results is None:
                self.stopping = True
            else:
                self.items.extend(results)
            self.cond.notify()

    def run(self) -> None:
        host = self.host
        while True:
            with self.cond:
                while not self.items and not self.stopping:
                    self.cond.wait()
                if not self.items:
                    return
                items, self.items = self.items, []
            t0 = time.perf_counter()
            try:
                self.sync()
            except OSError:
                # Not known to be durable: no reply; the terminals reverse (protocol recovery).
                log.exception("fsync of the write-ahead log failed; %d requests unanswered", len(items))
                m.ERRORS.labels("fsync").inc(len(items))
                m.HEALTH.database = "error"
                items = [(p, f, tr, None) for p, f, tr, _ in items]
            else:
                m.FSYNC_SECONDS.observe(time.perf_counter() - t0)
            host.loop.call_soon_threadsafe(host.deliver_batch, items)
            if self.checkpointer is not None:
                self.checkpointer.poke()

    def sync(self) -> None:
        if self.wal_path is None:  # an in-memory database: nothing to make durable
            return
        try:
            _fsync_path(self.wal_path)
        except FileNotFoundError:
            # No WAL: SQLite checkpointed it into the database file and removed it (last
            # connection closed); the database file then holds everything.
            assert self.db_path is not None
            _fsync_path(self.db_path)


class WalCheckpointer(threading.Thread):
    """Copies the SQLite WAL back into the database file, off the loop thread.

    Why: SQLite's automatic checkpoint runs inside the commit that crosses its threshold, on
    the committing thread: copying a thousand pages and two fsyncs stalled the loop (compare
    ``make bench-host`` at this class's commit and at the one before). The writer runs with ``wal_autocheckpoint=0``; this thread,
    woken after each WAL fsync (at most every ``interval`` s), runs a PASSIVE checkpoint on its
    own connection, which copies what is committed while the writer goes on. A PASSIVE
    checkpoint never catches up with a writer that keeps writing, so once the WAL holds more
    than ``restart_frames`` frames a RESTART checkpoint takes the write lock for the few frames
    left and lets the next transaction start the WAL from its beginning again (a short wait of
    the loop's next BEGIN instead of an unbounded WAL). Its connection keeps
    ``synchronous=FULL``: the WAL is synced before pages are copied, the database after.
    """

    def __init__(self, host: Host, interval: float = 0.05, restart_frames: int = 8192) -> None:
        super().__init__(name="posgate-wal-checkpoint", daemon=True)
        self.host = host
        self.interval = interval
        self.restart_frames = restart_frames
        self.wake = threading.Event()
        self.stopping = False

    def poke(self) -> None:
        self.wake.set()

    def stop(self) -> None:
        self.stopping = True
        self.wake.set()

    def run(self) -> None:
        try:
            conn = self.host.db.engine.connect()
        except Exception:  # noqa: BLE001 - without it the WAL only grows; the host still answers
            log.exception("the WAL checkpointer cannot connect; the WAL will grow until restart")
            return
        try:
            driver = conn.connection.driver_connection
            assert driver is not None
            while not self.stopping:
                self.wake.wait()
                self.wake.clear()
                if self.stopping:
                    break
                try:
                    _busy, frames, done = driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if frames >= self.restart_frames and done >= frames - self.restart_frames // 8:
                        driver.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
                        m.CHECKPOINTS.labels("restart").inc()
                    else:
                        m.CHECKPOINTS.labels("passive").inc()
                except Exception:  # noqa: BLE001 - a checkpoint that fails is tried again later
                    log.exception("WAL checkpoint failed")
                time.sleep(self.interval)
        finally:
            conn.close()


def _fsync_path(path: str, directory: bool = False) -> None:
    # Opened afresh each time: SQLite may recreate the WAL file (a new inode) behind our back.
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class CommitWorker(threading.Thread):
    """PostgreSQL: a thread with its own connection takes every request queued (up to
    ``batch_max``), runs them as one unit of work (:class:`BatchRunner`), commits, and only then
    hands the replies back to the loop. Several workers (``--workers``) commit in parallel:
    PostgreSQL round trips release the GIL."""

    def __init__(self, host: Host, index: int, q: queue.SimpleQueue[Any]) -> None:
        super().__init__(name=f"posgate-commit-{index}", daemon=True)
        self.host = host
        self.q = q

    def run(self) -> None:
        host = self.host
        q = self.q
        batch_max = host.config.batch_max
        stop = False
        while not stop:
            try:
                runner = BatchRunner(host, host.db.engine.connect())
            except Exception:  # noqa: BLE001 - the database is down: keep trying, answer nothing
                log.exception("commit worker cannot connect to the database; retrying")
                m.HEALTH.database = "error"
                self._fail_queued(q)
                time.sleep(1)
                continue
            try:
                while True:
                    item = q.get()
                    if item is _STOP:
                        stop = True
                        break
                    batch = [item]
                    while len(batch) < batch_max:
                        try:
                            nxt = q.get_nowait()
                        except queue.Empty:
                            break
                        if nxt is _STOP:
                            stop = True
                            break
                        batch.append(nxt)
                    t0 = time.perf_counter()
                    try:
                        results = runner.run(batch)
                    except Exception:  # noqa: BLE001 - the database failed: nobody gets a reply for this batch
                        host.loop.call_soon_threadsafe(host.deliver_batch, _commit_failed(batch))
                        time.sleep(0.1)  # do not spin against a database that is down
                        break  # reconnect
                    _observe_commit(t0, len(batch))
                    host.loop.call_soon_threadsafe(host.deliver_batch, results)
                    if stop:
                        break
            finally:
                runner.close()

    def _fail_queued(self, q: queue.SimpleQueue[Any]) -> None:
        failed = []
        while True:
            try:
                item = q.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                q.put(_STOP)
                break
            failed.append((*item, None))
        if failed:
            self.host.loop.call_soon_threadsafe(self.host.deliver_batch, failed)


class WorkerPool:
    """The commit workers and their shared queue (PostgreSQL)."""

    def __init__(self, host: Host, n: int) -> None:
        self.host = host
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.workers = [CommitWorker(host, i, self.queue) for i in range(n)]

    def start(self) -> None:
        for w in self.workers:
            w.start()

    def submit(self, item: Any) -> None:
        self.queue.put(item)

    async def stop(self) -> None:
        for _ in self.workers:
            self.queue.put(_STOP)
        for w in self.workers:
            await self.host.loop.run_in_executor(None, w.join)


# -- the host ------------------------------------------------------------------------------------


def _decline_reason(reply: Reply) -> str:
    """The detail of the step that declined (``"field 35: a 0 or F pad nibble"``), without its code."""
    for _who, vote, detail in reversed(getattr(reply, "trace", None) or ()):
        if vote == "ABORTED" and detail:
            code, _, rest = detail.partition(" ")
            return rest or code
    return ""


class Host:
    """Listening socket + connections + commit workers. Use :meth:`start` then :meth:`serve_until_stopped`."""

    def __init__(self, db: Database, config: ServerConfig, *, processor: Processor | None = None,
                 issuer_factory: Any = DEFAULT, env: Env | None = None) -> None:  # fmt: skip
        self.db = db
        self.config = config
        self.processor: Processor = processor or default_processor()
        self.env = env or make_env(db)
        self.issuer_factory: IssuerFactory | None = (
            builtin_issuer_factory(self.env) if issuer_factory is DEFAULT else issuer_factory
        )
        self.committer: InlineCommitter | WorkerPool | None = None
        self.connections: set[TerminalProtocol] = set()
        self._counters: dict[tuple[str, str], Any] = {}  # TRANSACTIONS children by (operation, code)
        self.stopping = False
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.server: asyncio.AbstractServer | None = None
        self.address: tuple[str, int] = (config.host, config.port)
        self._sweeper: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._in_flight = 0
        self._refused_logged = 0.0
        self._stopped = asyncio.Event()

    async def start(self) -> tuple[str, int]:
        self.loop = asyncio.get_running_loop()
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopped = asyncio.Event()
        self.committer = InlineCommitter(self) if self.db.is_sqlite else WorkerPool(self, max(1, self.config.workers))
        self.committer.start()
        self.server = await self.loop.create_server(
            lambda: TerminalProtocol(self), self.config.host, self.config.port, backlog=1024, reuse_address=True
        )
        sock = self.server.sockets[0].getsockname()
        self.address = (sock[0], sock[1])
        self._sweeper = asyncio.create_task(self._sweep())
        m.HEALTH.state = "serving"
        m.HEALTH.database = "ok"  # Database.open() connected and migrated it
        m.HEALTH.listening = f"{self.address[0]}:{self.address[1]}"
        return self.address

    # called on the loop
    def submit(self, proto: TerminalProtocol, frame: Frame, t0: float) -> None:
        self._in_flight += 1
        self._idle.clear()
        assert self.committer is not None
        self.committer.submit((proto, frame, t0))

    def deliver_batch(self, results: list[tuple[TerminalProtocol, Frame, float, Reply | None]]) -> None:
        logging_on = self.config.log_transactions and log.isEnabledFor(logging.INFO)
        counters = self._counters
        for proto, frame, t0, reply in results:
            self._in_flight -= 1
            proto.deliver(frame, t0, reply)  # the reply leaves first; counting and logging after
            if reply is not None:
                op = getattr(reply, "operation", None) or "unknown"
                # A reply that was not sent has no response code on the wire: never count or log it as one.
                rc = (getattr(reply, "response_code", None) or "") if reply.body is not None else "none"
                counter = counters.get((op, rc))
                if counter is None:  # labels() validates and locks: once per (operation, code)
                    counter = counters[(op, rc)] = m.TRANSACTIONS.labels(op, rc)
                counter.inc()
                if op == "reversal":
                    m.REVERSALS.labels(rc).inc()
                if reply.body is None:
                    self._log_unanswered(proto, frame, reply)
                elif logging_on:
                    self._log_transaction(proto, frame, t0, reply, op, rc)
        if self._in_flight == 0:
            self._idle.set()

    def _log_transaction(self, proto: TerminalProtocol, frame: Frame, t0: float, reply: Reply, op: str, rc: str) -> None:
        request = getattr(reply, "request", None)  # the pipeline's decoded request: no second decode
        try:
            text = describe_short(request if request is not None else decode(frame.body))
        except Exception:  # noqa: BLE001 - an undecodable request is described by its size only
            text = f"undecodable request, {len(frame.body)} bytes"
        extra: dict[str, Any] = {"operation": op, "rc": rc, "ms": round((self.loop.time() - t0) * 1000, 2), "peer": proto.peer}
        why = _decline_reason(reply)
        if why:
            extra["reason"] = why  # the field and what was expected (trace details hold no card data)
        log.info(text, extra=fields(**extra))

    @staticmethod
    def _log_unanswered(proto: TerminalProtocol, frame: Frame, reply: Reply) -> None:
        """A request the host could not answer: the log says so, and why (never an ``rc``)."""
        log.warning("no reply sent, connection closed: %s", _decline_reason(reply) or "nothing to answer",
                    extra=fields(peer=proto.peer, bytes=len(frame.body)))  # fmt: skip


    def note_refused(self, peer: str) -> None:
        now = time.monotonic()
        if now - self._refused_logged > 5:
            self._refused_logged = now
            log.warning("connection refused: %d connections open (the maximum)", len(self.connections),
                        extra=fields(peer=peer))  # fmt: skip

    async def _sweep(self) -> None:
        cfg = self.config
        while True:
            await asyncio.sleep(min(1.0, cfg.frame_timeout / 2, cfg.idle_timeout / 2))
            now = self.loop.time()
            for proto in list(self.connections):
                if proto.busy or proto.closed:
                    continue
                if proto.partial_since is not None and now - proto.partial_since > cfg.frame_timeout:
                    proto.reject("slow_frame", f"partial frame pending for more than {cfg.frame_timeout:g} s")
                elif now - proto.last_rx > cfg.idle_timeout and not proto.pending:
                    proto.reject("idle", f"no bytes for {cfg.idle_timeout:g} s")

    async def shutdown(self) -> None:
        """Graceful stop: no new connections, in-flight work committed and answered, then close."""
        if self.stopping:
            await self._stopped.wait()
            return
        self.stopping = True
        m.HEALTH.state = "stopping"
        log.info("shutting down: no new connections; finishing %d requests in flight", self._in_flight)
        if self.server is not None:
            await self._stop_accepting()
            self.server.close()
        # Stop reading: requests already received are finished, nothing new is started.
        for proto in list(self.connections):
            if proto.transport is not None and not proto.transport.is_closing():
                try:
                    proto.transport.pause_reading()
                except RuntimeError:
                    pass
        # Every frame already received is processed (a reply submits the connection's next one).
        await self._idle.wait()
        for proto in list(self.connections):
            if proto.transport is not None:
                proto.transport.close()  # flushes what is buffered, then closes
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self.committer is not None:
            await self.committer.stop()
        # Give the transports a moment to drain their write buffers.
        deadline = self.loop.time() + 5
        while self.connections and self.loop.time() < deadline:
            await asyncio.sleep(0.01)
        if self.server is not None:
            await self.server.wait_closed()
        log.info("host stopped")
        self._stopped.set()

    async def _stop_accepting(self) -> None:
        """No new connection from here on, and none half-accepted when the server closes.

        On the standard selector loop a connection accepted in the iteration before the stop
        gets its transport in a task of the next iteration; if ``server.close()`` ran first, the
        transport's constructor fails (3.11: ``Server._attach`` asserts the server still has
        sockets) and the accepted socket is never closed. So the listening sockets stop being
        read first, and the loop runs the iterations that task needs (its first step builds the
        transport, the next calls ``connection_made``), a count of iterations, not a wait for
        time. uvloop accepts and attaches in one callback: there is no such gap to close."""
        assert self.server is not None
        if not isinstance(self.loop, asyncio.BaseEventLoop) or not hasattr(self.loop, "_selector"):
            return
        for sock in getattr(self.server, "sockets", ()):
            self.loop.remove_reader(sock.fileno())
        for _ in range(3):
            await asyncio.sleep(0)

    async def wait_stopped(self) -> None:
        await self._stopped.wait()


# Young-generation collections every this many net allocations (CPython's default is 700).
GC_GEN0_THRESHOLD = 20_000


def settle_heap() -> None:
    """Keep the cyclic garbage collector off the per-request path.

    Why: a host process holds a large, long-lived heap (SQLAlchemy, the console's app, the
    compiled codec) that the collector scanned again at every full collection, a latency spike
    for every request in that batch. ``gc.freeze()`` moves everything alive at start-up out of
    the collector's sight (it lives as long as the process anyway), and a larger
    young-generation threshold makes collections rarer; requests make almost no cycles, their
    objects are freed by reference counting. ``python -m posgate.bench.pipeline --rounds 60``
    reports the collection time in its timed batches: 34-36 µs per sale (60 collections, 65-69
    ms) as it is, none with ``--settle-heap``.
    """
    gc.collect()
    gc.freeze()
    _, g1, g2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, g1, g2)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when installed (about twice the default loop's throughput), else asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
