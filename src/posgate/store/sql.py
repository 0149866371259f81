"""``SqlHostStore``: the host's store (``posgate.host.ports.HostStore`` and ``IssuerStore``) on
SQLite or PostgreSQL.

Theory of operation
-------------------
The server's commit worker opens one transaction per batch of requests (group commit) on one
SQLAlchemy ``Connection`` and hands a ``SqlHostStore`` over that connection to the pipeline; every
method is synchronous and sees the writes made earlier in the same unit of work. The store never
commits: the unit of work does.

The per-transaction path is kept lean. Each statement is built once with SQLAlchemy Core,
compiled once per dialect (so quoting and parameter style are SQLAlchemy's), and executed on the
driver's own cursor of the same connection, where sqlite3 and psycopg keep it prepared. This
skips SQLAlchemy's per-execution result machinery (measured: 35 µs → 10 µs for a terminal
lookup), so the few type conversions the schema needs (UTC datetimes, JSON, booleans) are done
here, in the formats SQLAlchemy itself reads and writes, so the console's Core queries see the
same values.

Rows the pipeline reads in order to change them (terminal, card, transactions, settlement) are
read ``FOR UPDATE`` on PostgreSQL, where several workers and host processes write at once: the
issuer's read-modify-write of a balance must not lose a concurrent debit. (SQLite has one writer
at a time; SQLAlchemy leaves the clause out there.) Merchants are read without a lock: every
request of a merchant reads its row, and a suspension is a plain overwrite.

Keys and PANs are encrypted with the local master key (``posgate.store.keyring``) on the way in
and decrypted on the way out; records carry clear keys in memory only.

RRNs and auth codes must be unique across host processes: :class:`IdAllocator` reserves blocks
from the ``counters`` table in short transactions of their own (``UPDATE ... RETURNING``), never
inside a unit of work, so a rolled-back batch can never hand out numbers that another process
may also hold.
"""

from __future__ import annotations

import contextlib
import json
import json.encoder
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import fields as dc_fields
from dataclasses import replace as dc_replace
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, cast

from sqlalchemy import JSON as SA_JSON
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Table,
    Text,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy import cast as sa_cast
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement, ColumnElement

from posgate.crypto.tdes import kcv
from posgate.dialect.ic_params import AidParams, Capk
from posgate.host.ports import (
    ACTIVE_STATUSES,
    DEBIT_ACTIVITY_OPERATIONS,
    CardRecord,
    DifferenceRecord,
    MerchantRecord,
    RiskRule,
    SettlementRecord,
    SignatureRecord,
    SignOnEntry,
    TerminalRecord,
    TxnRecord,
)
from posgate.store import schema as s
from posgate.store.ic_params import AIDS_VERSION, aid_from_row, aid_select, capk_from_row, capk_select
from posgate.store.keyring import Keyring

# What counts as an approved debit for risk velocity and merchant totals (the contract's rule).
DEBIT_OPERATIONS = tuple(sorted(DEBIT_ACTIVITY_OPERATIONS))
APPROVED_DEBIT_STATUSES = tuple(sorted(ACTIVE_STATUSES))

def _constant_in(col: Column[Any], values: Sequence[str]) -> ColumnElement[bool]:
    """``col IN ('a', 'b')`` with the constants in the SQL text (our own identifiers, never input)."""
    return col.in_([literal_column(f"'{v}'") for v in values])


# -- value conversion between Python records and driver values -------------------------------


def _dt_in_sqlite(v: datetime | None) -> str | None:
    if v is None:
        return None
    if v.tzinfo is UTC:  # the usual case (env.now()): the same text without two new datetimes
        return v.isoformat(" ", "microseconds")[:-6]  # without "+00:00"
    if v.tzinfo is not None:
        v = v.astimezone(UTC).replace(tzinfo=None)
    return v.isoformat(" ", "microseconds")  # SQLAlchemy's SQLite DATETIME storage format


def _dt_out_sqlite(v: Any) -> datetime | None:
    if v is None:
        return None
    return datetime.fromisoformat(v).replace(tzinfo=UTC)


def _dt_in_pg(v: datetime | None) -> datetime | None:
    if v is None or v.tzinfo is not None:
        return v
    return v.replace(tzinfo=UTC)


def _dt_out_pg(v: Any) -> datetime | None:
    return None if v is None else v.astimezone(UTC)


def _no_default(o: Any) -> Any:
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


# json.dumps() builds its C encoder again on every call (a few µs per transaction for the
# trace): build it once, with json.dumps' own defaults (same text, byte for byte).
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_ENCODE = (
    None
    if _c_make_encoder is None
    else _c_make_encoder(
        None, _no_default, json.encoder.encode_basestring_ascii, None, ": ", ", ", False, False, True
    )
)


def _json_in_sqlite(v: Any) -> str | None:
    if v is None:
        return None
    if _ENCODE is None or isinstance(v, str):
        return json.dumps(v)
    return "".join(_ENCODE(v, 0))


def _json_out_sqlite(v: Any) -> Any:
    return None if v is None else json.loads(v)


def _identity(v: Any) -> Any:
    return v


def _row_maker(cls: Callable[..., Any], out: Sequence[Callable[[Any], Any]]) -> Callable[[Sequence[Any]], Any]:
    """``cls`` from a row, ``out[i]`` applied to column ``i``: only the conversions that do
    something are called (most columns come from the driver as they are)."""
    convs = [(i, f) for i, f in enumerate(out) if f is not _identity]
    if not convs:
        return lambda r: cls(*r)

    def make(r: Sequence[Any]) -> Any:
        v = list(r)
        for i, f in convs:
            v[i] = f(v[i])
        return cls(*v)

    return make


def _as_bool(v: Any) -> bool:
    return bool(v)


class _Compiled:
    __slots__ = ("sql", "order", "constants")

    def __init__(self, sql: str, order: tuple[str, ...] | None, constants: dict[str, Any]) -> None:
        self.sql, self.order, self.constants = sql, order, constants

    def args(self, params: dict[str, Any]) -> Any:
        if self.constants:
            params = {**self.constants, **params}
        return params if self.order is None else tuple([params[k] for k in self.order])

    def args_for(self, names: tuple[str, ...], values: tuple[Any, ...]) -> Any:
        """The driver's arguments for ``values`` of the parameters ``names`` (in that order): the
        tuple itself when the statement binds exactly those, in that order (SQLite's ``?``)."""
        if names == self.order and not self.constants:
            return values
        return self.args(dict(zip(names, values, strict=True)))


class _Flavour:
    """What differs between SQLite and PostgreSQL at the driver level."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.sqlite = dialect.name == "sqlite"
        if self.sqlite:
            self.dt_in: Callable[[Any], Any] = _dt_in_sqlite
            self.dt_out: Callable[[Any], Any] = _dt_out_sqlite
            self.json_in: Callable[[Any], Any] = _json_in_sqlite
            self.json_out: Callable[[Any], Any] = _json_out_sqlite
        else:
            from psycopg.types.json import Json

            self.dt_in, self.dt_out = _dt_in_pg, _dt_out_pg
            self.json_in = lambda v: None if v is None else Json(v)
            self.json_out = _identity
        self._compiled: dict[Any, _Compiled] = {}
        self._writers: dict[Any, tuple[Callable[[Any], Any] | None, ...]] = {}
        self._row_args: dict[Any, Callable[[Sequence[Any]], Any]] = {}
        self._statements: dict[Any, tuple[_Compiled, Callable[[Sequence[Any]], Any]]] = {}
        self._lock = threading.Lock()

    def compiled(self, key: Any, build: Callable[[], ClauseElement]) -> _Compiled:
        hit = self._compiled.get(key)
        if hit is not None:
            return hit
        c = build().compile(dialect=self.dialect)
        # Constants in the statement (``status == "closed"``) are bound parameters too.
        constants = {k: v for k, v in c.params.items() if v is not None}
        order = tuple(getattr(c, "positiontup", None) or ()) if self.dialect.positional else None
        hit = _Compiled(c.string, order, constants)
        with self._lock:
            self._compiled[key] = hit
        return hit

    def to_db(self, col: Column[Any]) -> Callable[[Any], Any] | None:
        """The conversion of a value written to ``col`` (None: written as it is)."""
        t = col.type
        if isinstance(t, DateTime):
            return self.dt_in
        if isinstance(t, SA_JSON):
            return self.json_in
        if isinstance(t, Boolean):
            return _as_bool
        return None

    def writers(self, table: Table, cols: tuple[str, ...]) -> tuple[Callable[[Any], Any] | None, ...]:
        """``to_db`` for each of ``cols``, computed once per column set (the hot path only looks up)."""
        key = (table.name, cols)
        hit = self._writers.get(key)
        if hit is None:
            for k in cols:
                if k not in table.c:
                    raise ValueError(f"{table.name}: no column {k!r}")
            hit = tuple(self.to_db(table.c[k]) for k in cols)
            with self._lock:
                self._writers[key] = hit
        return hit

    def row_args(self, table: Table, cols: tuple[str, ...], sql: _Compiled) -> Callable[[Sequence[Any]], Any]:
        """A function from a row's values in ``cols`` order to the driver's arguments of ``sql``
        (the compiled insert of ``cols``): the conversions applied, in the statement's order."""
        key = (table.name, cols, sql.sql)
        hit = self._row_args.get(key)
        if hit is not None:
            return hit
        writers = self.writers(table, cols)
        order, constants = sql.order, sql.constants
        if order is not None and not constants and sorted(order) == sorted(cols):
            # Positional parameters (SQLite): the statement binds the table's column order, which
            # need not be ``cols`` order (a record's field order): values are picked in the
            # statement's order and converted there, no dict in between.
            pick = tuple(cols.index(k) for k in order)
            same = pick == tuple(range(len(cols)))
            convs = [(j, conv) for j, conv in enumerate(writers[i] for i in pick) if conv is not None]

            def args(values: Sequence[Any]) -> Any:
                out = list(values) if same else [values[i] for i in pick]
                for j, conv in convs:
                    v = out[j]
                    if v is not None:
                        out[j] = conv(v)
                return out

        else:
            named = [(i, conv) for i, conv in enumerate(writers) if conv is not None]

            def args(values: Sequence[Any]) -> Any:
                out = list(values)
                for i, conv in named:
                    v = out[i]
                    if v is not None:
                        out[i] = conv(v)
                return sql.args(dict(zip(cols, out, strict=True)))

        with self._lock:
            self._row_args[key] = args
        return args

    def inserter(self, table: Table, cols: tuple[str, ...], returning: bool = True
                 ) -> tuple[_Compiled, Callable[[Sequence[Any]], Any]]:  # fmt: skip
        """The insert of ``cols`` into ``table`` (``RETURNING id`` on PostgreSQL unless not
        ``returning``: the id is among ``cols``) and its ``row_args``, found with one lookup."""
        key = ("ins", table.name, cols, returning)
        hit = self._statements.get(key)
        if hit is None:
            if self.sqlite or not returning:
                c = self.compiled(key, lambda: insert(table).values({k: bindparam(k) for k in cols}))
            else:
                c = self.compiled(key, lambda: insert(table).values({k: bindparam(k) for k in cols}).returning(table.c.id))
            hit = (c, self.row_args(table, cols, c))
            with self._lock:
                self._statements[key] = hit
        return hit

    def updater(self, table: Table, key_col: str, cols: tuple[str, ...]) -> tuple[_Compiled, Callable[[Sequence[Any]], Any]]:
        """``UPDATE table SET cols WHERE key_col = ?`` and a function from the values of ``cols``
        then the key, in that order, to the driver's arguments (conversions applied)."""
        key = ("upd", table.name, key_col, cols)
        hit = self._statements.get(key)
        if hit is None:
            writers = self.writers(table, cols)  # also refuses unknown columns
            c = self.compiled(
                key, lambda: update(table).where(table.c[key_col] == bindparam("_key")).values({k: bindparam(k) for k in cols})
            )
            names = (*cols, "_key")
            convs = [(i, conv) for i, conv in enumerate(writers) if conv is not None]

            def args(values: Sequence[Any]) -> Any:
                if convs:
                    out = list(values)
                    for i, conv in convs:
                        v = out[i]
                        if v is not None:
                            out[i] = conv(v)
                    values = out
                return c.args_for(names, tuple(values))

            hit = (c, args)
            with self._lock:
                self._statements[key] = hit
        return hit

    def from_db(self, col: Column[Any]) -> Callable[[Any], Any]:
        t = col.type
        if isinstance(t, DateTime):
            return self.dt_out
        if isinstance(t, SA_JSON):
            return self.json_out
        if isinstance(t, Boolean):
            return _as_bool
        return _identity


_FLAVOURS: dict[str, _Flavour] = {}
_FLAVOURS_LOCK = threading.Lock()


def _flavour(dialect: Dialect) -> _Flavour:
    f = _FLAVOURS.get(dialect.name)
    if f is None:
        with _FLAVOURS_LOCK:
            f = _FLAVOURS.setdefault(dialect.name, _Flavour(dialect))
    return f


# -- identifiers unique across processes --------------------------------------------------------


class IdAllocator:
    """Hands out RRNs and auth codes from blocks reserved in the ``counters`` table.

    One per process, shared by its threads. :meth:`top_up` reserves ahead (the commit worker calls
    it between batches, outside any unit of work); :meth:`take` reserves on its own connection when
    a block runs dry (fine on PostgreSQL; on SQLite a worker must top up first, since a second
    connection cannot write while the unit of work holds the write lock).
    """

    NAMES = ("rrn", "auth_code")

    def __init__(self, engine: Engine, block: int = 1000) -> None:
        self.engine = engine
        self.block = block
        self._lock = threading.Lock()
        self._next: dict[str, int] = {n: 0 for n in self.NAMES}
        self._end: dict[str, int] = {n: 0 for n in self.NAMES}  # exclusive

    def available(self, name: str) -> int:
        return self._end[name] - self._next[name]

    def top_up(self, need: int, sqlite_writer: Any = None) -> None:
        """Make sure at least ``need`` numbers of each kind are held (one short transaction if not).

        ``sqlite_writer``: the DB-API connection of the SQLite host's writer, between two units
        of work: the reservation is committed on it rather than on a connection of its own, so
        that it does not count as another writer's commit (``SqlHostStore.keep_rows``). It may
        commit without fsync (``synchronous=NORMAL``): any number handed out goes into a later
        commit of the same WAL, and that one's fsync, before its reply, covers the reservation.
        """
        with self._lock:
            short = [n for n in self.NAMES if self._end[n] - self._next[n] < need]
            if short:
                if sqlite_writer is None:
                    self._reserve(short, max(self.block, need * 2))
                else:
                    self._reserve_on(sqlite_writer, short, max(self.block, need * 2))

    def _reserve_on(self, driver: Any, names: list[str], count: int) -> None:
        got: dict[str, int] = {}
        cur = driver.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
            for name in names:
                row = cur.execute("UPDATE counters SET value = value + ? WHERE name = ? RETURNING value",
                                  (count, name)).fetchone()  # fmt: skip
                if row is None:  # a database older than the seeded counters
                    cur.execute("INSERT INTO counters (name, value) VALUES (?, ?)", (name, count))
                    row = (count,)
                got[name] = int(row[0])
            driver.commit()
        except BaseException:
            driver.rollback()
            raise
        finally:
            cur.close()
        for name, top in got.items():  # only once committed
            self._next[name], self._end[name] = top - count + 1, top + 1

    def take(self, name: str) -> int:
        with self._lock:
            if self._next[name] >= self._end[name]:
                self._reserve([name], self.block)
            value = self._next[name]
            self._next[name] = value + 1
            return value

    def _reserve(self, names: list[str], count: int) -> None:
        c = s.counters.c
        stmt = update(s.counters).where(c.name == bindparam("n")).values(value=c.value + count).returning(c.value)
        with self.engine.begin() as conn:
            for name in names:
                top = conn.execute(stmt, {"n": name}).scalar()
                if top is None:  # a database older than the seeded counters
                    conn.execute(insert(s.counters), {"name": name, "value": count})
                    top = count
                self._next[name], self._end[name] = top - count + 1, top + 1


# row content → (terminal record, merchant record) (see SqlHostStore.terminal)
_TERMINAL_RECORDS: dict[Any, tuple[TerminalRecord, MerchantRecord]] = {}
# database (its URL) → (AID table version, the AIDs read at that version): see ic_aids().
_AID_CACHE: dict[str, tuple[str, tuple[AidParams, ...]]] = {}


def _by_id(t: TxnRecord) -> int:
    return t.id or 0


# -- the store ------------------------------------------------------------------------------------

_T, _M = s.terminals, s.merchants

_TERMINAL_COLS = [
    _T.c.id, _T.c.terminal_id, _M.c.merchant_id, _T.c.tmk_enc, _T.c.device_serial, _T.c.pending_serial,
    _T.c.approved_serial, _T.c.status, _T.c.batch_no, _T.c.signed_on_day, _T.c.signed_off, _T.c.operator,
    _T.c.key_scheme, _T.c.pik_enc, _T.c.mak_enc, _T.c.tdk_enc, _T.c.mac_algorithm, _T.c.mac_failures,
    _T.c.resign_requested, _T.c.resign_reason, sa_cast(_T.c.params, Text), _T.c.params_pending,
    sa_cast(_T.c.last_status_upload, Text), _T.c.algorithm, _T.c.dialect, _T.c.capk_pending, _T.c.aid_pending,
]  # fmt: skip
# The two JSON columns are read as their text on both backends (a CAST): the row stays hashable,
# so that terminal() can key its records by the row, and PostgreSQL's driver does not parse JSON
# that the record cache then makes no use of (issue 12: a tenth of a PostgreSQL sale's CPU).
_MERCHANT_COLS_AT = len(_TERMINAL_COLS)  # the terminal lookup also reads its merchant's row (see terminal())
_CARD_FIELDS = [f.name for f in dc_fields(CardRecord)]
_CARD_COLS = [s.cards.c[name] for name in _CARD_FIELDS]
# Card columns written by the issuer whose Python value is exactly what reading them back gives.
_PLAIN_CARD_CHANGES = frozenset({"balance", "held", "pin_tries", "pin_tries_day", "icc_atc"})
_MERCHANT_COLS = [_M.c.id, _M.c.merchant_id, _M.c.name, _M.c.name_en, _M.c.mcc, _M.c.fee_rate_bp, _M.c.status,
                  _M.c.suspended_reason]  # fmt: skip

_TXN_FIELDS = [f.name for f in dc_fields(TxnRecord)]
_TXN_COLS = [s.transactions.c[name] for name in _TXN_FIELDS]
_TXN_INSERT = tuple(name for name in _TXN_FIELDS if name != "id")
_TXN_VALUES = attrgetter(*_TXN_INSERT)  # a record's values in _TXN_INSERT order, in one call
_SETTLEMENT_FIELDS = [f.name for f in dc_fields(SettlementRecord)]
_SETTLEMENT_COLS = [s.settlements.c[name] for name in _SETTLEMENT_FIELDS]

# Record fields holding clear keys → (column, keyring purpose).
_TERMINAL_KEYS = {"tmk": ("tmk_enc", b"tmk"), "pik": ("pik_enc", b"pik"), "mak": ("mak_enc", b"mak"),
                  "tdk": ("tdk_enc", b"tdk")}  # fmt: skip


# The statements every financial request runs, built once (see SqlHostStore._run).
_TX = s.transactions.c


def _terminal_stmt() -> ClauseElement:
    return (
        select(*_TERMINAL_COLS, *_MERCHANT_COLS)
        .join_from(_T, _M, _T.c.merchant_pk == _M.c.id)
        .where(_T.c.terminal_id == bindparam("t"))
        .with_for_update(of=_T)
    )


_TERMINAL_ARGS = ("t",)


def _find_by_stan_stmt() -> ClauseElement:
    # No ORDER BY: with one, SQLite prefers the (terminal_id, batch_no) index, which is already
    # in id order, and scans the whole batch; without it, the unique message key (terminal_id,
    # batch_no, stan, mti) finds the few rows directly. Sorted by the caller instead.
    return (
        select(*_TXN_COLS)
        .where(_TX.terminal_id == bindparam("t"), _TX.batch_no == bindparam("b"), _TX.stan == bindparam("s"))
        .with_for_update()
    )


_FIND_BY_STAN_ARGS = ("t", "b", "s")


def _terminals_ahead_stmt() -> ClauseElement:
    # In terminal_id order: workers that lock several terminals at once take them in one order.
    return (
        select(*_TERMINAL_COLS, *_MERCHANT_COLS)
        .join_from(_T, _M, _T.c.merchant_pk == _M.c.id)
        .where(_T.c.terminal_id == func.any(bindparam("ts")))
        .order_by(_T.c.terminal_id)
        .with_for_update(of=_T)
    )


def _cards_ahead_stmt() -> ClauseElement:
    return select(*_CARD_COLS).where(s.cards.c.pan_hash == func.any(bindparam("hs"))).order_by(s.cards.c.pan_hash).with_for_update()


# Which of the keys have a record (PostgreSQL only: unnest of three arrays, one row per key).
_STANS_AHEAD_SQL = (
    "SELECT t.terminal_id, t.batch_no, t.stan FROM transactions AS t"
    " JOIN unnest(%s::varchar[], %s::varchar[], %s::varchar[]) AS k(terminal_id, batch_no, stan)"
    " ON t.terminal_id = k.terminal_id AND t.batch_no = k.batch_no AND t.stan = k.stan"
)
_TXN_IDS_SQL = "SELECT nextval(pg_get_serial_sequence('transactions', 'id')) FROM generate_series(1, %s)"


def _card_stmt() -> ClauseElement:
    return select(*_CARD_COLS).where(s.cards.c.pan_hash == bindparam("h")).with_for_update()


_CARD_ARGS = ("h",)


class _Unavailable:
    """Stands for the master key or the id allocator in a store made without them: any use fails."""

    def __init__(self, what: str) -> None:
        self._what = what

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"this store was opened without the {self._what} (SqlHostStore.for_admin)")


class SqlHostStore:
    """HostStore over one SQLAlchemy connection inside a unit of work (see the module docstring)."""

    @classmethod
    def for_admin(cls, conn: Connection) -> SqlHostStore:
        """A store on ``conn`` for the merchant, sign-on register and audit ports only: what the
        console and ``posgate admin`` change under the host's rules (reinstatement, the D6
        sweep). Made without the master key or the id allocator, so reading keys or card numbers
        or allocating an RRN fails loudly instead of half-working."""
        return cls(conn, cast(Keyring, _Unavailable("master key")), cast(IdAllocator, _Unavailable("id allocator")))

    def __init__(self, conn: Connection, keyring: Keyring, ids: IdAllocator, *, driver: Any = None) -> None:
        """``driver``: the DB-API connection behind ``conn`` when the caller runs the transactions
        on it directly (the commit worker does: BEGIN/COMMIT without SQLAlchemy's bookkeeping)."""
        self.conn = conn
        self.keyring = keyring
        self.ids = ids
        self._f = _flavour(conn.dialect)
        self._raw: Any = driver
        f = self._f
        # Records from rows, with the few conversions the columns need (see _row_maker).
        self._txn: Callable[[Sequence[Any]], TxnRecord] = _row_maker(TxnRecord, [f.from_db(c) for c in _TXN_COLS])
        self._settlement: Callable[[Sequence[Any]], SettlementRecord] = _row_maker(
            SettlementRecord, [f.from_db(c) for c in _SETTLEMENT_COLS]
        )
        self._card: Callable[[Sequence[Any]], CardRecord] = _row_maker(CardRecord, [f.from_db(c) for c in _CARD_COLS])
        self._txn_insert: tuple[_Compiled, Callable[[Sequence[Any]], Any]] | None = None
        # Per unit of work, only once the commit worker calls begin_unit() (see there).
        self._unit = False
        self._risk_rules: Sequence[RiskRule] | None = None
        self._merchant_hint: MerchantRecord | None = None
        self._pan_memo: tuple[str, str] | None = None  # see pan_hash()
        # Rows kept from one unit of work to the next (SQLite only, see keep_rows()).
        self._keep = False
        self._data_version: int | None = None
        self._kept_terminals: dict[str, tuple[TerminalRecord, MerchantRecord | None]] = {}
        self._kept_cards: dict[str, CardRecord] = {}
        self._kept_stans: dict[tuple[str, str], set[str]] = {}  # (terminal, batch) → every STAN on file
        # Read ahead for one unit of work, PostgreSQL (see prefetch()): cleared by begin_unit().
        self._unit_terminals: dict[str, Any] = {}  # terminal_id → its row, locked in this unit
        self._unit_cards: dict[str, CardRecord] = {}  # pan_hash → its card, locked in this unit
        self._absent: set[tuple[str, str, str]] = set()  # (terminal, batch, STAN) known to have no record
        self._txn_ids: list[int] = []  # ids drawn from the sequence for this unit's inserts, next last
        self._txn_insert_id: tuple[_Compiled, Callable[[Sequence[Any]], Any]] | None = None
        self._pipeline: Any = None  # psycopg's Pipeline while the unit runs in pipeline mode
        self._deferred: dict[str, list[Any]] = {}  # pipeline mode: statement → rows of arguments (see _defer)
        self._deferred_cards: set[str] = set()  # pan_hashes with a held UPDATE (see card())
        # terminal_id → its record as last read, when it has a TDK: for track_key() (a hint).
        self._track_keys: dict[str, TerminalRecord] = {}
        self._aid_key: str | None = None  # this database in _AID_CACHE (see ic_aids())

    def begin_unit(self) -> None:
        """A new unit of work (transaction) starts on this store: forget what the last one read.

        From the first call on, the store keeps what cannot change inside one unit of work
        except through itself: the enabled risk rules (the host never writes them; on SQLite no
        other connection can commit while the unit holds the write lock), and the merchant row
        read together with a terminal's (valid until the next ``merchant()`` or
        ``update_merchant()``, i.e. for the request that read it). Without this call (units of
        work made by ``Database.unit_of_work``, tests) nothing is kept."""
        self._unit = True
        self._risk_rules = None
        self._merchant_hint = None
        self._pan_memo = None
        if self._unit_terminals or self._absent or self._txn_ids or self._unit_cards:
            self._unit_terminals.clear()
            self._unit_cards.clear()
            self._absent.clear()
            self._txn_ids.clear()
        if self._keep:
            # Called inside the transaction, after BEGIN IMMEDIATE: no other connection can
            # commit from here to our commit, so one look at data_version covers the whole unit.
            cur = self._raw.cursor()
            version = cur.execute("PRAGMA data_version").fetchone()[0]
            cur.close()
            if version != self._data_version:
                self.forget()
                self._data_version = version

    def keep_rows(self) -> None:
        """Keep terminal and card rows, and the STANs on file per batch, from one unit of work to
        the next (SQLite's single writer).

        Why: the terminal's, the card's and the STAN's SELECT are three of a sale's five
        statements, and on SQLite this connection is the host's only writer: a row it read or
        wrote stays as it is unless another connection (the console, ``posgate admin``) commits,
        which ``PRAGMA data_version`` tells at the start of every unit (:meth:`begin_unit`: then
        everything kept is dropped). Our own writes keep the kept rows exact (``update_card``
        applies the same change, ``update_terminal``/``update_merchant`` drop them); a rollback
        must call :meth:`forget`, since the kept rows may hold what it undid. Never on
        PostgreSQL: other processes commit there without telling, and its rows are read
        ``FOR UPDATE``.
        """
        if not self._f.sqlite or self._raw is None:
            raise RuntimeError("rows are kept between units of work only on SQLite, with driver=")
        self._keep = True

    def forget(self) -> None:
        """Drop every row kept between units of work (after a rollback, or another writer's commit)."""
        self._kept_terminals.clear()
        self._kept_cards.clear()
        self._kept_stans.clear()
        self._data_version = None
        self._unit_terminals.clear()
        self._unit_cards.clear()
        self._absent.clear()
        self._txn_ids.clear()
        self._deferred.clear()
        self._deferred_cards.clear()

    # -- PostgreSQL: a batch's reads in one round trip, its writes pipelined
    def prefetch(self, keys: Sequence[tuple[str, str, str] | None], inserts: int, pipeline: Any = None,
                 pans: Sequence[str] = ()) -> None:  # fmt: skip
        """Read ahead, in one round trip, what a batch's requests will each ask for: the rows of
        their terminals (locked ``FOR UPDATE``, in terminal_id order), whether a record exists
        for each (terminal, batch, STAN) in ``keys``, and ``inserts`` ids for new transactions.

        Why: on PostgreSQL each statement is a round trip to another process, and on a loaded
        machine a round trip costs far more than the statement (docs/benchmarks.md, issue 12
        steps); a sale used to run five, one after the other. Call after :meth:`begin_unit`.

        Exact, not a cache: a terminal's row is locked here, so until this unit commits no other
        worker or process can change it or insert a request of that terminal (every request
        locks its terminal's row first, in ``terminal()``); the STAN check runs after the locks
        are granted, in a statement of its own (a new snapshot under READ COMMITTED); this
        store's own writes keep both exact (``update_terminal`` drops the row,
        ``insert_transaction`` the key). Keys of terminals not found are not trusted.

        ``pans``: card numbers the requests carry in field 2: their cards (the built-in
        issuer's) are read and locked too, in pan_hash order, and ``card()`` answers from them
        (``update_card`` keeps them exact). A track-only card is read when asked for, as before.

        ``pipeline``: psycopg's ``Pipeline`` when the unit runs in pipeline mode (then the
        writes that need no answer, the card's UPDATE and the transaction's INSERT with an id
        drawn here, travel with the next read instead of a round trip each; ``_sync`` for the
        few statements whose row count matters).
        """
        if self._f.sqlite:
            raise RuntimeError("prefetch() is for PostgreSQL (SQLite keeps rows between units, see keep_rows())")
        self._pipeline = pipeline
        wanted = [k for k in keys if k is not None]
        tids = sorted({k[0] for k in wanted})
        cur_t = cur_s = cur_i = None
        if tids:
            cur_t = self._run("terminals_ahead", _terminals_ahead_stmt, ("ts",), (tids,))
            cur_s = self._cursor()
            cur_s.execute(_STANS_AHEAD_SQL, ([k[0] for k in wanted], [k[1] for k in wanted], [k[2] for k in wanted]))
        cur_c = None
        if pans:
            hashes = sorted({self.keyring.pan_hash(p) for p in pans})
            cur_c = self._run("cards_ahead", _cards_ahead_stmt, ("hs",), (hashes,))
        if inserts:
            cur_i = self._cursor()
            cur_i.execute(_TXN_IDS_SQL, (inserts,))
        if cur_t is not None and cur_s is not None:
            rows = cur_t.fetchall()
            found = {tuple(r) for r in cur_s.fetchall()}
            cur_t.close()
            cur_s.close()
            unit = self._unit_terminals
            for r in rows:
                unit[r[1]] = r
            self._absent = {k for k in wanted if k[0] in unit and k not in found}
        if cur_c is not None:
            make = self._card
            self._unit_cards = {r[1]: make(r) for r in cur_c.fetchall()}  # column 1: pan_hash
            cur_c.close()
        if cur_i is not None:
            ids = [r[0] for r in cur_i.fetchall()]
            cur_i.close()
            ids.reverse()  # taken from the end: in ascending order
            self._txn_ids = ids

    def end_pipeline(self) -> None:
        """The unit left pipeline mode (see :meth:`prefetch`)."""
        self._pipeline = None
        self._deferred.clear()
        self._deferred_cards.clear()

    @contextlib.contextmanager
    def pipelined(self, keys: Sequence[tuple[str, str, str] | None], inserts: int,
                  pans: Sequence[str] = ()) -> Iterator[SqlHostStore]:  # fmt: skip
        """A unit of work (PostgreSQL, on the driver connection) in psycopg's pipeline mode, read
        ahead (:meth:`begin_unit`, then :meth:`prefetch`). Every write is sent when the block
        ends without an error; the caller commits after it (or rolls back and :meth:`forget`s
        after an error, which may surface at any later statement or at the end)."""
        try:
            with self._raw.pipeline() as pipeline:
                self.begin_unit()
                self.prefetch(keys, inserts, pipeline, pans)
                yield self
                self._flush_deferred()
        finally:
            self.end_pipeline()

    def _defer(self, sql: str, args: Any) -> None:
        """Pipeline mode: a write nothing in this unit waits for (a card's UPDATE, a transaction's
        INSERT with its drawn id) is held and sent with the others of its statement, in one
        ``executemany``, before the next other statement (``_cursor``) or at the end of the unit:
        one statement's worth of driver work per batch instead of one per request."""
        rows = self._deferred.get(sql)
        if rows is None:
            self._deferred[sql] = [args]
        else:
            rows.append(args)

    def _flush_deferred(self) -> None:
        if not self._deferred:
            return
        pending, self._deferred = self._deferred, {}
        self._deferred_cards.clear()
        cur = self._raw.cursor()
        for sql, rows in pending.items():  # in the order first held; each statement's rows in order
            if len(rows) == 1:
                cur.execute(sql, rows[0])
            else:
                cur.executemany(sql, rows)
        cur.close()

    def _sync(self) -> None:
        """In pipeline mode: send what is queued and wait for its results (row counts)."""
        if self._pipeline is not None:
            self._pipeline.sync()

    @property
    def driver(self) -> Any:
        """The DB-API connection the statements run on (see ``driver`` in ``__init__``)."""
        return self._raw

    # -- plumbing
    def _cursor(self) -> Any:
        if self._deferred:  # writes held in pipeline mode go first, in order (see _defer)
            self._flush_deferred()
        raw = self._raw
        if raw is None:
            # The driver connection behind ``conn``: same transaction, no SQLAlchemy per-call cost.
            if not self.conn.in_transaction():
                self.conn.begin()
            raw = self._raw = self.conn.connection.driver_connection
        return raw.cursor()

    def _exec(self, key: Any, build: Callable[[], ClauseElement], params: dict[str, Any]) -> Any:
        c = self._f.compiled(key, build)
        cur = self._cursor()
        cur.execute(c.sql, c.args(params))
        return cur

    def _run(self, key: str, build: Callable[[], ClauseElement], names: tuple[str, ...], values: tuple[Any, ...],
             flush: bool = True) -> Any:  # fmt: skip
        """``_exec`` for the per-request statements: ``build`` is a module-level function (no
        closure made per call) and the values come as a tuple in ``names`` order. ``flush=False``:
        the statement cannot see any of the writes held in pipeline mode (see ``card()``)."""
        c = self._f.compiled(key, build)
        cur = self._cursor() if flush else self._raw.cursor()
        cur.execute(c.sql, c.args_for(names, values))
        return cur

    def _one(self, key: Any, build: Callable[[], ClauseElement], params: dict[str, Any]) -> Any:
        cur = self._exec(key, build, params)
        row = cur.fetchone()
        cur.close()
        return row

    def _all(self, key: Any, build: Callable[[], ClauseElement], params: dict[str, Any]) -> list[Any]:
        cur = self._exec(key, build, params)
        rows = cur.fetchall()
        cur.close()
        return rows

    def _insert(self, table: Table, values: dict[str, Any]) -> int:
        cols = tuple(values)
        return self._insert_row(table, cols, tuple(values.values()))

    def _insert_row(self, table: Table, cols: tuple[str, ...], values: Sequence[Any]) -> int:
        """Insert one row given as ``values`` in ``cols`` order; returns its id."""
        c, args = self._f.inserter(table, cols)
        cur = self._cursor()
        cur.execute(c.sql, args(values))
        new_id = cur.lastrowid if self._f.sqlite else cur.fetchone()[0]
        cur.close()
        return int(new_id)

    def _update(self, table: Table, key_col: str, key: Any, values: dict[str, Any], defer: bool = False) -> int:
        """The number of rows changed (-1 in pipeline mode: not yet known, see prefetch).
        ``defer``: held and sent with the unit's other writes of the same shape (see _defer)."""
        if not values:
            return 0
        cols = tuple(sorted(values))
        if key_col in values or "id" in values:
            raise ValueError(f"{table.name}: cannot update {key_col!r} or 'id'")
        c, args = self._f.updater(table, key_col, cols)
        if defer:
            self._defer(c.sql, args([*[values[k] for k in cols], key]))
            return -1
        cur = self._cursor()
        cur.execute(c.sql, args([*[values[k] for k in cols], key]))
        n = cur.rowcount
        cur.close()
        return int(n)

    # -- acquirer-wide
    def setting(self, key: str, default: str | None = None) -> str | None:
        row = self._one("setting", lambda: select(s.settings.c.value).where(s.settings.c.key == bindparam("k")), {"k": key})
        return default if row is None else row[0]

    # -- IC parameters and CA public keys (docs/dialect.md 3.12)
    def ic_aids(self) -> Sequence[AidParams]:
        """The AIDs, read from the table only when it changed since this process last read it.

        A contactless tap (CheckNoCvmLimit) and every IC parameter download ask for them. The
        check is the ``ic_aids_version`` settings row, which every change writes in its own
        transaction (posgate.store.ic_params: a new random token each time). It lives in the
        database, not in this process, because the writer is often another process: the console
        or ``posgate admin aid`` on the same PostgreSQL (or SQLite file), so an in-process
        invalidation would miss it. One primary-key lookup replaces reading and converting the
        whole table; a change is seen by the very next request. The version is read before the
        rows: a change committed between the two only makes the next request read them again.
        A database without the row (AIDs never changed through posgate.store.ic_params) is
        never cached."""
        version = self.setting(AIDS_VERSION) or ""
        key = self._aid_key
        if key is None:
            key = self._aid_key = str(self.conn.engine.url)
        hit = _AID_CACHE.get(key)
        if version and hit is not None and hit[0] == version:
            return hit[1]
        aids = tuple(aid_from_row(r) for r in self._all("ic_aids", aid_select, {}))
        if version:
            _AID_CACHE[key] = (version, aids)
        return aids

    def ic_capks(self) -> Sequence[Capk]:
        return [capk_from_row(r) for r in self._all("ic_capks", capk_select, {})]

    # -- terminals and merchants
    def terminal(self, terminal_id: str) -> TerminalRecord | None:
        self._merchant_hint = None
        self._pan_memo = None  # a new request: nothing of the last one's card stays here
        if self._keep:
            kept = self._kept_terminals.get(terminal_id)
            if kept is not None:
                if self._unit:
                    self._merchant_hint = kept[1]
                return kept[0]
        r = self._unit_terminals.get(terminal_id) if self._unit_terminals else None
        if r is None:
            cur = self._run("terminal", _terminal_stmt, _TERMINAL_ARGS, (terminal_id,))
            r = cur.fetchone()
            cur.close()
            if r is None:
                return None
        # Records are immutable: the same row always gives the same records, so they are kept by
        # the row's content (no staleness possible) and the keys are not decrypted again.
        hit = _TERMINAL_RECORDS.get(r)
        if hit is not None:
            if self._unit:
                # The merchant's row came with the terminal's (same statement): CheckMerchantActive
                # then needs no query of its own.
                self._merchant_hint = hit[1]
            if self._keep:
                self._kept_terminals[terminal_id] = hit
            if hit[0].tdk is not None:
                self._note_track_key(hit[0])
            return hit[0]
        merchant = MerchantRecord(*r[_MERCHANT_COLS_AT:])
        if self._unit:
            self._merchant_hint = merchant
        dec = self.keyring.decrypt
        rec = TerminalRecord(
            id=r[0], terminal_id=r[1], merchant_id=r[2], tmk=dec(r[3], b"tmk"), device_serial=r[4],
            pending_serial=r[5], approved_serial=r[6], status=r[7], batch_no=r[8], signed_on_day=r[9],
            signed_off=bool(r[10]), operator=r[11], key_scheme=r[12],
            pik=None if r[13] is None else dec(r[13], b"pik"),
            mak=None if r[14] is None else dec(r[14], b"mak"),
            tdk=None if r[15] is None else dec(r[15], b"tdk"),
            mac_algorithm=r[16], mac_failures=r[17], resign_requested=bool(r[18]), resign_reason=r[19],
            params=_json_out_sqlite(r[20]) or {}, params_pending=bool(r[21]),
            last_status_upload=_json_out_sqlite(r[22]), algorithm=r[23], dialect=r[24],
            capk_pending=bool(r[25]), aid_pending=bool(r[26]),
        )  # fmt: skip
        if len(_TERMINAL_RECORDS) >= 4096:
            _TERMINAL_RECORDS.clear()
        _TERMINAL_RECORDS[r] = (rec, merchant)
        if self._keep:
            self._kept_terminals[terminal_id] = (rec, merchant)
        if rec.tdk is not None:
            self._note_track_key(rec)
        return rec

    def _note_track_key(self, rec: TerminalRecord) -> None:
        keys = self._track_keys
        if len(keys) >= 100_000:  # bounded: a fleet's terminals, not every terminal ever seen
            keys.clear()
        keys[rec.terminal_id] = rec

    def track_key(self, terminal_id: str) -> tuple[bytes, str] | None:
        """The TDK (and its algorithm) of ``terminal_id``'s record as this store last read it,
        or None: for reading ahead the card of a swiped sale, whose PAN is inside a track the
        terminal encrypted (``request_keys``). A hint, never an answer: a key changed since then
        gives a PAN that is wrong or no PAN, and a card read ahead by mistake is only read (the
        request's own ``card()`` reads what it needs)."""
        rec = self._track_keys.get(terminal_id)
        return None if rec is None or rec.tdk is None else (rec.tdk, rec.algorithm)

    def update_terminal(self, terminal_id: str, **changes: Any) -> None:
        values: dict[str, Any] = {}
        for k, v in changes.items():
            if k in _TERMINAL_KEYS:
                col, purpose = _TERMINAL_KEYS[k]
                values[col] = None if v is None else self.keyring.encrypt(v, purpose)
                if k == "tmk" and v is not None:
                    values["tmk_kcv"] = kcv(v).hex().upper()
            elif k == "merchant_id":
                m = self.merchant(v)
                if m is None:
                    raise ValueError(f"unknown merchant {v}")
                values["merchant_pk"] = m.id
            else:
                values[k] = v
        self._kept_terminals.pop(terminal_id, None)
        self._unit_terminals.pop(terminal_id, None)
        self._update(_T, "terminal_id", terminal_id, values)

    def merchant(self, merchant_id: str) -> MerchantRecord | None:
        hint = self._merchant_hint
        if hint is not None:
            self._merchant_hint = None
            if hint.merchant_id == merchant_id:
                return hint
        r = self._one("merchant", lambda: select(*_MERCHANT_COLS).where(_M.c.merchant_id == bindparam("m")), {"m": merchant_id})
        return None if r is None else MerchantRecord(*r)

    def update_merchant(self, merchant_id: str, **changes: Any) -> None:
        self._merchant_hint = None
        self._kept_terminals.clear()  # they hold their merchant's row
        self._unit_terminals.clear()
        self._update(_M, "merchant_id", merchant_id, changes)

    def merchant_last_sign_on_day(self, merchant_id: str) -> str | None:
        so = s.sign_ons.c

        def build() -> ClauseElement:
            return select(func.max(so.day)).where(
                so.merchant_id == bindparam("m"), _constant_in(so.kind, ("sign_on", "reinstated"))
            )

        r = self._one("merchant_last_sign_on", build, {"m": merchant_id})
        return None if r is None else r[0]

    def record_sign_on(self, entry: SignOnEntry) -> None:
        self._insert(s.sign_ons, {f.name: getattr(entry, f.name) for f in dc_fields(SignOnEntry)})

    # -- transactions
    def _txns(self, key: str, build: Callable[[], ClauseElement], params: dict[str, Any]) -> list[TxnRecord]:
        return [self._txn(r) for r in self._all(key, build, params)]

    def transaction(self, txn_id: int) -> TxnRecord | None:
        t = s.transactions.c
        r = self._one("transaction", lambda: select(*_TXN_COLS).where(t.id == bindparam("i")).with_for_update(), {"i": txn_id})
        return None if r is None else self._txn(r)

    def find_message(self, terminal_id: str, batch_no: str, stan: str, mti: str) -> TxnRecord | None:
        t = s.transactions.c

        def build() -> ClauseElement:
            return (
                select(*_TXN_COLS)
                .where(t.terminal_id == bindparam("t"), t.batch_no == bindparam("b"), t.stan == bindparam("s"),
                       t.mti == bindparam("m"))  # fmt: skip
                .with_for_update()
            )

        r = self._one("find_message", build, {"t": terminal_id, "b": batch_no, "s": stan, "m": mti})
        return None if r is None else self._txn(r)

    def find_by_stan(self, terminal_id: str, batch_no: str, stan: str) -> Sequence[TxnRecord]:
        if self._keep and stan not in self._stans_on_file(terminal_id, batch_no):
            return []  # the usual case, known without a query (see keep_rows)
        if self._absent and (terminal_id, batch_no, stan) in self._absent:
            return []  # the same, known from the batch's read-ahead (see prefetch)
        cur = self._run("find_by_stan", _find_by_stan_stmt, _FIND_BY_STAN_ARGS, (terminal_id, batch_no, stan))
        found = cur.fetchall()
        cur.close()
        if not found:  # the usual case: a STAN not seen before
            return []
        make = self._txn
        rows = [make(r) for r in found]
        rows.sort(key=_by_id)
        return rows

    def find_by_rrn(self, rrn: str) -> Sequence[TxnRecord]:
        t = s.transactions.c
        return self._txns(
            "find_by_rrn", lambda: select(*_TXN_COLS).where(t.rrn == bindparam("r")).order_by(t.id).with_for_update(), {"r": rrn}
        )

    def children(self, original_id: int) -> Sequence[TxnRecord]:
        t = s.transactions.c
        return self._txns(
            "children",
            lambda: select(*_TXN_COLS).where(t.original_id == bindparam("o")).order_by(t.id).with_for_update(),
            {"o": original_id},
        )

    def _stans_on_file(self, terminal_id: str, batch_no: str) -> set[str]:
        """Every STAN with a record in this terminal's batch: read once per batch, then kept
        exact by insert_transaction (records are never deleted, their keys never change)."""
        key = (terminal_id, batch_no)
        stans = self._kept_stans.get(key)
        if stans is None:
            if len(self._kept_stans) >= 50_000:
                self._kept_stans.clear()
            t = s.transactions.c
            rows = self._all("stans_on_file", lambda: select(t.stan).where(t.terminal_id == bindparam("t"),
                             t.batch_no == bindparam("b")), {"t": terminal_id, "b": batch_no})  # fmt: skip
            stans = self._kept_stans[key] = {r[0] for r in rows}
        return stans

    def insert_transaction(self, txn: TxnRecord) -> int:
        if self._keep:
            stans = self._kept_stans.get((txn.terminal_id, txn.batch_no))
            if stans is not None:
                stans.add(txn.stan)
        if self._absent:
            self._absent.discard((txn.terminal_id, txn.batch_no, txn.stan))
        if self._txn_ids:
            # PostgreSQL with ids drawn by prefetch(): no RETURNING, so in pipeline mode the
            # INSERT travels with the next read instead of waiting for its own answer.
            ins = self._txn_insert_id
            if ins is None:
                ins = self._txn_insert_id = self._f.inserter(s.transactions, ("id", *_TXN_INSERT), returning=False)
            c, args = ins
            new_id = self._txn_ids.pop()
            if self._pipeline is not None:
                self._defer(c.sql, args((new_id, *_TXN_VALUES(txn))))
                return new_id
            cur = self._cursor()
            cur.execute(c.sql, args((new_id, *_TXN_VALUES(txn))))
            cur.close()
            return new_id
        ins = self._txn_insert
        if ins is None:  # once per store: the column tuple is long to hash on every insert
            ins = self._txn_insert = self._f.inserter(s.transactions, _TXN_INSERT)
        c, args = ins
        cur = self._cursor()
        cur.execute(c.sql, args(_TXN_VALUES(txn)))
        new_id = cur.lastrowid if self._f.sqlite else cur.fetchone()[0]
        cur.close()
        return int(new_id)

    def update_transaction(self, txn_id: int, **changes: Any) -> None:
        if not changes.keys().isdisjoint(("terminal_id", "batch_no", "stan")):
            self._kept_stans.clear()  # a record's key moved (the host never does this)
            self._absent.clear()
        self._update(s.transactions, "id", txn_id, changes)

    def batch_transactions(self, terminal_id: str, batch_no: str) -> Sequence[TxnRecord]:
        t = s.transactions.c

        def build() -> ClauseElement:
            return (
                select(*_TXN_COLS)
                .where(t.terminal_id == bindparam("t"), t.batch_no == bindparam("b"))
                .order_by(t.id)
                .with_for_update()
            )

        return self._txns("batch_transactions", build, {"t": terminal_id, "b": batch_no})

    def open_batch(self, terminal_id: str, batch_no: str, at: datetime) -> None:
        b = s.batches.c
        row = self._one(
            "batch_exists",
            lambda: select(b.id).where(b.terminal_id == bindparam("t"), b.batch_no == bindparam("b")),
            {"t": terminal_id, "b": batch_no},
        )
        if row is None:
            self._insert(s.batches, {"terminal_id": terminal_id, "batch_no": batch_no, "opened_at": at, "status": "open"})

    def close_batch(self, terminal_id: str, batch_no: str, at: datetime) -> None:
        b = s.batches.c
        f = self._f

        def build() -> ClauseElement:
            return (
                update(s.batches)
                .where(b.terminal_id == bindparam("t"), b.batch_no == bindparam("b"))
                .values(closed_at=bindparam("at"), status="closed")
            )

        cur = self._exec("close_batch", build, {"t": terminal_id, "b": batch_no, "at": f.dt_in(at)})
        self._sync()  # the row count is known only once the statement has run
        missing = cur.rowcount == 0
        cur.close()
        if missing:
            self._insert(
                s.batches, {"terminal_id": terminal_id, "batch_no": batch_no, "opened_at": at, "closed_at": at, "status": "closed"}
            )

    # -- settlement, batch upload, signatures
    def insert_settlement(self, record: SettlementRecord) -> int:
        return self._insert(s.settlements, {n: getattr(record, n) for n in _SETTLEMENT_FIELDS if n != "id"})

    def update_settlement(self, settlement_id: int, **changes: Any) -> None:
        self._update(s.settlements, "id", settlement_id, changes)

    def latest_settlement(self, terminal_id: str, batch_no: str) -> SettlementRecord | None:
        c = s.settlements.c

        def build() -> ClauseElement:
            return (
                select(*_SETTLEMENT_COLS)
                .where(c.terminal_id == bindparam("t"), c.batch_no == bindparam("b"))
                .order_by(c.id.desc())
                .limit(1)
                .with_for_update()
            )

        r = self._one("latest_settlement", build, {"t": terminal_id, "b": batch_no})
        return None if r is None else self._settlement(r)

    def insert_difference(self, record: DifferenceRecord) -> int:
        return self._insert(s.differences, {f.name: getattr(record, f.name) for f in dc_fields(DifferenceRecord)})

    def is_annulled(self, txn_id: int) -> bool:
        t = s.transactions.c

        def build() -> ClauseElement:
            return (
                select(t.id)
                .where(t.original_id == bindparam("o"), t.operation == "annulment", t.response_code == "00")
                .limit(1)
            )

        return self._one("is_annulled", build, {"o": txn_id}) is not None

    def settlement_differences(self, settlement_id: int) -> Sequence[DifferenceRecord]:
        d = s.differences.c
        cols = [getattr(d, f.name) for f in dc_fields(DifferenceRecord)]

        def build() -> ClauseElement:
            return select(*cols).where(d.settlement_id == bindparam("s")).order_by(d.id)

        return [DifferenceRecord(*r) for r in self._all("settlement_differences", build, {"s": settlement_id})]

    def insert_signature(self, record: SignatureRecord) -> int:
        return self._insert(s.signatures, {f.name: getattr(record, f.name) for f in dc_fields(SignatureRecord)})

    # -- identifiers unique across host processes
    def next_rrn(self, now: datetime) -> str:
        return f"{self.ids.take('rrn') % 10**12:012d}"

    def next_auth_code(self) -> str:
        return f"{(self.ids.take('auth_code') - 1) % 999_999 + 1:06d}"

    # -- risk
    def risk_rules(self) -> Sequence[RiskRule]:
        if self._risk_rules is not None:
            return self._risk_rules
        r = s.risk_rules.c

        def build() -> ClauseElement:
            return select(r.id, r.kind, r.params, r.response_code).where(r.enabled == bindparam("e")).order_by(r.id)

        jo = self._f.json_out
        rules = [RiskRule(row[0], row[1], jo(row[2]), row[3]) for row in self._all("risk_rules", build, {"e": True})]
        if self._unit:
            self._risk_rules = tuple(rules)
        return rules

    def card_activity(self, pan_hash: str, since: datetime) -> tuple[int, int]:
        t = s.transactions.c

        def build() -> ClauseElement:
            return select(func.count(), func.coalesce(func.sum(t.amount), 0)).where(
                t.pan_hash == bindparam("p"),
                t.created_at >= bindparam("since"),
                t.response_code == "00",
                _constant_in(t.operation, DEBIT_OPERATIONS),
                _constant_in(t.status, APPROVED_DEBIT_STATUSES),
            )

        r = self._one("card_activity", build, {"p": pan_hash, "since": self._f.dt_in(since)})
        return int(r[0]), int(r[1])

    def merchant_activity(self, merchant_id: str, day: str) -> int:
        t = s.transactions.c

        def build() -> ClauseElement:
            return select(func.coalesce(func.sum(t.amount), 0)).where(
                t.merchant_id == bindparam("m"),
                t.day == bindparam("d"),
                t.response_code == "00",
                _constant_in(t.operation, DEBIT_OPERATIONS),
                _constant_in(t.status, APPROVED_DEBIT_STATUSES),
            )

        r = self._one("merchant_activity", build, {"m": merchant_id, "d": day})
        return int(r[0])

    def record_risk_hit(self, rule_id: int, at: datetime, terminal_id: str, merchant_id: str,
                        pan_masked: str | None, amount: int | None, detail: str) -> None:  # fmt: skip
        self._insert(s.risk_hits, {"rule_id": rule_id, "at": at, "terminal_id": terminal_id, "merchant_id": merchant_id,
                                   "pan_masked": pan_masked, "amount": amount, "detail": detail})  # fmt: skip

    # -- audit (append-only)
    def audit(self, at: datetime, actor: str, action: str, object_type: str | None = None, object_id: str | None = None,
              merchant_id: str | None = None, before: dict[str, Any] | None = None,
              after: dict[str, Any] | None = None, detail: str | None = None) -> None:  # fmt: skip
        self._insert(s.audit_log, {"at": at, "actor": actor, "action": action, "object_type": object_type,
                                   "object_id": object_id, "merchant_id": merchant_id, "before": before,
                                   "after": after, "detail": detail})  # fmt: skip

    # -- the built-in issuer's cards (IssuerStore)
    def card(self, pan_hash: str) -> CardRecord | None:
        if self._unit_cards:
            ahead = self._unit_cards.get(pan_hash)
            if ahead is not None:
                return ahead
        if self._keep:
            kept = self._kept_cards.get(pan_hash)
            if kept is not None:
                return kept
        # Only a held UPDATE of this very card could change what the SELECT sees: the held
        # transaction INSERTs and other cards' UPDATEs wait for the end of the batch (see _defer).
        flush = not self._deferred or pan_hash in self._deferred_cards
        cur = self._run("card", _card_stmt, _CARD_ARGS, (pan_hash,), flush)
        r = cur.fetchone()
        cur.close()
        if r is None:
            return None
        card = self._card(r)
        if self._keep:
            if len(self._kept_cards) >= 100_000:  # bounded: a fleet of cardholders, not every card ever seen
                self._kept_cards.clear()
            self._kept_cards[pan_hash] = card
        return card

    def update_card(self, pan_hash: str, **changes: Any) -> None:
        if self._pipeline is not None:
            self._deferred_cards.add(pan_hash)
        self._update(s.cards, "pan_hash", pan_hash, changes, defer=self._pipeline is not None)
        if self._unit_cards:
            ahead = self._unit_cards.pop(pan_hash, None)
            # The row read ahead gets the very values the UPDATE wrote, when they need no conversion.
            if ahead is not None and changes.keys() <= _PLAIN_CARD_CHANGES:
                self._unit_cards[pan_hash] = dc_replace(ahead, **changes)
        if self._keep:
            kept = self._kept_cards.pop(pan_hash, None)
            # The kept row gets the very values the UPDATE wrote, when they need no conversion.
            if kept is not None and changes.keys() <= _PLAIN_CARD_CHANGES:
                self._kept_cards[pan_hash] = dc_replace(kept, **changes)

    def pin_verifier(self, pan: str, pin: str) -> str:
        return self.keyring.pin_verifier(pan, pin)

    def icc_master_keys(self, blob: bytes) -> bytes:
        return self.keyring.decrypt_key(blob, b"icc")

    # -- card data protection
    def pan_hash(self, pan: str) -> str:
        # A request hashes its PAN twice: ReadCard for the record and risk, then the built-in
        # issuer (its port gets the PAN, as an upstream issuer would) for the card lookup. The
        # HMAC is kept for that second call only: consumed by it, and dropped at the next
        # request's terminal(), at encrypt_pan() (Record, the request's last use of the PAN) and
        # at begin_unit(), so no clear PAN stays here beyond its request.
        memo = self._pan_memo
        if memo is not None:
            self._pan_memo = None
            if memo[0] == pan:
                return memo[1]
        h = self.keyring.pan_hash(pan)
        self._pan_memo = (pan, h)
        return h

    def encrypt_pan(self, pan: str) -> bytes:
        self._pan_memo = None
        return self.keyring.encrypt_pan(pan)

    def decrypt_pan(self, blob: bytes) -> str:
        return self.keyring.decrypt_pan(blob)

    def seal_message(self, raw: bytes) -> bytes:
        return self.keyring.seal_message(raw)

    def open_message(self, blob: bytes) -> bytes:
        return self.keyring.open_message(blob)
