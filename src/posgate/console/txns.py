"""Transactions: search, detail, CSV export, unsigned slips and make-up signatures (补签)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PIL import Image, UnidentifiedImageError
from sqlalchemy import Connection, and_, func, or_, select, update

from posgate.console.audit import audit
from posgate.console.auth import Principal
from posgate.console.fmt import fmt_time, parse_yuan, utcnow, yuan
from posgate.console.labels import labeller
from posgate.console.ledger import (
    NO_CVM_ENTRY,
    OPERATION_NAMES,
    SIGNABLE,
    approved_clause,
    get_txn,
    is_approved_row,
    scope,
    unsigned_clause,
)
from posgate.domain.response_codes import APPROVED, describe
from posgate.store.console_schema import unsigned_alerts
from posgate.store.schema import PAN_LAST4, merchants, signatures, transactions

T = transactions.c
MAX_SIGNATURE_BYTES = 2 * 1024 * 1024


class ConsoleError(ValueError):
    """A request that cannot be carried out; ``message`` is an English msgid, ``args_`` its fields."""

    status = 400

    def __init__(self, message: str, status: int = 400, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.fields = fields


class NotFound(ConsoleError):
    def __init__(self, what: str = "Not found.") -> None:
        super().__init__(what, 404)


@dataclass
class TxnQuery:
    day_from: str = ""
    day_to: str = ""
    terminal_id: str = ""
    merchant_id: str = ""
    card: str = ""  # last 4, masked PAN (621214******0012 or with *), or a full PAN
    amount: str = ""  # yuan
    rrn: str = ""
    voucher: str = ""  # STAN as printed
    type: str = ""  # operation
    result: str = ""  # approved | declined | a response code
    unsigned: bool = False
    method: str = ""  # payment method: card | qr | unionpay | wechat | alipay (PAYMENT_METHODS)
    page: int = 1
    per_page: int = 50

    @classmethod
    def from_params(cls, params: Any) -> TxnQuery:
        def g(name: str) -> str:
            v = params.get(name)
            return v.strip() if isinstance(v, str) else ""

        try:
            page = max(1, int(g("page") or 1))
        except ValueError:
            page = 1
        try:
            per_page = min(500, max(1, int(g("per_page") or 50)))
        except ValueError:
            per_page = 50
        return cls(
            day_from=g("day_from"), day_to=g("day_to"), terminal_id=g("terminal_id"), merchant_id=g("merchant_id"),
            card=g("card"), amount=g("amount"), rrn=g("rrn"), voucher=g("voucher"), type=g("type"),
            result=g("result"), unsigned=g("unsigned").lower() in ("1", "true", "yes", "on"), page=page,
            method=g("method") if g("method") in PAYMENT_METHODS else "",
            per_page=per_page,
        )  # fmt: skip

    def as_params(self, **override: Any) -> dict[str, str]:
        d = {k: v for k, v in self.__dict__.items() if v not in ("", False, None)}
        d.pop("per_page", None) if self.per_page == 50 else None
        d.update(override)
        return {k: ("true" if v is True else str(v)) for k, v in d.items()}


_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _conditions(q: TxnQuery, p: Principal, keyring: Any) -> list[Any]:
    cond: list[Any] = [scope(T.merchant_id, p)]
    if _DAY.match(q.day_from):
        cond.append(T.day >= q.day_from)
    if _DAY.match(q.day_to):
        cond.append(T.day <= q.day_to)
    if q.terminal_id:
        cond.append(T.terminal_id == q.terminal_id)
    if q.merchant_id:
        cond.append(T.merchant_id == q.merchant_id)
    if q.card:
        card = q.card.replace(" ", "")
        if card.isdigit() and len(card) == 4:
            cond.append(PAN_LAST4 == card)  # = pan_masked LIKE '%1234', through its index
        elif card.isdigit() and len(card) >= 13 and keyring is not None:
            cond.append(T.pan_hash == keyring.pan_hash(card))
        elif card.isdigit() and len(card) >= 10:  # first 6 and last 4 of a number
            cond.append(and_(T.pan_masked.like(f"{card[:6]}%"), PAN_LAST4 == card[-4:]))
        else:
            # a masked PAN as printed: '*' matches any digits
            head, _, tail = card.partition("*")
            tail = tail.strip("*")
            cond.append(and_(T.pan_masked.like(f"{_like(head)}%", escape="\\"),
                             T.pan_masked.like(f"%{_like(tail)}", escape="\\")))  # fmt: skip
    if q.amount:
        try:
            cond.append(T.amount == parse_yuan(q.amount))
        except ValueError:
            raise ConsoleError("The amount is not valid: use yuan, e.g. 12.34.") from None
    if q.rrn:
        cond.append(T.rrn == q.rrn)
    if q.voucher:
        cond.append(T.stan == q.voucher.zfill(6)[-6:])
    if q.type:
        cond.append(T.operation == q.type)
    if q.result == "approved":
        cond.append(T.response_code.in_(sorted(APPROVED)))
    elif q.result == "declined":
        cond.append(T.response_code.notin_(sorted(APPROVED)))
    elif q.result:
        cond.append(T.response_code == q.result.upper())
    if q.unsigned:
        cond.append(unsigned_clause())
    if q.method:
        cond.append(_method_clause(q.method))
    return cond


# Payment method filter and column (scan-to-pay, docs/decisions.md Q1/Q3): the entry mode 03x
# says a code was scanned; the wallet is told by the code's first digits (kept in pan_masked).
PAYMENT_METHODS = ("card", "qr", "unionpay", "wechat", "alipay")
_QR = T.entry_mode.like("03%")


def _method_clause(method: str) -> Any:
    if method == "card":
        return or_(T.entry_mode.is_(None), T.entry_mode.not_like("03%"))
    if method == "qr":
        return _QR
    if method == "unionpay":
        return and_(_QR, T.pan_masked.like("62%"))
    if method == "wechat":
        return and_(_QR, or_(*(T.pan_masked.like(f"{h}%") for h in range(10, 16))), func.length(T.pan_masked) == 18)
    return and_(_QR, or_(*(T.pan_masked.like(f"{h}%") for h in range(25, 31))))  # alipay


def payment_method(row: dict[str, Any]) -> str:
    """``card`` or the wallet of a QR payment (``unionpay``, ``wechat``, ``alipay``, ``qr``)."""
    from posgate.dialect.qr import is_qr_entry, wallet_of

    if not is_qr_entry(row.get("entry_mode")):
        return "card"
    return wallet_of(row.get("pan_masked") or "").key


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


LIST_COLS = [T.id, T.created_at, T.day, T.terminal_id, T.merchant_id, T.batch_no, T.stan, T.mti, T.operation,
             T.processing_code, T.amount, T.currency, T.pan_masked, T.card_organisation, T.response_code, T.auth_code,
             T.rrn, T.status, T.original_id, T.refunded_amount, T.signed, T.source, T.operator, T.entry_mode]  # fmt: skip


def search(conn: Connection, p: Principal, q: TxnQuery, keyring: Any = None, limit: int | None = None) -> tuple[list[dict[str, Any]], int]:
    cond = _conditions(q, p, keyring)
    total = conn.execute(select(func.count()).select_from(transactions).where(*cond)).scalar_one()
    # A date range: newest first by business day, then time (the same order: a record's day is
    # its time's day), which ix_transactions_day_created serves without sorting the range.
    by_day = (T.day.desc(),) if _DAY.match(q.day_from) or _DAY.match(q.day_to) else ()
    stmt = select(*LIST_COLS).where(*cond).order_by(*by_day, T.created_at.desc(), T.id.desc())
    if limit is not None:
        stmt = stmt.limit(limit)
    else:
        stmt = stmt.limit(q.per_page).offset((q.page - 1) * q.per_page)
    rows = [dict(r) for r in conn.execute(stmt).mappings()]
    for r in rows:
        r["method"] = payment_method(r)
    return rows, int(total)


# Pipeline internals an API item carries only for acquirer staff (merchants get business fields:
# voucher, reference number (rrn), auth code, entry method).
TECHNICAL_FIELDS = ("mti", "processing_code", "stan", "entry_mode")


def api_item(row: dict[str, Any], tz: str, technical: bool = True) -> dict[str, Any]:
    from posgate.console.labels import english

    item = {
        "id": row["id"], "created_at": _iso(row["created_at"]), "local_time": fmt_time(row["created_at"], tz),
        "day": row["day"], "terminal_id": row["terminal_id"], "merchant_id": row["merchant_id"],
        "batch_no": row["batch_no"], "stan": row["stan"], "voucher": row["stan"], "mti": row["mti"],
        "type": row["operation"], "processing_code": row["processing_code"], "amount": row["amount"],
        "amount_yuan": yuan(row["amount"]), "currency": row["currency"], "pan_masked": row["pan_masked"],
        "card_organisation": row["card_organisation"], "response_code": row["response_code"],
        "approved": row["response_code"] in APPROVED, "auth_code": row["auth_code"], "rrn": row["rrn"],
        "status": row["status"], "original_id": row["original_id"], "refunded_amount": row["refunded_amount"],
        "signed": bool(row["signed"]), "source": row["source"], "operator": row["operator"],
        "entry_mode": row.get("entry_mode"), "entry_method": english("entry_mode", row.get("entry_mode")),
        "payment_method": payment_method(row),
    }  # fmt: skip
    if not technical:
        for k in TECHNICAL_FIELDS:
            item.pop(k, None)
    return item


def _iso(dt: datetime | None) -> str | None:
    from posgate.console.fmt import aware

    a = aware(dt)
    return a.isoformat() if a else None


def needs_signature(row: dict[str, Any]) -> bool:
    return (is_approved_row(row) and not row["signed"] and row["operation"] in SIGNABLE and row["source"] == "terminal"
            and row["mti"] != "0400" and payment_method(row) == "card" and row.get("entry_mode") != NO_CVM_ENTRY)  # fmt: skip


def detail(conn: Connection, p: Principal, txn_id: int) -> dict[str, Any]:
    row = get_txn(conn, p, txn_id)
    if row is None:
        raise NotFound()
    m = conn.execute(select(merchants.c.name, merchants.c.name_en, merchants.c.fee_rate_bp)
                     .where(merchants.c.merchant_id == row["merchant_id"])).mappings().first()  # fmt: skip
    sig = latest_signature(conn, txn_id)
    children = [dict(r) for r in conn.execute(select(*LIST_COLS).where(T.original_id == txn_id, scope(T.merchant_id, p))
                                             .order_by(T.id)).mappings()]  # fmt: skip
    original = None
    if row["original_id"]:
        o = get_txn(conn, p, row["original_id"])
        original = {k: o[k] for k in ("id", "operation", "amount", "rrn", "stan", "batch_no", "day")} if o else None
    alert = conn.execute(select(unsigned_alerts).where(unsigned_alerts.c.transaction_id == txn_id)).mappings().first()
    rc = describe(row["response_code"])
    return {
        "txn": row, "merchant": dict(m) if m else {}, "signature": sig, "children": children, "original": original,
        "response": rc, "needs_signature": needs_signature(row), "alert": dict(alert) if alert else None,
        "operation_name": OPERATION_NAMES.get(row["operation"], (row["operation"], row["operation"])),
    }  # fmt: skip


def latest_signature(conn: Connection, txn_id: int) -> dict[str, Any] | None:
    s = signatures.c
    row = conn.execute(select(s.id, s.at, s.source, s.png, s.jbig, s.width, s.height, s.captured_by)
                       .where(s.transaction_id == txn_id).order_by(s.id.desc()).limit(1)).mappings().first()  # fmt: skip
    if row is None:
        return None
    d = dict(row)
    if d["png"] is None and d["jbig"] is not None:
        try:
            from posgate.signature import jbig_to_png

            d["png"] = jbig_to_png(bytes(d["jbig"]))
        except Exception:  # noqa: BLE001 - a damaged upload must not break the page
            d["png"] = None
    return d


def _trace_rows(row: dict[str, Any]) -> list[list[str]]:
    return [list(map(str, step)) for step in (row.get("trace") or []) if isinstance(step, list | tuple)]


CSV_COLUMNS = ["id", "local_time", "day", "merchant_id", "terminal_id", "batch_no", "voucher", "type", "amount_yuan",
               "currency", "pan_masked", "response_code", "auth_code", "rrn", "status", "signed", "source",
               "response_text", "payment_method", "entry_mode"]  # fmt: skip


def csv_export(rows: list[dict[str, Any]], tz: str, lang: str, _: Callable[..., str]) -> str:
    """The list as the page shows it: stable English column names (for spreadsheets and
    scripts), values in the reader's language (type, status, source, signed, payment method,
    entry mode: the page's labels, ``posgate.console.labels``). The response code stays a code
    (the reconciliation key banks and the network use) and its meaning follows in
    ``response_text``. UTF-8 with a BOM, like every CSV of the console (Excel reads the Chinese)."""
    label = labeller(_)
    zh = lang == "zh_CN"
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(CSV_COLUMNS)
    for r in rows:
        op = OPERATION_NAMES.get(r["operation"], (r["operation"], r["operation"]))[0 if zh else 1]
        rc = describe(r["response_code"]) if r["response_code"] else None
        w.writerow([r["id"], fmt_time(r["created_at"], tz), r["day"], r["merchant_id"], r["terminal_id"], r["batch_no"],
                    r["stan"], op, yuan(r["amount"]).replace(",", ""), r["currency"], r["pan_masked"] or "",
                    r["response_code"] or "", r["auth_code"] or "", r["rrn"] or "", label("txn_status", r["status"]),
                    _("Yes") if r["signed"] else _("No"), label("source", r["source"]),
                    (rc.zh if zh else rc.en) if rc else "", label("payment_method", r.get("method") or "card"),
                    label("entry_mode", r.get("entry_mode"))])  # fmt: skip
    return "\ufeff" + out.getvalue()  # BOM: spreadsheet programs then read the Chinese correctly


# ------------------------------------------------------------------ make-up signature (补签)


def _check_png(png: bytes) -> None:
    if not png:
        raise ConsoleError("The signature is empty: ask the cardholder to sign on the pad.")
    if len(png) > MAX_SIGNATURE_BYTES:
        raise ConsoleError("The signature image is too large.", 413)
    try:
        with Image.open(io.BytesIO(png)) as im:
            if im.format != "PNG":
                raise ConsoleError("The signature must be a PNG image.", 415)
            if im.width * im.height > 4096 * 4096:
                raise ConsoleError("The signature image is too large.", 413)
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError):
        raise ConsoleError("The signature must be a PNG image.", 415) from None


def _to_signature(png: bytes) -> tuple[bytes | None, bytes, int, int]:
    """(JBIG for field 62, PNG to show, width, height); the signature package when present."""
    try:
        from posgate.signature import BlankSignatureError, SignatureError, png_to_jbig
    except ModuleNotFoundError:  # pragma: no cover - the signature part ships it
        with Image.open(io.BytesIO(png)) as im:
            bw = im.convert("L").point(lambda v: 0 if v < 128 else 255, "1")
            if bw.getbbox() is None:
                raise ConsoleError("The signature is blank: ask the cardholder to sign on the pad.") from None
            out = io.BytesIO()
            bw.save(out, format="PNG")
            return None, out.getvalue(), bw.width, bw.height
    try:
        sig = png_to_jbig(png)
    except BlankSignatureError:
        raise ConsoleError("The signature is blank: ask the cardholder to sign on the pad.") from None
    except SignatureError as e:
        raise ConsoleError("The signature cannot be used: {reason}", reason=str(e)) from None
    return sig.jbig, sig.to_png(), sig.width, sig.height


def capture_signature(conn: Connection, p: Principal, txn_id: int, png: bytes, *, now: datetime | None = None,
                      via: str = "console") -> int:  # fmt: skip
    """Record a make-up signature: new signatures row, the transaction marked signed, audit."""
    now = now or utcnow()
    row = get_txn(conn, p, txn_id)
    if row is None:
        raise NotFound()
    if row["signed"]:
        raise ConsoleError("This slip is signed already.", 409)
    if not needs_signature(row):
        raise ConsoleError("This transaction has no slip to sign (declined, reversed or not a card payment).", 409)
    _check_png(png)
    jbig, png_bw, width, height = _to_signature(png)
    sig_id = conn.execute(
        signatures.insert().values(
            transaction_id=txn_id, at=now, source="makeup", jbig=jbig, png=png_bw, width=width, height=height,
            captured_by=p.username,
        ).returning(signatures.c.id)
    ).scalar_one()  # fmt: skip
    conn.execute(update(transactions).where(T.id == txn_id, T.signed.is_(False)).values(signed=True))
    conn.execute(update(unsigned_alerts).where(unsigned_alerts.c.transaction_id == txn_id,
                                               unsigned_alerts.c.cleared_at.is_(None)).values(cleared_at=now))  # fmt: skip
    audit(conn, actor=p.username, action="transaction.makeup_signature", object_type="transaction", object_id=str(txn_id),
          merchant_id=row["merchant_id"], before={"signed": False},
          after={"signed": True, "signature_id": sig_id, "jbig_bytes": len(jbig) if jbig else None},
          detail=f"make-up signature captured ({via})", at=now)  # fmt: skip
    return int(sig_id)


def flag_unsigned(conn: Connection, older_than_minutes: int, now: datetime | None = None) -> int:
    """Flag approved slips still unsigned after the delay (each once); returns how many were flagged."""
    from datetime import timedelta

    now = now or utcnow()
    cutoff = now - timedelta(minutes=older_than_minutes)
    already = select(unsigned_alerts.c.transaction_id)
    rows = conn.execute(select(T.id, T.merchant_id, T.terminal_id, T.amount, T.rrn)
                        .where(unsigned_clause(), T.created_at <= cutoff, T.id.notin_(already))
                        .limit(5000)).mappings().all()  # fmt: skip
    for r in rows:
        conn.execute(unsigned_alerts.insert().values(transaction_id=r["id"], merchant_id=r["merchant_id"], flagged_at=now))
        audit(conn, actor="system:unsigned-check", action="transaction.unsigned_overdue", object_type="transaction",
              object_id=str(r["id"]), merchant_id=r["merchant_id"],
              detail=f"slip unsigned for more than {older_than_minutes} minutes (terminal {r['terminal_id']}, RRN {r['rrn']})",
              at=now)  # fmt: skip
    return len(rows)


def unsigned_list(conn: Connection, p: Principal, limit: int = 500) -> list[dict[str, Any]]:
    a = unsigned_alerts.c
    stmt = (
        select(*LIST_COLS, a.flagged_at)
        .select_from(transactions.outerjoin(unsigned_alerts, a.transaction_id == T.id))
        .where(unsigned_clause(), scope(T.merchant_id, p))
        .order_by(T.created_at.desc())
        .limit(limit)
    )
    return [dict(r) for r in conn.execute(stmt).mappings()]


def count_unsigned(conn: Connection, p: Principal) -> tuple[int, int]:
    total = conn.execute(select(func.count()).select_from(transactions)
                         .where(unsigned_clause(), scope(T.merchant_id, p))).scalar_one()  # fmt: skip
    overdue = conn.execute(
        select(func.count()).select_from(unsigned_alerts.join(transactions, T.id == unsigned_alerts.c.transaction_id))
        .where(unsigned_alerts.c.cleared_at.is_(None), T.signed.is_(False), scope(T.merchant_id, p))
    ).scalar_one()  # fmt: skip
    return int(total), int(overdue)


__all__ = ["approved_clause", "or_"]
