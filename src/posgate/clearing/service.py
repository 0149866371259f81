"""Clearing on the acquirer's database: import a file, match it, keep the differences, and
resolve them with maker-checker. Thin around the sans-IO parts (``file``, ``match``).

Import is all or nothing, in the caller's transaction: a file that does not parse, or that was
imported before (the same bytes, or another file for the same business date and sender), is
refused with :class:`ClearingError` and nothing is written.

Which acquirer transactions a file is matched against is a parameter (``candidates``, a query
function ``(conn, business_date) -> AcquirerTxn``s); :func:`acquirer_candidates` is the default:
the financial messages that reached the host from terminals on that business day.

Resolution: one person proposes (``follow_network``: make our ledger agree with the network's
record; ``keep_ours``: the ledger stays, the network is to correct its side), a second person
approves or rejects. An approved ``follow_network`` writes one ``transactions`` row through the
same helper as the make-up entries (补登): an ``adjustment`` (debit or credit by the sign of the
difference) or, when our record should not count at all, an ``annulment`` of it; batch
``000000``, ``source`` = ``clearing``, the day of the approval. Merchant settlement counts it
like any make-up adjustment; the original row is never changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from posgate.clearing.file import parse_clearing_file
from posgate.clearing.match import DIFFERENCES, AcquirerTxn, Outcome, counts, match
from posgate.console.audit import audit
from posgate.console.fmt import utcnow
from posgate.console.ledger import annulment_of, insert_console_row, is_approved_row
from posgate.dialect.operations import OPERATIONS
from posgate.store.clearing_schema import (
    clearing_differences,
    clearing_files,
    clearing_records,
    clearing_resolutions,
)
from posgate.store.schema import merchants, transactions

T, F, R, D, S = (
    transactions.c,
    clearing_files.c,
    clearing_records.c,
    clearing_differences.c,
    clearing_resolutions.c,
)
ACTIONS = ("follow_network", "keep_ours")
DIFF_STATUSES = ("open", "proposed", "resolved")
# Sources of rows that travelled through the network (console and make-up rows never did).
NETWORK_SOURCES = ("terminal", "batch_upload")
FINANCIAL = tuple(sorted(name for name, op in OPERATIONS.items() if op.settlement))

CandidateQuery = Callable[[Connection, str], Iterable[AcquirerTxn]]


class ClearingError(ValueError):
    """A request that cannot be carried out; ``message`` says why (an English msgid with
    ``{fields}``, translated by the console), ``status`` the HTTP status for the console."""

    def __init__(self, message: str, status: int = 400, **fields: Any) -> None:
        self.message, self.status, self.fields = message, status, fields
        super().__init__(message.format(**fields) if fields else message)


def day_of(business_date: str) -> str:
    """``20261203`` or ``2026-12-03`` → ``2026-12-03`` (the acquirer's ``day`` format)."""
    d = business_date.replace("-", "")
    if len(d) != 8 or not d.isdigit():
        raise ClearingError("A business date is YYYYMMDD or YYYY-MM-DD.")
    return f"{d[:4]}-{d[4:6]}-{d[6:]}"


def compact(business_date: str) -> str:
    return day_of(business_date).replace("-", "")


def _txn(row: Any) -> AcquirerTxn:
    # The network knows a transaction by the STAN and RRN the acquirer sent it (the same as the
    # terminal's, but for a QR confirmation, which carries its query's STAN).
    return AcquirerTxn(id=int(row.id), terminal_id=row.terminal_id, merchant_id=row.merchant_id,
                       stan=row.upstream_stan or row.stan, rrn=row.upstream_rrn or row.rrn or "", amount=int(row.amount), response_code=row.response_code, status=row.status,
                       operation=row.operation, processing_code=row.processing_code or "", pan_masked=row.pan_masked or "")  # fmt: skip


def acquirer_candidates(conn: Connection, business_date: str) -> list[AcquirerTxn]:
    """The acquirer's financial messages of the business day (every status: a declined or
    reversed one matters when the network cleared it), of those routed upstream: what the
    built-in issuer authorised never reached the network and is no difference (docs/clearing.md,
    "Which transactions")."""
    cols = (T.id, T.terminal_id, T.merchant_id, T.stan, T.rrn, T.upstream_stan, T.upstream_rrn, T.amount,
            T.response_code, T.status, T.operation, T.processing_code, T.pan_masked)  # fmt: skip
    rows = conn.execute(select(*cols).where(T.day == day_of(business_date), T.source.in_(NETWORK_SOURCES),
                                            T.route != "issuer",
                                            T.operation.in_(FINANCIAL), T.mti != "0400").order_by(T.id))  # fmt: skip
    return [_txn(r) for r in rows]


@dataclass(frozen=True)
class Imported:
    file_id: int
    business_date: str
    records: int
    outcomes: dict[str, int]
    differences: int


def import_file(conn: Connection, data: bytes, *, file_name: str, actor: str,
                candidates: CandidateQuery = acquirer_candidates, now: datetime | None = None) -> Imported:  # fmt: skip
    """Parse, match and record one clearing file. Raises ``ClearingFileError`` (bad file) or
    :class:`ClearingError` (imported before); nothing is written then."""
    now = now or utcnow()
    parsed = parse_clearing_file(data)
    digest = hashlib.sha256(data).hexdigest()
    same = conn.execute(select(F.id, F.imported_at, F.imported_by).where(F.sha256 == digest)).first()
    if same is not None:
        raise ClearingError("This file was imported already (import #{id} by {user}); nothing changed.", 409,
                            id=same.id, user=same.imported_by)  # fmt: skip
    other = conn.execute(
        select(F.id).where(F.business_date == parsed.business_date, F.sender == parsed.sender)
    ).first()
    if other is not None:
        raise ClearingError("A clearing file of {date} from {sender} was imported already (import #{id}): a second "
                            "file for the same day would count it twice; nothing changed.", 409,
                            date=parsed.business_date, sender=parsed.sender, id=other.id)  # fmt: skip
    outcomes = match(parsed.records, candidates(conn, parsed.business_date))
    tally = counts(outcomes)
    file_id = conn.execute(insert(clearing_files).values(
        business_date=parsed.business_date, sender=parsed.sender[:11], receiver=parsed.receiver[:11],
        file_name=file_name[-200:], sha256=digest, record_count=len(parsed.records), debit_count=parsed.debit_count,
        debit_total=parsed.debit_total, credit_count=parsed.credit_count, credit_total=parsed.credit_total,
        outcomes=tally, imported_at=now, imported_by=actor[:64],
    ).returning(F.id)).scalar_one()  # fmt: skip
    by_index = {o.index: o for o in outcomes if o.index is not None}
    rows = []
    for i, (rec, line) in enumerate(zip(parsed.records, parsed.lines, strict=True)):
        o = by_index[i]
        rows.append(dict(
            file_id=file_id, line=line, outcome=o.outcome, txn_id=o.txn.id if o.txn else None, terminal_id=rec.terminal_id,
            merchant_id=rec.merchant_id, stan=rec.stan, rrn=rec.rrn, mti=rec.mti, processing_code=rec.processing_code,
            amount=rec.amount, currency=rec.currency, response_code=rec.response_code, auth_code=rec.auth_code or None,
            pan_masked=rec.pan_masked or None, transmission_time=rec.transmission_time, kind=rec.kind,
            stand_in=rec.stand_in, original_rrn=rec.original_rrn or None,
        ))  # fmt: skip
    if rows:
        conn.execute(insert(clearing_records), rows)
    record_ids = {
        int(line): int(rid) for line, rid in conn.execute(select(R.line, R.id).where(R.file_id == file_id))
    }
    diffs = [
        _difference(o, file_id, parsed.business_date, record_ids, parsed.lines, now)
        for o in outcomes
        if o.is_difference
    ]
    if diffs:
        conn.execute(insert(clearing_differences), diffs)
    audit(conn, actor=actor, action="clearing.imported", object_type="clearing_file", object_id=str(file_id),
          after={"business_date": parsed.business_date, "sender": parsed.sender, "file": file_name, "sha256": digest,
                 "records": len(parsed.records), "outcomes": tally}, at=now)  # fmt: skip
    return Imported(int(file_id), parsed.business_date, len(parsed.records), tally, len(diffs))


def _difference(o: Outcome, file_id: int, business_date: str, record_ids: dict[int, int], lines: tuple[int, ...],
                now: datetime) -> dict[str, Any]:  # fmt: skip
    src: Any = o.record if o.record is not None else o.txn
    assert src is not None
    return dict(
        file_id=file_id, business_date=business_date, kind=o.outcome,
        record_id=record_ids[lines[o.index]] if o.index is not None else None, txn_id=o.txn.id if o.txn else None,
        terminal_id=src.terminal_id, merchant_id=src.merchant_id, stan=src.stan, rrn=src.rrn,
        network_amount=o.record.amount if o.record is not None else None,
        our_amount=o.txn.amount if o.txn is not None else None, effect=o.effect, status="open", created_at=now,
    )  # fmt: skip


# ------------------------------------------------------------------ reading


def files(conn: Connection, limit: int = 100) -> list[dict[str, Any]]:
    unresolved = (
        select(D.file_id, func.count().label("n"))
        .where(D.status != "resolved")
        .group_by(D.file_id)
        .subquery()
    )
    rows = conn.execute(
        select(clearing_files, func.coalesce(unresolved.c.n, 0).label("unresolved"))
        .select_from(clearing_files.outerjoin(unresolved, unresolved.c.file_id == F.id))
        .order_by(F.business_date.desc(), F.id.desc()).limit(limit)
    ).mappings()  # fmt: skip
    return [dict(r) for r in rows]


def clearing_file(conn: Connection, file_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(clearing_files).where(F.id == file_id)).mappings().first()
    return dict(row) if row else None


@dataclass
class DiffFilter:
    status: str = ""
    kind: str = ""
    business_date: str = ""
    merchant_id: str = ""
    terminal_id: str = ""
    file_id: int | None = None

    @classmethod
    def from_params(cls, params: Any) -> DiffFilter:
        def get(k: str) -> str:
            return str(params.get(k, "") or "").strip()[:32]

        status, kind = get("status"), get("kind")
        file_id = get("file")
        return cls(status=status if status in DIFF_STATUSES else "", kind=kind if kind in DIFFERENCES else "",
                   business_date=get("date").replace("-", "")[:8], merchant_id=get("merchant_id"),
                   terminal_id=get("terminal_id"), file_id=int(file_id) if file_id.isdigit() else None)  # fmt: skip

    def as_params(self) -> dict[str, str]:
        p = {"status": self.status, "kind": self.kind, "date": self.business_date, "merchant_id": self.merchant_id,
             "terminal_id": self.terminal_id, "file": str(self.file_id or "")}  # fmt: skip
        return {k: v for k, v in p.items() if v}


def differences(conn: Connection, f: DiffFilter | None = None, limit: int = 500) -> list[dict[str, Any]]:
    f = f or DiffFilter()
    cond = []
    if f.status:
        cond.append(D.status == f.status)
    if f.kind:
        cond.append(D.kind == f.kind)
    if f.business_date:
        cond.append(D.business_date == f.business_date)
    if f.merchant_id:
        cond.append(D.merchant_id == f.merchant_id)
    if f.terminal_id:
        cond.append(D.terminal_id == f.terminal_id)
    if f.file_id:
        cond.append(D.file_id == f.file_id)
    return [
        dict(r)
        for r in conn.execute(
            select(clearing_differences).where(*cond).order_by(D.id.desc()).limit(limit)
        ).mappings()
    ]


def difference(conn: Connection, diff_id: int) -> dict[str, Any]:
    d = conn.execute(select(clearing_differences).where(D.id == diff_id)).mappings().first()
    if d is None:
        raise ClearingError("No such difference.", 404)
    record = (
        conn.execute(select(clearing_records).where(R.id == d["record_id"])).mappings().first()
        if d["record_id"]
        else None
    )
    txn = (
        conn.execute(select(transactions).where(T.id == d["txn_id"])).mappings().first()
        if d["txn_id"]
        else None
    )
    res = (
        conn.execute(select(clearing_resolutions).where(S.difference_id == diff_id).order_by(S.id))
        .mappings()
        .all()
    )
    return {"d": dict(d), "record": dict(record) if record else None, "txn": dict(txn) if txn else None,
            "resolutions": [dict(r) for r in res], "pending": next((dict(r) for r in res if r["status"] == "pending"), None)}  # fmt: skip


def report(conn: Connection, business_date: str) -> dict[str, Any]:
    """The import of one business date: the file's totals, the outcome counts and the differences."""
    date = compact(business_date)
    f = conn.execute(select(clearing_files).where(F.business_date == date).order_by(F.id)).mappings().all()
    if not f:
        raise ClearingError("No clearing file of {date} has been imported.", 404, date=date)
    diffs = differences(conn, DiffFilter(business_date=date))
    return {"business_date": date, "files": [dict(x) for x in f], "differences": list(reversed(diffs))}


# ------------------------------------------------------------------ resolution (maker-checker)


def effect_of(d: dict[str, Any]) -> tuple[str, int] | None:
    """The ledger row ``follow_network`` writes for difference ``d``: (operation, signed fen),
    or None when following the network changes nothing (a duplicate record)."""
    e = int(d["effect"] or 0)
    if e == 0:
        return None
    removes_ours = d["kind"] == "missing_theirs" or (
        d["kind"] == "response_mismatch" and e < 0 and d["txn_id"]
    )
    return ("annulment" if removes_ours else "adjustment", e)


def propose(
    conn: Connection, actor: str, diff_id: int, action: str, note: str, now: datetime | None = None
) -> int:
    now = now or utcnow()
    d = difference(conn, diff_id)["d"]
    if d["status"] != "open":
        raise ClearingError("This difference has a proposal waiting for a decision, or is resolved.", 409)
    if action not in ACTIONS:
        raise ClearingError("Choose how to resolve the difference.")
    note = (note or "").strip()
    if not note:
        raise ClearingError("Say why; the note is kept in the audit log.")
    if action == "follow_network":
        if effect_of(d) is None:
            raise ClearingError(
                "Following the network changes nothing for this difference: keep our record instead.", 409
            )
        known = conn.execute(
            select(merchants.c.id).where(merchants.c.merchant_id == d["merchant_id"])
        ).first()
        if known is None:
            raise ClearingError("Merchant {mid} is not one of ours: keep our record and ask the network.", 409,
                                mid=d["merchant_id"])  # fmt: skip
    # Claim the difference first: of two people proposing at once, the second finds it taken.
    claimed = conn.execute(
        update(clearing_differences).where(D.id == diff_id, D.status == "open").values(status="proposed")
    )
    if claimed.rowcount != 1:
        raise ClearingError("This difference has a proposal waiting for a decision, or is resolved.", 409)
    rid = conn.execute(insert(clearing_resolutions).values(
        difference_id=diff_id, action=action, note=note[:2000], status="pending", proposed_by=actor[:64], proposed_at=now,
    ).returning(S.id)).scalar_one()  # fmt: skip
    audit(conn, actor=actor, action="clearing.proposed", object_type="clearing_difference", object_id=str(diff_id),
          merchant_id=d["merchant_id"], before={"status": "open"},
          after={"status": "proposed", "resolution": int(rid), "action": action, "note": note}, at=now)  # fmt: skip
    return int(rid)


def decide(conn: Connection, actor: str, diff_id: int, approve: bool, note: str, tz: str,
           now: datetime | None = None) -> dict[str, Any]:  # fmt: skip
    now = now or utcnow()
    full = difference(conn, diff_id)
    d, res = full["d"], full["pending"]
    if res is None or d["status"] != "proposed":
        raise ClearingError("There is no proposal waiting for a decision.", 409)
    if actor == res["proposed_by"]:
        raise ClearingError("You cannot decide your own proposal: a second person must (maker-checker).", 403)
    note = (note or "").strip()
    if not approve:
        if not note:
            raise ClearingError("Say why you reject it; the proposer will read it.")
        _claim(
            conn,
            res["id"],
            dict(status="rejected", decided_by=actor[:64], decided_at=now, decision_note=note[:2000]),
        )
        conn.execute(update(clearing_differences).where(D.id == diff_id).values(status="open"))
        audit(conn, actor=actor, action="clearing.rejected", object_type="clearing_difference", object_id=str(diff_id),
              merchant_id=d["merchant_id"], before={"status": "proposed"}, after={"status": "open", "note": note}, at=now)  # fmt: skip
        return {"status": "rejected", "result_txn_id": None}
    _claim(
        conn,
        res["id"],
        dict(status="approved", decided_by=actor[:64], decided_at=now, decision_note=note[:2000] or None),
    )
    result_txn_id = None
    if res["action"] == "follow_network":
        result_txn_id = _apply(conn, full, res, actor, tz, now)
        conn.execute(
            update(clearing_resolutions).where(S.id == res["id"]).values(result_txn_id=result_txn_id)
        )
    conn.execute(update(clearing_differences).where(D.id == diff_id)
                 .values(status="resolved", resolved_at=now, resolved_by=actor[:64]))  # fmt: skip
    audit(conn, actor=actor, action="clearing.resolved", object_type="clearing_difference", object_id=str(diff_id),
          merchant_id=d["merchant_id"], before={"status": "proposed"},
          after={"status": "resolved", "action": res["action"], "proposed_by": res["proposed_by"],
                 "result_txn_id": result_txn_id, "note": note or None}, at=now)  # fmt: skip
    return {"status": "approved", "result_txn_id": result_txn_id}


def _claim(conn: Connection, resolution_id: int, values: dict[str, Any]) -> None:
    """Decide a pending proposal, or fail: two checkers deciding at once cannot both write to the
    ledger (on PostgreSQL the second UPDATE waits for the first, then matches no pending row)."""
    done = conn.execute(
        update(clearing_resolutions).where(S.id == resolution_id, S.status == "pending").values(**values)
    )
    if done.rowcount != 1:
        raise ClearingError("There is no proposal waiting for a decision.", 409)


def _apply(
    conn: Connection, full: dict[str, Any], res: dict[str, Any], actor: str, tz: str, now: datetime
) -> int:
    d, record, original = full["d"], full["record"], full["txn"]
    what = effect_of(d)
    if what is None:
        raise ClearingError(
            "Following the network changes nothing for this difference: keep our record instead.", 409
        )
    operation, effect = what
    if operation == "annulment":
        if (
            original is None
            or not is_approved_row(original)
            or annulment_of(conn, original["id"]) is not None
        ):
            raise ClearingError("Our record is no longer an approved one; reject this proposal.", 409)
    trace = [["ClearingDifference", "approved",
              f"#{d['id']} {d['kind']} of {d['business_date']}: {res['action']} proposed by {res['proposed_by']}, "
              f"approved by {actor}"]]  # fmt: skip
    txn_id, _rrn = insert_console_row(
        conn, now=now, tz=tz, terminal_id=d["terminal_id"], merchant_id=d["merchant_id"], operation=operation,
        processing_code="000000" if effect > 0 else "200000", amount=abs(effect), source="clearing", original=original,
        trace=trace, digest=f"clearing:{res['id']}",
        pan_masked=(record or {}).get("pan_masked") if original is None else None,
    )  # fmt: skip
    return txn_id
