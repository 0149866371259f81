"""Store and forward: the acquirer's upstream reversals and advices, kept until acknowledged.

Theory of operation
-------------------
The journal is a small database of its own (SQLite, one file per acquirer process), written
and committed *outside* the host's unit of work: the host holds its database's write lock
while the pipeline waits for the network, so the journal cannot live in that database. Its
entries are sealed under the acquirer's master key (a reversal carries the PAN).

An entry is written before the message it protects could matter, and a condition on the host's
*committed* transactions decides whether it is sent — so a unit of work that rolls back, or an
acquirer killed between the network's reply and the commit, never leaves the two sides apart:

``armed``    a reversal written before an online request leaves. Once the request's unit of
             work is over (``grace`` seconds, or at once after a restart), it is *disarmed* if a
             committed approved transaction carries that upstream (RRN, STAN), else sent: the
             network approved something the acquirer did not keep (timeout, crash, rollback).
             A timeout sends it at once.
``waiting``  an advice (offline sale, adjustment, stand-in approval) or a terminal's reversal:
             sent once a committed approved transaction carries its (RRN, STAN), dropped if
             none appears within ``expiry`` seconds (the unit of work rolled back).
``pending``  to be sent; FIFO per link (an advice goes up before its own reversal). A resend
             uses the repeat MTI (0221, 0421); the network answers repeats without executing
             them again. Any reply but 91/96 acknowledges (``acked``).

:class:`Forwarder` is the thread that resolves and sends; it resumes whatever a killed process
left (its entries carry the ``boot`` of the process that wrote them).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Engine,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    func,
    select,
    update,
)

from posgate.dialect import network as h2h
from posgate.iso8583 import Message
from posgate.network.link import Link, LinkDown

log = logging.getLogger("posgate.upstream")

metadata = MetaData()
saf = Table(
    "upstream_saf",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("link", String(32), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # reversal | advice
    Column("state", String(16), nullable=False, index=True),  # armed | waiting | pending | acked | dropped | disarmed
    Column("mti", String(4), nullable=False),
    Column("stan", String(6), nullable=False),
    Column("rrn", String(12), nullable=False),
    Column("check_stan", String(6), nullable=False),  # the upstream (RRN, STAN) looked for in transactions
    Column("check_rrn", String(12), nullable=False),
    Column("message", LargeBinary, nullable=False),  # sealed under the acquirer's master key
    Column("attempts", Integer, nullable=False, default=0),
    Column("boot", String(32), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("response_code", String(2)),
)

OPEN_STATES = ("armed", "waiting", "pending")


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    link: str
    kind: str
    state: str
    mti: str
    stan: str
    rrn: str
    check_stan: str
    check_rrn: str
    message: bytes
    attempts: int
    boot: str
    created_at: float


class Journal:
    def __init__(self, path: Path | str, seal: Callable[[bytes], bytes], unseal: Callable[[bytes], bytes],
                 boot: str) -> None:  # fmt: skip
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(f"sqlite:///{self.path}")
        event.listen(self.engine, "connect", _pragmas)
        metadata.create_all(self.engine)
        self._seal, self._unseal = seal, unseal
        self.boot = boot
        self._lock = threading.Lock()

    def close(self) -> None:
        self.engine.dispose()

    def add(self, link: str, kind: str, state: str, msg: Message, check: tuple[str, str]) -> int:
        """Write an entry and commit it (durable before this returns)."""
        now = time.time()
        with self._lock, self.engine.begin() as conn:
            res = conn.execute(saf.insert().values(
                link=link, kind=kind, state=state, mti=msg.mti, stan=msg.text(11), rrn=msg.text(37),
                check_stan=check[1], check_rrn=check[0], message=self._seal(h2h.encode(msg)), attempts=0,
                boot=self.boot, created_at=now, updated_at=now,
            ))  # fmt: skip
            return int(res.inserted_primary_key[0])  # type: ignore[index]

    def set_state(self, entry_id: int, state: str, *, response_code: str | None = None, attempts: int | None = None) -> None:
        values: dict[str, Any] = {"state": state, "updated_at": time.time()}
        if response_code is not None:
            values["response_code"] = response_code
        if attempts is not None:
            values["attempts"] = attempts
        with self._lock, self.engine.begin() as conn:
            conn.execute(update(saf).where(saf.c.id == entry_id).values(**values))

    def entries(self, *states: str, link: str | None = None, limit: int = 100) -> list[Entry]:
        q = select(*[saf.c[f] for f in Entry.__slots__]).where(saf.c.state.in_(states)).order_by(saf.c.id).limit(limit)
        if link is not None:
            q = q.where(saf.c.link == link)
        with self.engine.connect() as conn:
            return [Entry(*row) for row in conn.execute(q)]

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {str(s): int(n) for s, n in conn.execute(select(saf.c.state, func.count()).group_by(saf.c.state))}

    def queue_counts(self) -> dict[str, dict[str, Any]]:
        """Per link: pending reversals and advices, entries awaiting the host's commit (armed,
        waiting) and the oldest pending entry's ``created_at`` (for the console and metrics)."""
        out: dict[str, dict[str, Any]] = {}
        q = (select(saf.c.link, saf.c.state, saf.c.kind, func.count(), func.min(saf.c.created_at))
             .where(saf.c.state.in_(OPEN_STATES)).group_by(saf.c.link, saf.c.state, saf.c.kind))  # fmt: skip
        with self.engine.connect() as conn:
            for link, state, kind, n, oldest in conn.execute(q):
                d = out.setdefault(str(link), {"reversal": 0, "advice": 0, "awaiting": 0, "oldest": None})
                if state == "pending":
                    d[str(kind)] = d.get(str(kind), 0) + int(n)
                    d["oldest"] = oldest if d["oldest"] is None else min(d["oldest"], oldest)
                else:
                    d["awaiting"] += int(n)
        return out

    def pending_before(self, created_before: float) -> dict[str, int]:
        """Per link: pending entries written before ``created_before`` (epoch s)."""
        q = (select(saf.c.link, func.count()).where(saf.c.state == "pending", saf.c.created_at < created_before)
             .group_by(saf.c.link))  # fmt: skip
        with self.engine.connect() as conn:
            return {str(link): int(n) for link, n in conn.execute(q)}

    def prune(self, older_than: float) -> int:
        """Forget finished entries (acknowledged, disarmed, dropped) older than ``older_than`` (epoch s)."""
        with self._lock, self.engine.begin() as conn:
            res = conn.execute(saf.delete().where(saf.c.state.notin_(OPEN_STATES), saf.c.updated_at < older_than))
            return int(res.rowcount or 0)

    def message(self, entry: Entry) -> Message:
        return h2h.decode(self._unseal(entry.message))


def _pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")  # an entry is on disk before the terminal is answered
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


# (upstream RRN, STAN, is a terminal reversal) → a committed approved transaction carries it
Committed = Callable[[str, str, bool], bool]


class Forwarder(threading.Thread):
    """Resolves armed/waiting entries and sends pending ones, per link, until :meth:`stop`."""

    def __init__(self, journal: Journal, links: dict[str, Link], committed: Committed, *, grace: float = 10.0,
                 expiry: float | None = None, interval: float = 0.1, on_tick: Callable[[], None] | None = None) -> None:  # fmt: skip
        super().__init__(name="posgate-saf", daemon=True)
        self.journal = journal
        self.links = links
        self.committed = committed
        self.grace = grace
        self.expiry = expiry if expiry is not None else max(60.0, 6 * grace)
        self.interval = interval
        self.on_tick = on_tick
        self._stop_event = threading.Event()
        self._next_try: dict[str, float] = {}
        self._pruned = 0.0
        self.keep = 86_400.0  # finished entries are kept a day (for the console and an inquiry), then forgotten
        self.wake = threading.Event()

    def next_try_at(self, name: str) -> float | None:
        """When the link's queue is tried again (epoch s), if it is backing off after a failure."""
        t = self._next_try.get(name)
        return None if t is None else time.time() + max(0.0, t - time.monotonic())

    def stop(self) -> None:
        self._stop_event.set()
        self.wake.set()
        self.join(10)

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - logged; the next tick tries again
                log.exception("store-and-forward tick failed")
            self.wake.wait(self.interval)
            self.wake.clear()

    def tick(self) -> None:
        if self.on_tick is not None:
            self.on_tick()
        self.resolve()
        for name, link in self.links.items():
            self.forward(name, link)
        now = time.time()
        if now - self._pruned > 600:
            self._pruned = now
            self.journal.prune(now - self.keep)

    def resolve(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        j = self.journal
        for e in j.entries("armed", "waiting", limit=500):
            old = e.boot != j.boot  # written by a process that is gone: its units of work are over
            age = now - e.created_at
            if e.state == "armed" and (old or age >= self.grace):
                if self.committed(e.check_rrn, e.check_stan, False):
                    j.set_state(e.id, "disarmed")
                else:
                    j.set_state(e.id, "pending")
                    log.info("upstream reversal of RRN %s queued (no approved transaction kept)", e.check_rrn)
            elif e.state == "waiting":
                if self.committed(e.check_rrn, e.check_stan, e.kind == "reversal"):
                    j.set_state(e.id, "pending")
                elif old or age >= self.expiry:
                    j.set_state(e.id, "dropped")

    def forward(self, name: str, link: Link) -> None:
        if not link.up or time.monotonic() < self._next_try.get(name, 0.0):
            return
        for e in self.journal.entries("pending", link=name, limit=50):
            msg = self.journal.message(e)
            if e.attempts:
                msg = msg.replace(mti=msg.mti[:3] + "1")  # a repeat: 0421, 0221
            try:
                reply = link.call(msg)
            except LinkDown:
                reply = None
            if reply is None or reply.text(39) in ("91", "96"):
                attempts = e.attempts + 1
                self.journal.set_state(e.id, "pending", attempts=attempts)
                self._next_try[name] = time.monotonic() + min(30.0, 0.2 * 2 ** min(attempts, 8))
                return  # FIFO: nothing behind it goes first
            self.journal.set_state(e.id, "acked", response_code=reply.text(39), attempts=e.attempts + 1)
        self._next_try.pop(name, None)
