"""The three-ledger audit: terminals' journals × host records × issuer balances.

Theory of operation
-------------------
After a chaos run every terminal has settled, so three independent records of the same money
exist, and they must agree:

1. **the terminals' journals** (:class:`~posgate.fleet.fleet.LedgerEntry`, read from each
   terminal's journal on disk, settled batches included): what each cashier was told;
2. **the host's records** (table ``transactions``): what the acquirer will pay and collect;
3. **the issuer's balances** (table ``cards``, snapshotted before the run): what cardholders
   were actually charged.

Vocabulary (precise, because the verdict rests on it):

* A terminal entry **stands** when the journal holds it as done: status ``approved`` or
  ``voided`` (a voided sale still happened; its void is a separate standing entry), or an
  offline advice ``offline_sent`` / ``offline_pending`` (after the final settlement every
  advice has been re-sent in the batch upload, D11). ``offline_declined`` does not stand. A
  terminal never keeps a transaction whose approval it did not accept: those are reversed.
* A host record **stands** when its response code is an approval, its status is not
  ``reversed``, ``rejected`` or ``declined``, and it moves money: its operation counts as a
  debit or credit in settlement totals (9.1), or is a pre-authorisation / pre-auth void (a
  hold). Reversal records themselves, balance inquiries, sign-ons and uploads do not.
* Both are keyed by the **transaction key** TID + batch + STAN (the voucher number the
  cardholder holds; D8 makes it unique per terminal and batch).

Verdicts:

* **lost** — a transaction key that stands on one side and not on the other: approved to the
  cashier but missing (or reversed) on the host (the merchant is never paid), or approved on
  the host and not reversed but missing from the terminal's journal (the cardholder is charged
  without a receipt). A key standing on both sides with a different operation or amount is
  lost as well (kind ``mismatch``).
* **charged twice** — a transaction key for which the host holds more than one standing record
  that moves money (e.g. the 0220 and a batch-upload 0320 both posted), or a key whose terminal
  entry is matched by more than one standing host record.
* **unbalanced settlement** — for a terminal and batch settled during the run, the host's last
  settlement record is neither ``balanced`` nor ``reconciled`` after its batch upload (or the
  upload never ended); a terminal that could not settle at all is listed too.
* **issuer balance discrepancy** — a card whose balance (or held amount) moved differently
  from what the standing host records say: starting balance − standing debits + standing
  credits must equal the current balance; starting held + standing pre-authorisations − their
  voids and completions must equal the current held amount. Catches a retransmission executed
  twice, a reversal applied twice or not at all, a declined request that still moved money.

Nothing here writes to any database. Only records created after the run's start (:func:`high_water_marks`)
and terminals of the fleet are considered, so a shared database does not disturb the audit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from posgate.dialect.operations import OPERATIONS
from posgate.domain.response_codes import APPROVED

NOT_STANDING_HOST = frozenset({"reversed", "rejected", "declined"})
STANDING_TERMINAL = frozenset({"approved", "voided", "offline_sent", "offline_pending", "refunded",
                               "partially_refunded", "completed", "adjusted"})  # fmt: skip
HOLD_OPS = frozenset({"preauth", "preauth_void"})


def money_side(operation: str) -> str:
    """``debit`` | ``credit`` | ``hold`` | ``release`` | ``""`` for an operation name."""
    if operation == "preauth":
        return "hold"
    if operation == "preauth_void":
        return "release"
    op = OPERATIONS.get(operation)
    return op.settlement if op is not None else ""


@dataclass(frozen=True)
class HostRecord:
    id: int
    terminal_id: str
    batch_no: str
    stan: str
    mti: str
    operation: str
    amount: int
    response_code: str
    status: str
    pan_hash: str | None
    original_id: int | None
    # Routing (issue 13): "issuer" or the upstream link, and the message sent upstream.
    route: str = "issuer"
    upstream_rrn: str | None = None
    upstream_stan: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.terminal_id, self.batch_no, self.stan)

    @property
    def standing(self) -> bool:
        return (self.response_code in APPROVED and self.status not in NOT_STANDING_HOST
                and bool(money_side(self.operation)))  # fmt: skip


@dataclass(frozen=True)
class TerminalRecord:
    terminal_id: str
    batch: str
    stan: str
    operation: str
    amount: int
    status: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.terminal_id, self.batch, self.stan)

    @property
    def standing(self) -> bool:
        return self.status in STANDING_TERMINAL and bool(money_side(self.operation))


@dataclass(frozen=True)
class SettlementRow:
    id: int
    terminal_id: str
    batch_no: str
    status: str
    upload_end: str | None
    domestic_result: str
    foreign_result: str


@dataclass(frozen=True)
class CardBalance:
    pan_hash: str
    pan_masked: str
    balance: int
    held: int


@dataclass
class AuditResult:
    terminal_entries: int = 0
    host_records: int = 0
    lost: list[dict[str, Any]] = field(default_factory=list)
    double_charged: list[dict[str, Any]] = field(default_factory=list)
    unbalanced_settlements: list[dict[str, Any]] = field(default_factory=list)
    balance_discrepancies: list[dict[str, Any]] = field(default_factory=list)
    settlements: int = 0
    # Acquirer × network (issue 13): a standing record routed upstream without its standing
    # network record, or the other way round (see network_audit).
    network_differences: list[dict[str, Any]] = field(default_factory=list)
    network_records: int = 0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.double_charged or self.unbalanced_settlements or self.balance_discrepancies
                    or self.network_differences)  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return {
            "terminal_entries": self.terminal_entries,
            "host_records": self.host_records,
            "settlements_audited": self.settlements,
            "lost": len(self.lost),
            "double_charged": len(self.double_charged),
            "unbalanced_settlements": len(self.unbalanced_settlements),
            "balance_discrepancies": len(self.balance_discrepancies),
            "network_records": self.network_records,
            "network_differences": len(self.network_differences),
            "offending": {
                "network_differences": self.network_differences[:200],
                "lost": self.lost[:200],
                "double_charged": self.double_charged[:200],
                "unbalanced_settlements": self.unbalanced_settlements[:200],
                "balance_discrepancies": self.balance_discrepancies[:200],
            },
        }


def audit(
    terminal_entries: Iterable[TerminalRecord],
    host_records: Iterable[HostRecord],
    settlements: Iterable[SettlementRow],
    cards_before: Mapping[str, CardBalance],
    cards_after: Mapping[str, CardBalance],
    *,
    unsettled_terminals: Sequence[str] = (),
) -> AuditResult:
    """Compare the three ledgers (pure: all inputs already read)."""
    res = AuditResult()
    term: dict[tuple[str, str, str], list[TerminalRecord]] = defaultdict(list)
    for t in terminal_entries:
        res.terminal_entries += 1
        if t.standing:
            term[t.key].append(t)
    host: dict[tuple[str, str, str], list[HostRecord]] = defaultdict(list)
    standing_host: list[HostRecord] = []
    for h in host_records:
        res.host_records += 1
        if h.standing:
            host[h.key].append(h)
            standing_host.append(h)

    for key in sorted(set(term) | set(host)):
        ts, hs = term.get(key, []), host.get(key, [])
        where = {"terminal_id": key[0], "batch": key[1], "stan": key[2]}
        if len(hs) > 1:
            res.double_charged.append({**where, "host": [_h(h) for h in hs], "terminal": [asdict(t) for t in ts]})
            continue
        if ts and not hs:
            res.lost.append({**where, "kind": "approved_on_terminal_missing_on_host", "terminal": [asdict(t) for t in ts]})
        elif hs and not ts:
            res.lost.append({**where, "kind": "approved_on_host_missing_on_terminal", "host": [_h(h) for h in hs]})
        elif len(ts) > 1:
            res.double_charged.append({**where, "host": [_h(h) for h in hs], "terminal": [asdict(t) for t in ts]})
        else:
            t, h = ts[0], hs[0]
            if t.operation != h.operation or t.amount != h.amount:
                res.lost.append({**where, "kind": "mismatch", "terminal": [asdict(t)], "host": [_h(h)]})

    # Settlements: the latest record per terminal and batch.
    latest: dict[tuple[str, str], SettlementRow] = {}
    for s in settlements:
        k = (s.terminal_id, s.batch_no)
        if k not in latest or s.id > latest[k].id:
            latest[k] = s
    res.settlements = len(latest)
    for s in latest.values():
        if s.status not in ("balanced", "reconciled") or (s.status != "balanced" and not s.upload_end):
            res.unbalanced_settlements.append(asdict(s))
    for tid in unsettled_terminals:
        res.unbalanced_settlements.append({"terminal_id": tid, "status": "not settled"})

    # Issuer: what the standing host records say each card's balance and hold did.
    expected_balance: dict[str, int] = defaultdict(int)
    expected_held: dict[str, int] = defaultdict(int)
    by_id = {h.id: h for h in standing_host}
    for h in standing_host:
        if h.pan_hash is None:
            continue
        side = money_side(h.operation)
        if side == "debit":
            expected_balance[h.pan_hash] -= h.amount
            if h.operation in ("completion", "completion_advice") and h.original_id in by_id:
                expected_held[h.pan_hash] -= by_id[h.original_id].amount
        elif side == "credit":
            expected_balance[h.pan_hash] += h.amount
        elif side == "hold":
            expected_held[h.pan_hash] += h.amount
        elif side == "release":
            expected_held[h.pan_hash] -= h.amount
    for pan_hash in sorted(set(cards_before) | set(cards_after) | set(expected_balance) | set(expected_held)):
        before, after = cards_before.get(pan_hash), cards_after.get(pan_hash)
        if before is None or after is None:
            if expected_balance.get(pan_hash) or expected_held.get(pan_hash):
                res.balance_discrepancies.append({"pan_hash": pan_hash[:16], "problem": "card missing from a snapshot"})
            continue
        moved, held = after.balance - before.balance, after.held - before.held
        want_b, want_h = expected_balance.get(pan_hash, 0), expected_held.get(pan_hash, 0)
        if moved != want_b or held != want_h:
            res.balance_discrepancies.append({
                "card": after.pan_masked, "balance_before": before.balance, "balance_after": after.balance,
                "expected_balance_change": want_b, "actual_balance_change": moved,
                "expected_held_change": want_h, "actual_held_change": held,
            })  # fmt: skip
    return res


def _h(h: HostRecord) -> dict[str, Any]:
    d = asdict(h)
    d.pop("pan_hash", None)
    return d


# -- reading the ledgers --------------------------------------------------------------------------------


def high_water_marks(db_url: str) -> tuple[int, int]:
    """The highest transaction and settlement ids now (records after them belong to the run)."""
    from sqlalchemy import func, select

    from posgate.store.engine import make_engine
    from posgate.store.schema import settlements, transactions

    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            a = conn.execute(select(func.max(transactions.c.id))).scalar() or 0
            b = conn.execute(select(func.max(settlements.c.id))).scalar() or 0
            return int(a), int(b)
    finally:
        engine.dispose()


def card_balances(db_url: str) -> dict[str, CardBalance]:
    from sqlalchemy import select

    from posgate.store.engine import make_engine
    from posgate.store.schema import cards

    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(cards.c.pan_hash, cards.c.pan_masked, cards.c.balance, cards.c.held))
            return {r.pan_hash: CardBalance(r.pan_hash, r.pan_masked, int(r.balance), int(r.held)) for r in rows}
    finally:
        engine.dispose()


def host_ledger(db_url: str, terminal_ids: Iterable[str], since: tuple[int, int]) -> tuple[list[HostRecord], list[SettlementRow]]:
    from sqlalchemy import select

    from posgate.store.engine import make_engine
    from posgate.store.schema import settlements, transactions

    tids = sorted(set(terminal_ids))
    t, s = transactions.c, settlements.c
    engine = make_engine(db_url)
    records: list[HostRecord] = []
    rows_s: list[SettlementRow] = []
    try:
        with engine.connect() as conn:
            for i in range(0, len(tids), 500):
                chunk = tids[i : i + 500]
                q = select(t.id, t.terminal_id, t.batch_no, t.stan, t.mti, t.operation, t.amount, t.response_code, t.status,
                           t.pan_hash, t.original_id, t.route, t.upstream_rrn, t.upstream_stan
                           ).where(t.id > since[0], t.terminal_id.in_(chunk))  # fmt: skip
                records += [HostRecord(int(r.id), r.terminal_id, r.batch_no, r.stan, r.mti, r.operation, int(r.amount),
                                       r.response_code, r.status, r.pan_hash, r.original_id, r.route, r.upstream_rrn,
                                       r.upstream_stan) for r in conn.execute(q)]  # fmt: skip
                q2 = select(s.id, s.terminal_id, s.batch_no, s.status, s.upload_end, s.domestic_result,
                            s.foreign_result).where(s.id > since[1], s.terminal_id.in_(chunk))  # fmt: skip
                rows_s += [SettlementRow(int(r.id), r.terminal_id, r.batch_no, r.status, r.upload_end, r.domestic_result,
                                         r.foreign_result) for r in conn.execute(q2)]  # fmt: skip
    finally:
        engine.dispose()
    return records, rows_s


# -- the fourth ledger: the card network (issue 13) ------------------------------------------------


@dataclass(frozen=True)
class NetworkRecord:
    """A row of the network's ``network_transactions`` (posgate.network.records)."""

    id: int
    rrn: str
    stan: str
    terminal_id: str
    mti: str
    processing_code: str
    amount: int
    response_code: str
    kind: str
    reversed: bool

    @property
    def standing(self) -> bool:
        """Approved, not reversed, and it moved money (a balance inquiry does not)."""
        return (self.kind in ("authorisation", "advice") and self.response_code == "00" and not self.reversed
                and self.processing_code != "310000")  # fmt: skip


def network_audit(res: AuditResult, host_records: Iterable[HostRecord], network: Iterable[NetworkRecord]) -> AuditResult:
    """Acquirer × network: every standing host record routed upstream has exactly one standing
    network record with its upstream (RRN, STAN) and amount, and every standing network record
    of these terminals has its standing host record. Adds to ``res.network_differences``."""
    net: dict[tuple[str, str], list[NetworkRecord]] = defaultdict(list)
    for n in network:
        res.network_records += 1
        if n.standing:
            net[(n.rrn, n.stan)].append(n)
    seen: set[tuple[str, str]] = set()
    for h in host_records:
        if not h.standing or h.route == "issuer":
            continue
        key = (h.upstream_rrn or "", h.upstream_stan or "")
        seen.add(key)
        ns = net.get(key, [])
        if len(ns) != 1:
            res.network_differences.append({"kind": "missing_on_network" if not ns else "twice_on_network",
                                            "host": _h(h), "network": [asdict(n) for n in ns]})  # fmt: skip
        elif h.operation not in ("preauth", "preauth_void") and ns[0].amount != h.amount:
            res.network_differences.append({"kind": "amount_mismatch", "host": _h(h), "network": [asdict(ns[0])]})
    for key, ns in sorted(net.items()):
        if key not in seen:
            res.network_differences.append({"kind": "missing_on_acquirer", "network": [asdict(n) for n in ns]})
    return res


def network_ledger(db_url: str, terminal_ids: Iterable[str], since: int = 0) -> list[NetworkRecord]:
    from sqlalchemy import select

    from posgate.network.records import network_transactions
    from posgate.store.engine import make_engine

    c = network_transactions.c
    tids = sorted(set(terminal_ids))
    engine = make_engine(db_url)
    out: list[NetworkRecord] = []
    try:
        with engine.connect() as conn:
            for i in range(0, len(tids), 500):
                q = select(c.id, c.rrn, c.stan, c.terminal_id, c.mti, c.processing_code, c.amount_cents, c.response_code,
                           c.kind, c.reversed).where(c.id > since, c.terminal_id.in_(tids[i : i + 500]))  # fmt: skip
                out += [NetworkRecord(int(r.id), r.rrn, r.stan, r.terminal_id, r.mti, r.processing_code, int(r.amount_cents),
                                      r.response_code, r.kind, bool(r.reversed)) for r in conn.execute(q)]  # fmt: skip
    finally:
        engine.dispose()
    return out
