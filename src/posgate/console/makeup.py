"""Make-up entries (补登) and refund requests: maker-checker corrections of the ledger.

One person proposes (with a reason and evidence); a second person decides. Nobody decides their
own proposal. An approved make-up entry never edits or deletes the original record: it writes a
NEW ``transactions`` row (``source`` = ``makeup``, ``original_id`` = the corrected row), or, to
close a difference, none at all. That a record is annulled is read from the ledger
(``ledger.annulment_of``; the host asks ``HostStore.is_annulled`` before acting on an original).
Refunds (below) are not corrections: like the terminal's, they update the original's summary
``status`` / ``refunded_amount``.

Kinds of make-up entry:

* ``missing_sale``: a sale the terminal approved (the slip proves it) that the records lack →
  a new approved ``sale`` row;
* ``wrong_amount``: a recorded amount is wrong → an ``adjustment`` row for the difference
  (debit when the right amount is higher, credit when lower);
* ``annul``: a record that should not count → an ``annulment`` credit of its amount (the
  original is unchanged; it can no longer be corrected, voided or refunded);
* ``close_difference``: a reconciliation difference is explained without a ledger change.

A reconciliation difference (``differences``) is resolved by the approval of the entry that
names it.

Refunds: executed by the console after approval — the host pipeline offers no console-initiated
refund, so the refund is recorded here as the host's rules would: a ``refund`` row (0220,
processing code 200000) referring to the original, the original's ``refunded_amount``/``status``
updated, and the built-in issuer credited (``cards.balance``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from posgate.console.audit import audit
from posgate.console.auth import ACQUIRER_ADMIN, MERCHANT_ADMIN, SUPPORT, Principal
from posgate.console.fmt import utcnow, yuan
from posgate.console.ledger import (
    REFUNDABLE,
    annulment_of,
    get_txn,
    insert_console_row,
    is_approved_row,
    scope,
)
from posgate.console.txns import ConsoleError, NotFound
from posgate.store.console_schema import makeup_entries, refund_requests
from posgate.store.schema import cards, differences, merchants, terminals, transactions

KINDS = ("missing_sale", "wrong_amount", "annul", "close_difference")
MAKEUP_APPROVERS = frozenset({MERCHANT_ADMIN, SUPPORT, ACQUIRER_ADMIN})
REFUND_APPROVERS = frozenset({MERCHANT_ADMIN, ACQUIRER_ADMIN})
MAX_EVIDENCE = 5 * 1024 * 1024
E, R, T, D = makeup_entries.c, refund_requests.c, transactions.c, differences.c


def _terminal_merchant(conn: Connection, p: Principal, terminal_id: str) -> str:
    mid = conn.execute(select(merchants.c.merchant_id).select_from(terminals.join(merchants, terminals.c.merchant_pk == merchants.c.id))
                       .where(terminals.c.terminal_id == terminal_id, scope(merchants.c.merchant_id, p))).scalar()  # fmt: skip
    if mid is None:
        raise ConsoleError("Unknown terminal {tid}.", tid=terminal_id)
    return str(mid)


def propose(conn: Connection, p: Principal, *, kind: str, reason: str, terminal_id: str = "", original_id: int | None = None,
            difference_id: int | None = None, amount: int | None = None, card_last4: str = "", reference: str = "",
            txn_day: str = "", evidence: str = "", evidence_file: bytes | None = None, evidence_name: str = "",
            evidence_type: str = "", now: datetime | None = None) -> int:  # fmt: skip
    now = now or utcnow()
    if kind not in KINDS:
        raise ConsoleError("Choose what kind of correction this is.")
    reason = (reason or "").strip()
    if not reason:
        raise ConsoleError("A reason is required; it is kept in the audit log.")
    if evidence_file is not None and len(evidence_file) > MAX_EVIDENCE:
        raise ConsoleError("The evidence file is too large (at most 5 MB).", 413)
    diff = None
    if difference_id:
        diff = conn.execute(select(differences).where(D.id == difference_id, scope(D.merchant_id, p))).mappings().first()
        if diff is None:
            raise NotFound()
        if diff["status"] != "open":
            raise ConsoleError("This difference is resolved already.", 409)
        terminal_id = terminal_id or diff["terminal_id"]
        original_id = original_id or diff["transaction_id"]
    original = None
    if original_id:
        original = get_txn(conn, p, original_id)
        if original is None:
            raise NotFound()
        terminal_id = original["terminal_id"]
    if not terminal_id:
        raise ConsoleError("Name the terminal, the original transaction or the difference.")
    merchant_id = _terminal_merchant(conn, p, terminal_id)
    if kind == "missing_sale":
        if not amount or amount <= 0:
            raise ConsoleError("Enter the amount of the sale as printed on the slip.")
        if card_last4 and not (card_last4.isdigit() and len(card_last4) == 4):
            raise ConsoleError("The card's last 4 digits must be 4 digits.")
        if txn_day:
            try:
                date.fromisoformat(txn_day)
            except ValueError:
                raise ConsoleError("The date must be YYYY-MM-DD.") from None
        original = None if original is None or is_approved_row(original) else original
    elif kind in ("wrong_amount", "annul"):
        if original is None:
            raise ConsoleError("Choose the transaction to correct (its id).")
        if not is_approved_row(original) or annulment_of(conn, original["id"]) is not None:
            raise ConsoleError("Only an approved record can be corrected.", 409)
        if kind == "wrong_amount":
            if not amount or amount <= 0:
                raise ConsoleError("Enter the correct amount.")
            if amount == original["amount"]:
                raise ConsoleError("The correct amount equals the recorded one; nothing to correct.")
    elif kind == "close_difference" and diff is None:
        raise ConsoleError("Choose the difference to close.")
    if original is not None:
        dup = conn.execute(select(E.id).where(E.original_id == original["id"], E.status == "pending")).first()
        if dup is not None:
            raise ConsoleError("Entry #{id} for this transaction is waiting for a decision already.", 409, id=dup.id)
    entry_id = conn.execute(
        makeup_entries.insert().values(
            merchant_id=merchant_id, terminal_id=terminal_id, kind=kind,
            original_id=original["id"] if original is not None else None, difference_id=difference_id or None,
            amount=amount, card_last4=card_last4 or None, reference=(reference or "").strip()[:40] or None,
            txn_day=txn_day or None, reason=reason[:2000], evidence=(evidence or "").strip()[:4000] or None,
            evidence_file=evidence_file or None, evidence_name=(evidence_name or "")[:120] or None,
            evidence_type=(evidence_type or "")[:80] or None, status="pending", proposed_by=p.username, proposed_at=now,
        ).returning(E.id)
    ).scalar_one()  # fmt: skip
    audit(conn, actor=p.username, action="makeup.proposed", object_type="makeup_entry", object_id=str(entry_id),
          merchant_id=merchant_id,
          after={"kind": kind, "terminal_id": terminal_id, "original_id": original["id"] if original is not None else None,
                 "difference_id": difference_id, "amount": amount, "reason": reason, "evidence": evidence or None,
                 "evidence_file": evidence_name or None},
          at=now)  # fmt: skip
    return int(entry_id)


def entries(conn: Connection, p: Principal, status: str = "", limit: int = 300) -> list[dict[str, Any]]:
    cond = [scope(E.merchant_id, p)]
    if status:
        cond.append(E.status == status)
    cols = [c for c in makeup_entries.c if c.name != "evidence_file"]
    rows = conn.execute(select(*cols, (E.evidence_file.isnot(None)).label("has_file")).where(*cond)
                        .order_by(E.id.desc()).limit(limit)).mappings()  # fmt: skip
    return [dict(r) for r in rows]


def entry(conn: Connection, p: Principal, entry_id: int) -> dict[str, Any]:
    row = conn.execute(select(makeup_entries).where(E.id == entry_id, scope(E.merchant_id, p))).mappings().first()
    if row is None:
        raise NotFound()
    return dict(row)


def open_differences(conn: Connection, p: Principal, include_resolved: bool = False) -> list[dict[str, Any]]:
    cond = [scope(D.merchant_id, p)]
    if not include_resolved:
        cond.append(D.status == "open")
    return [dict(r) for r in conn.execute(select(differences).where(*cond).order_by(D.id.desc()).limit(300)).mappings()]


def _check_decider(p: Principal, proposer: str, approvers: frozenset[str]) -> None:
    if p.role not in approvers:
        raise ConsoleError("Your role cannot decide this; a merchant administrator or the acquirer must.", 403)
    if p.username == proposer:
        raise ConsoleError("You cannot decide your own proposal: a second person must (maker-checker).", 403)


def decide(conn: Connection, p: Principal, entry_id: int, approve: bool, note: str, tz: str,
           now: datetime | None = None) -> dict[str, Any]:  # fmt: skip
    now = now or utcnow()
    e = entry(conn, p, entry_id)
    if e["status"] != "pending":
        raise ConsoleError("This entry was decided already.", 409)
    _check_decider(p, e["proposed_by"], MAKEUP_APPROVERS)
    note = (note or "").strip()
    if not approve and not note:
        raise ConsoleError("Say why you reject it; the proposer will read it.")
    result_txn_id = None
    original = get_txn(conn, p, e["original_id"]) if e["original_id"] else None
    trace = [["MakeupEntry", "approved", f"#{entry_id} {e['kind']} proposed by {e['proposed_by']}, approved by {p.username}"]]
    if approve:
        if e["kind"] == "missing_sale":
            result_txn_id, _ = insert_console_row(
                conn, now=now, tz=tz, terminal_id=e["terminal_id"], merchant_id=e["merchant_id"], operation="sale",
                processing_code="000000", amount=int(e["amount"]), source="makeup", original=original, trace=trace,
                digest=f"makeup:{entry_id}", pan_masked=f"************{e['card_last4']}" if e["card_last4"] else None,
            )  # fmt: skip
        elif e["kind"] in ("wrong_amount", "annul"):
            if original is None or not is_approved_row(original) or annulment_of(conn, original["id"]) is not None:
                raise ConsoleError("The original is no longer an approved record; reject this entry.", 409)
            if e["kind"] == "wrong_amount":
                delta = int(e["amount"]) - int(original["amount"])
                code, amount, op = ("000000" if delta > 0 else "200000"), abs(delta), "adjustment"
            else:
                code, amount, op = "200000", int(original["amount"]) - int(original["refunded_amount"] or 0), "annulment"
            result_txn_id, _ = insert_console_row(
                conn, now=now, tz=tz, terminal_id=e["terminal_id"], merchant_id=e["merchant_id"], operation=op,
                processing_code=code, amount=amount, source="makeup", original=original, trace=trace,
                digest=f"makeup:{entry_id}",
            )  # fmt: skip
            if e["kind"] == "annul":  # the original row stays as it is: the annulment row is the record
                audit(conn, actor=p.username, action="transaction.annulled", object_type="transaction",
                      object_id=str(original["id"]), merchant_id=e["merchant_id"],
                      after={"annulment_id": result_txn_id}, detail=f"make-up entry #{entry_id}", at=now)  # fmt: skip
    if e["difference_id"] and approve:
        conn.execute(update(differences).where(D.id == e["difference_id"])
                     .values(status="resolved", resolved_by=p.username,
                             resolution=f"make-up entry #{entry_id} ({e['kind']}): {e['reason']}"[:2000]))  # fmt: skip
        audit(conn, actor=p.username, action="difference.resolved", object_type="difference", object_id=str(e["difference_id"]),
              merchant_id=e["merchant_id"], before={"status": "open"}, after={"status": "resolved", "makeup_entry": entry_id},
              at=now)  # fmt: skip
    new_status = "approved" if approve else "rejected"
    conn.execute(update(makeup_entries).where(E.id == entry_id, E.status == "pending")
                 .values(status=new_status, decided_by=p.username, decided_at=now, decision_note=note or None,
                         result_txn_id=result_txn_id))  # fmt: skip
    audit(conn, actor=p.username, action=f"makeup.{new_status}", object_type="makeup_entry", object_id=str(entry_id),
          merchant_id=e["merchant_id"], before={"status": "pending"},
          after={"status": new_status, "result_txn_id": result_txn_id, "note": note or None}, at=now)  # fmt: skip
    return {"status": new_status, "result_txn_id": result_txn_id}


# ------------------------------------------------------------------ refunds


def refundable(conn: Connection, txn: dict[str, Any]) -> int:
    if txn["operation"] not in REFUNDABLE or not is_approved_row(txn) or txn["status"] in ("voided", "annulled", "refunded"):
        return 0
    if annulment_of(conn, txn["id"]) is not None:
        return 0
    pending = conn.execute(select(func.coalesce(func.sum(R.amount), 0))
                           .where(R.original_id == txn["id"], R.status == "pending")).scalar_one()  # fmt: skip
    return max(0, int(txn["amount"]) - int(txn["refunded_amount"] or 0) - int(pending))


def request_refund(conn: Connection, p: Principal, original_id: int, amount: int, reason: str,
                   now: datetime | None = None) -> int:  # fmt: skip
    now = now or utcnow()
    txn = get_txn(conn, p, original_id)
    if txn is None:
        raise NotFound()
    reason = (reason or "").strip()
    if not reason:
        raise ConsoleError("A reason is required; it is kept in the audit log.")
    left = refundable(conn, txn)
    if left <= 0:
        raise ConsoleError("This transaction cannot be refunded (not an approved sale, or refunded in full).", 409)
    if amount <= 0 or amount > left:
        raise ConsoleError("The refund must be above 0.00 and at most {left}.", left=yuan(left))
    rid = conn.execute(refund_requests.insert().values(
        merchant_id=txn["merchant_id"], terminal_id=txn["terminal_id"], original_id=original_id, amount=amount,
        reason=reason[:2000], status="pending", requested_by=p.username, requested_at=now,
    ).returning(R.id)).scalar_one()  # fmt: skip
    audit(conn, actor=p.username, action="refund.requested", object_type="refund_request", object_id=str(rid),
          merchant_id=txn["merchant_id"], after={"original_id": original_id, "amount": amount, "reason": reason}, at=now)  # fmt: skip
    return int(rid)


def refund_list(conn: Connection, p: Principal, status: str = "", limit: int = 300) -> list[dict[str, Any]]:
    cond = [scope(R.merchant_id, p)]
    if status:
        cond.append(R.status == status)
    rows = conn.execute(select(refund_requests, T.rrn.label("original_rrn"), T.pan_masked, T.amount.label("original_amount"))
                        .select_from(refund_requests.join(transactions, T.id == R.original_id))
                        .where(*cond).order_by(R.id.desc()).limit(limit)).mappings()  # fmt: skip
    return [dict(r) for r in rows]


def refund_request(conn: Connection, p: Principal, rid: int) -> dict[str, Any]:
    row = conn.execute(select(refund_requests).where(R.id == rid, scope(R.merchant_id, p))).mappings().first()
    if row is None:
        raise NotFound()
    return dict(row)


def decide_refund(conn: Connection, p: Principal, rid: int, approve: bool, note: str, tz: str,
                  now: datetime | None = None) -> dict[str, Any]:  # fmt: skip
    now = now or utcnow()
    req = refund_request(conn, p, rid)
    if req["status"] != "pending":
        raise ConsoleError("This request was decided already.", 409)
    _check_decider(p, req["requested_by"], REFUND_APPROVERS)
    note = (note or "").strip()
    if not approve:
        if not note:
            raise ConsoleError("Say why you reject it; the requester will read it.")
        conn.execute(update(refund_requests).where(R.id == rid)
                     .values(status="rejected", decided_by=p.username, decided_at=now, decision_note=note))  # fmt: skip
        audit(conn, actor=p.username, action="refund.rejected", object_type="refund_request", object_id=str(rid),
              merchant_id=req["merchant_id"], before={"status": "pending"}, after={"status": "rejected", "note": note}, at=now)  # fmt: skip
        return {"status": "rejected", "response_code": None, "result_txn_id": None}
    original = get_txn(conn, p, req["original_id"])
    assert original is not None
    left = int(original["amount"]) - int(original["refunded_amount"] or 0)
    code, detail, txn_id = "00", "refund recorded and the issuer credited", None
    if (original["operation"] not in REFUNDABLE or not is_approved_row(original) or original["status"] in ("voided", "annulled")
            or annulment_of(conn, original["id"]) is not None):  # fmt: skip
        code, detail = "12", "the original is no longer an approved sale"
    elif req["amount"] > left:
        code, detail = "64", "the refund exceeds what is left of the original"
    else:
        card = conn.execute(select(cards.c.id, cards.c.balance).where(cards.c.pan_hash == original["pan_hash"])).first() \
            if original["pan_hash"] else None  # fmt: skip
        if card is None:
            code, detail = "14", "the card is unknown to the issuer"
        else:
            conn.execute(update(cards).where(cards.c.id == card.id).values(balance=cards.c.balance + req["amount"]))
            trace = [["ConsoleRefund", "approved", f"refund request #{rid} by {req['requested_by']}, approved by {p.username}"],
                     ["CreditIssuer", "prepared", f"card balance +{req['amount']} fen"]]  # fmt: skip
            txn_id, _rrn = insert_console_row(
                conn, now=now, tz=tz, terminal_id=req["terminal_id"], merchant_id=req["merchant_id"], operation="refund",
                processing_code="200000", amount=int(req["amount"]), source="console", original=original, trace=trace,
                digest=f"refund:{rid}",
            )  # fmt: skip
            refunded = int(original["refunded_amount"] or 0) + int(req["amount"])
            new_status = "refunded" if refunded >= int(original["amount"]) else "partially_refunded"
            conn.execute(update(transactions).where(T.id == original["id"]).values(refunded_amount=refunded, status=new_status))
            audit(conn, actor=p.username, action="transaction.refunded", object_type="transaction", object_id=str(original["id"]),
                  merchant_id=req["merchant_id"],
                  before={"status": original["status"], "refunded_amount": original["refunded_amount"]},
                  after={"status": new_status, "refunded_amount": refunded, "refund_txn_id": txn_id}, at=now)  # fmt: skip
    status = "executed" if code == "00" else "failed"
    conn.execute(update(refund_requests).where(R.id == rid).values(
        status=status, decided_by=p.username, decided_at=now, decision_note=note or None, result_txn_id=txn_id,
        response_code=code, result_detail=detail))  # fmt: skip
    audit(conn, actor=p.username, action=f"refund.{status}", object_type="refund_request", object_id=str(rid),
          merchant_id=req["merchant_id"], before={"status": "pending"},
          after={"status": status, "response_code": code, "result_txn_id": txn_id}, detail=detail, at=now)  # fmt: skip
    return {"status": status, "response_code": code, "result_txn_id": txn_id, "detail": detail}
