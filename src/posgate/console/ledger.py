"""The ledger as the console sees it: scoping, classification, and new rows written by the console.

Rows the console writes (make-up entries, refunds executed after approval) are ordinary
``transactions`` rows with ``source`` = ``makeup`` or ``console`` and ``original_id`` pointing at
what they correct. They use batch number ``000000`` (no terminal batch is ever 000000, so the host's
batch totals and the terminal's never count them) and a console-wide reference counter as STAN.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, false, or_, select, true, update
from sqlalchemy.sql import ColumnElement

from posgate.console.auth import Principal
from posgate.console.fmt import today
from posgate.dialect.operations import OPERATIONS
from posgate.domain.response_codes import APPROVED
from posgate.store.payouts import DEAD, counted_clause, settlement_side
from posgate.store.schema import counters, transactions

T = transactions.c

CONSOLE_BATCH = "000000"
CONSOLE_MTI = "0220"
# Operations that print a slip the cardholder signs (spec 3.13); balance inquiries and reversals do not.
SIGNABLE = frozenset({
    "sale", "void", "refund", "preauth", "preauth_void", "completion", "completion_void", "completion_advice",
    "offline_settlement", "settlement_adjust", "tip_adjust",
})  # fmt: skip
# Sales that may be refunded from the console.
REFUNDABLE = frozenset({"sale", "completion", "completion_advice", "offline_settlement"})
SALES = frozenset({"sale", "completion", "completion_advice", "offline_settlement"})
OPERATION_NAMES: dict[str, tuple[str, str]] = {name: (o.zh, o.en) for name, o in OPERATIONS.items()}
OPERATION_NAMES.update({
    "adjustment": ("补登调整", "Make-up adjustment"),
    "annulment": ("补登撤销", "Make-up annulment"),
})  # fmt: skip


def scope(col: Any, p: Principal) -> ColumnElement[bool]:
    """Rows of the principal's merchant (everything for acquirer staff)."""
    if p.is_acquirer:
        return true()
    if not p.merchant_id:
        return false()
    return col == p.merchant_id


def approved_clause() -> ColumnElement[bool]:
    return counted_clause()


NO_CVM_ENTRY = "072"  # contactless, no PIN: approved only at or under the no-CVM limit (C2)


def unsigned_clause() -> ColumnElement[bool]:
    # A QR payment (22 = 03x) is confirmed on the customer's phone: it never needs a signature (Q4);
    # nor does an approved contactless sale without PIN (22 = 072): 免密免签 (docs/decisions.md C2).
    return and_(approved_clause(), T.signed.is_(False), T.operation.in_(sorted(SIGNABLE)), T.source == "terminal",
                T.mti != "0400", or_(T.entry_mode.is_(None), and_(T.entry_mode.not_like("03%"),
                                                                  T.entry_mode != NO_CVM_ENTRY)))  # fmt: skip


side = settlement_side  # ``debit``, ``credit`` or ``""``: how a row counts in settlement totals (spec 9.1)


def is_approved_row(row: Any) -> bool:
    return row["response_code"] in APPROVED and row["status"] not in DEAD


def next_reference(conn: Connection) -> int:
    """A console-wide counter (STAN of console rows, RRN suffix): unique across processes."""
    name = "console_ref"
    res = conn.execute(update(counters).where(counters.c.name == name).values(value=counters.c.value + 1))
    if res.rowcount == 0:
        conn.execute(counters.insert().values(name=name, value=1))
        return 1
    return int(conn.execute(select(counters.c.value).where(counters.c.name == name)).scalar_one())


def _take_rrn(conn: Connection) -> str | None:
    """One number from the host's RRN sequence (host processes reserve blocks; +1 never overlaps one)."""
    c = counters.c
    top = conn.execute(update(counters).where(c.name == "rrn").values(value=c.value + 1).returning(c.value)).scalar()
    return None if top is None else f"{int(top) % 10**12:012d}"


def insert_console_row(conn: Connection, *, now: datetime, tz: str, terminal_id: str, merchant_id: str,
                       operation: str, processing_code: str, amount: int, source: str, original: Any | None,
                       trace: list[list[str]], digest: str, pan_masked: str | None = None) -> tuple[int, str]:  # fmt: skip
    ref = next_reference(conn)
    rrn = _take_rrn(conn) or f"9{ref:011d}"[-12:]
    values: dict[str, Any] = dict(
        created_at=now, day=today(tz, now), terminal_id=terminal_id, merchant_id=merchant_id,
        batch_no=CONSOLE_BATCH, stan=f"{ref % 1_000_000:06d}", mti=CONSOLE_MTI, operation=operation,
        processing_code=processing_code, amount=amount, currency="156", response_code="00", rrn=rrn,
        status="approved", original_id=original["id"] if original is not None else None, refunded_amount=0,
        request_digest=digest, trace=trace, signed=False, source=source,
    )  # fmt: skip
    if original is not None:
        values.update(pan_hash=original["pan_hash"], pan_masked=original["pan_masked"], pan_enc=original["pan_enc"],
                      card_organisation=original["card_organisation"], currency=original["currency"])  # fmt: skip
    elif pan_masked:
        values["pan_masked"] = pan_masked
    txn_id = conn.execute(transactions.insert().values(**values).returning(T.id)).scalar_one()
    return int(txn_id), rrn


def annulment_of(conn: Connection, txn_id: int) -> int | None:
    """The id of the approved ``annulment`` row that annuls ``txn_id`` (None: not annulled).

    An annulment never changes the original: whether a record is annulled is read from the
    ledger here (the host asks the same question, ``HostStore.is_annulled``, before it voids,
    refunds or completes an original). Rows marked ``annulled`` by an older version count too."""
    row = conn.execute(select(T.id).where(T.original_id == txn_id, T.operation == "annulment", T.response_code == "00")
                       .order_by(T.id).limit(1)).first()  # fmt: skip
    if row is not None:
        return int(row.id)
    legacy = conn.execute(select(T.status).where(T.id == txn_id)).scalar()
    return txn_id if legacy == "annulled" else None


def get_txn(conn: Connection, p: Principal, txn_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(transactions).where(T.id == txn_id, scope(T.merchant_id, p))).mappings().first()
    return dict(row) if row else None
