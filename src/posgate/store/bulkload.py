"""Bulk history: fill a database with N past sales over many merchants and days, fast.

``posgate admin load-demo-history --rows N --merchants M --days D --db URL`` (and the growth
benchmark, ``posgate.bench.growth``) use it to see how the host and the console behave on a
database that has been in service for a while.

Theory of operation
-------------------
* **Who**: M merchants (``8981000888xxxxx``) with ``--terminals-per-merchant`` terminals each
  (TIDs ``5xxxxxxx``, apart from the demo's and the fleet's), created through the store's admin
  API like any provisioning, idempotently. Their TMKs are random and sealed like every TMK.
* **Cards**: a pool of ``--cards`` distinct cardholders (19-digit CUP PANs with a valid check
  digit, ``621483...``). Each PAN is hashed (``Keyring.pan_hash``, the keyed HMAC the host
  writes and the console's search by card number looks up) and sealed
  (``Keyring.encrypt_pan``, AES-GCM under the master key) **once**; every sale of that card
  carries the same hash, masked form and sealed blob, exactly the columns the host writes for a
  card sale. No clear PAN is written anywhere.
* **What**: sales spread over the D business days before today (acquirer time zone from the
  settings), in time order like a real ledger; each terminal's day is one batch (batch number =
  day index) with STANs counting up; ~2.5 % are declines (51, insufficient funds). RRNs start
  at ``9`` (the host's own allocator counts up from 1: no clash with live traffic). The loaded
  rows carry no stored reply (the host keeps replies to answer retransmissions within an open
  batch; these batches are long settled) and a one-step trace naming the loader.
* **How**: in one transaction, the table's secondary indexes (``ix_*``) are dropped, the rows
  appended, the indexes built again (sorting 10^7 keys once costs far less than 10^7 random
  B-tree inserts into each of a dozen indexes), then committed: nothing is visible, or left
  half done, before the commit. PostgreSQL through ``COPY ... FROM STDIN`` (psycopg) with
  ``synchronous_commit`` off and a larger ``maintenance_work_mem`` for the session; SQLite
  through ``executemany`` in chunks of 50,000 rows with ``synchronous=OFF`` and a 1 GiB page
  cache on the loader's own connection (the file stays in WAL mode; the host's connections
  keep ``synchronous=FULL``). Then ``ANALYZE`` (``VACUUM (ANALYZE)`` on PostgreSQL, so that no
  autovacuum of the new rows runs later under live traffic; a WAL checkpoint on SQLite). Progress is
  reported through a callback (the command shows a Rich bar). Stop the host during a load:
  it holds the write lock (SQLite) or the table's lock (PostgreSQL) until the commit.

Generation is deterministic for a seed; loading twice appends a second history (new RRNs and
digests; the batch numbers repeat, so the second load uses ``--first-batch`` past the first).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from posgate.crypto.luhn import luhn_check_digit
from posgate.domain.masking import mask_pan

HISTORY_MERCHANT_BASE = 898100088800000
HISTORY_TID_BASE = 50_000_000
PAN_PREFIX = "621483"
RRN_BASE = 900_000_000_000
DECLINE_RATE = 0.025
CHUNK = 50_000
TRACE = json.dumps([["load-demo-history", "prepared", "history"]])

# The loaded columns, in this order (every NOT NULL column without a server default included).
COLUMNS = (
    "created_at", "day", "terminal_id", "merchant_id", "batch_no", "stan", "mti", "operation", "processing_code",
    "amount", "currency", "pan_hash", "pan_masked", "pan_enc", "card_organisation", "entry_mode", "response_code",
    "auth_code", "rrn", "status", "refunded_amount", "request_digest", "trace", "signed", "source", "operator",
)  # fmt: skip

Progress = Callable[[int, int], None]  # (rows done, rows in all)


@dataclass(frozen=True)
class HistoryPlan:
    rows: int
    merchants: int = 1000
    days: int = 365
    terminals_per_merchant: int = 2
    cards: int = 100_000
    seed: int = 1
    end_day: date | None = None  # the last loaded business day (default: yesterday, acquirer time)
    first_batch: int = 1
    amounts: tuple[int, int] = (100, 200_000)  # fen

    def check(self) -> None:
        if (
            self.rows < 1
            or self.merchants < 1
            or self.days < 1
            or self.terminals_per_merchant < 1
            or self.cards < 1
        ):
            raise ValueError("rows, merchants, days, terminals per merchant and cards must all be at least 1")
        if self.merchants > 99_999:
            raise ValueError("at most 99,999 merchants (their numbers are 8981000888xxxxx)")
        if self.merchants * self.terminals_per_merchant > 9_999_999:
            raise ValueError("at most 9,999,999 terminals")
        if self.first_batch + self.days > 999_999:
            raise ValueError("the batch numbers would pass 999999")
        per_batch = self.rows / (self.merchants * self.terminals_per_merchant * self.days)
        if per_batch > 500_000:
            raise ValueError("too many rows per terminal and day: add merchants or days")


@dataclass(frozen=True)
class Card:
    pan_hash: str
    pan_masked: str
    pan_enc: bytes


def history_pan(i: int) -> str:
    partial = f"{PAN_PREFIX}{i:012d}"
    return partial + luhn_check_digit(partial)


def history_terminals(plan: HistoryPlan) -> list[tuple[str, str]]:
    """(TID, MID) of every history terminal, merchant by merchant."""
    out = []
    for m in range(plan.merchants):
        mid = f"{HISTORY_MERCHANT_BASE + m + 1:015d}"
        for k in range(plan.terminals_per_merchant):
            out.append((f"{HISTORY_TID_BASE + m * plan.terminals_per_merchant + k + 1:08d}", mid))
    return out


def card_pool(keyring: Any, n: int) -> list[Card]:
    """The n history cards: each PAN hashed and sealed once, the clear number dropped at once."""
    pool = []
    for i in range(n):
        pan = history_pan(i + 1)
        pool.append(Card(keyring.pan_hash(pan), mask_pan(pan), keyring.encrypt_pan(pan)))
    return pool


def provision_history(db: Any, plan: HistoryPlan) -> list[tuple[str, str]]:
    """Create the history merchants and terminals (admin API, idempotent); their (TID, MID)."""
    from sqlalchemy import select

    from posgate.store.admin import add_merchant, add_terminal
    from posgate.store.schema import merchants, terminals

    pairs = history_terminals(plan)
    with db.engine.begin() as conn:
        have_m = set(conn.execute(select(merchants.c.merchant_id)).scalars())
        have_t = set(conn.execute(select(terminals.c.terminal_id)).scalars())
        for tid, mid in pairs:
            if mid not in have_m:
                add_merchant(conn, mid, f"历史商户 {mid[-5:]}", "5411", 60, name_en=f"History merchant {mid[-5:]}",
                             actor="load-demo-history")  # fmt: skip
                have_m.add(mid)
            if tid not in have_t:
                add_terminal(conn, db.keyring, tid, mid, actor="load-demo-history", ic_download=False)
    return pairs


def acquirer_tz(db: Any) -> ZoneInfo:
    from sqlalchemy import select

    from posgate.store.schema import settings

    with db.engine.connect() as conn:
        name = conn.execute(select(settings.c.value).where(settings.c.key == "timezone")).scalar()
    return ZoneInfo(name or "Asia/Shanghai")


def generate(plan: HistoryPlan, terminals: Sequence[tuple[str, str]], cards: Sequence[Card], tz: ZoneInfo, *,
             sqlite: bool) -> Iterator[tuple[Any, ...]]:  # fmt: skip
    """The rows, in :data:`COLUMNS` order and time order, day by day."""
    rng = random.Random(plan.seed)
    end = plan.end_day or (datetime.now(tz).date() - timedelta(days=1))
    first = end - timedelta(days=plan.days - 1)
    n_term, n_card = len(terminals), len(cards)
    lo, hi = plan.amounts
    rand = rng.random  # int(rand() * n): a third of randrange()'s cost, on 10^7 rows
    span = hi - lo + 1
    emitted = 0
    serial = 0
    for d in range(plan.days):
        day = first + timedelta(days=d)
        n = plan.rows * (d + 1) // plan.days - emitted
        emitted += n
        if n <= 0:
            continue
        day_text = day.isoformat()
        batch = f"{plan.first_batch + d:06d}"
        # Local midnight of the business day, in UTC: each sale's time is an offset from it.
        start = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC).replace(tzinfo=None)
        offsets = sorted([int(rand() * 86_400_000_000) for _ in range(n)])
        stans = [0] * n_term
        for off in offsets:
            t = int(rand() * n_term)
            tid, mid = terminals[t]
            stans[t] += 1
            card = cards[int(rand() * n_card)]
            serial += 1
            when = start + timedelta(microseconds=off)
            created = (
                when.isoformat(" ", "microseconds") if sqlite else when.isoformat(" ", "microseconds") + "+00"
            )
            declined = rand() < DECLINE_RATE
            yield (
                created, day_text, tid, mid, batch, f"{stans[t] % 1_000_000:06d}", "0200", "sale", "000000",
                lo + int(rand() * span), "156", card.pan_hash, card.pan_masked, card.pan_enc, "CUP", "021",
                "51" if declined else "00", None if declined else f"{serial % 999_999 + 1:06d}",
                f"{RRN_BASE + plan.seed * 10_000_000_000 + serial:012d}"[-12:], "declined" if declined else "approved",
                0, f"{plan.seed:08x}{serial:056x}", TRACE, (0 if sqlite else False) if declined else (1 if sqlite else True),
                "terminal", "001",
            )  # fmt: skip


@dataclass
class LoadResult:
    rows: int
    seconds: float
    terminals: int
    cards: int
    first_day: str
    last_day: str

    @property
    def rows_per_s(self) -> float:
        return self.rows / max(self.seconds, 1e-9)


def load_history(db: Any, plan: HistoryPlan, *, progress: Progress | None = None) -> LoadResult:
    """Provision the history terminals, seal the card pool, and load ``plan.rows`` sales."""
    plan.check()
    t0 = time.monotonic()
    terminals = provision_history(db, plan)
    cards = card_pool(db.keyring, plan.cards)
    tz = acquirer_tz(db)
    rows = generate(plan, terminals, cards, tz, sqlite=db.is_sqlite)
    if db.is_sqlite:
        _load_sqlite(db, rows, plan.rows, progress)
    else:
        _load_postgres(db, rows, plan.rows, progress)
    end = plan.end_day or (datetime.now(tz).date() - timedelta(days=1))
    return LoadResult(plan.rows, time.monotonic() - t0, len(terminals), len(cards),
                      (end - timedelta(days=plan.days - 1)).isoformat(), end.isoformat())  # fmt: skip


def _load_sqlite(db: Any, rows: Iterator[tuple[Any, ...]], total: int, progress: Progress | None) -> None:
    import sqlite3

    from posgate.store.engine import sqlite_path

    path = sqlite_path(db.url)
    if path is None:
        raise ValueError("the history loader needs a SQLite file, not an in-memory database")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        # For the load only (this connection): no fsync, a 1 GiB page cache, temporary B-trees
        # (the index builds' sorts) in memory. The host's connections keep synchronous=FULL;
        # the checkpoint below puts everything in the main file.
        for pragma in ("journal_mode=WAL", "synchronous=OFF", "cache_size=-1048576", "temp_store=MEMORY",
                       "busy_timeout=60000"):  # fmt: skip
            conn.execute(f"PRAGMA {pragma}")
        sql = f"INSERT INTO transactions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"  # noqa: S608 - our own column names
        # One transaction: the secondary indexes are dropped, the rows appended, the indexes
        # built again from sorted runs (far cheaper than 10^7 random B-tree inserts into each).
        # Nothing is visible, or left half done, until the COMMIT.
        conn.execute("BEGIN IMMEDIATE")
        indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'transactions' "
                               "AND sql IS NOT NULL").fetchall()  # fmt: skip
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        done = 0
        while True:
            chunk = [r for _, r in zip(range(CHUNK), rows, strict=False)]
            if not chunk:
                break
            conn.executemany(sql, chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
        for _, create in indexes:
            conn.execute(create)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("ANALYZE")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()


def _load_postgres(db: Any, rows: Iterator[tuple[Any, ...]], total: int, progress: Progress | None) -> None:
    import psycopg

    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as conn:
        # One transaction, as on SQLite: the ix_* indexes dropped, COPY, the indexes built again
        # (maintenance_work_mem for their sorts); other sessions see nothing until the commit.
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '512MB'")
        indexes = conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                               "AND tablename = 'transactions' AND indexname LIKE 'ix\\_%'").fetchall()  # fmt: skip
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        done = 0
        with conn.cursor() as cur:
            while True:
                chunk = [r for _, r in zip(range(CHUNK), rows, strict=False)]
                if not chunk:
                    break
                with cur.copy(f"COPY transactions ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                    for r in chunk:
                        copy.write_row(r)
                done += len(chunk)
                if progress:
                    progress(done, total)
        for _, create in indexes:
            conn.execute(create)
        conn.commit()
        conn.autocommit = True
        # VACUUM as well: it sets the new rows' hint bits and visibility map now, instead of
        # the first readers and an insert-triggered autovacuum doing it under live traffic.
        conn.execute("VACUUM (ANALYZE) transactions")
