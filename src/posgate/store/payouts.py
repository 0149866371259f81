"""The merchant's money side (issue 11): settlement bank accounts, fees, payouts, statements.

Used the same way by the console (pages, with roles and maker-checker on top) and by
``posgate admin payouts ...``. Every change is audited in the caller's database transaction.

Theory of operation (docs/payouts.md has the whole story, docs/decisions.md P1 the fee rules):

* A **line** is one counted transaction of a merchant (an approved sale, void, refund, make-up
  row... that has a settlement side): its signed amount (+ debit, − credit), its fee (+ charged,
  − given back) and its net (amount − fee). Fees are computed per transaction from the fee rule
  of the card's kind (debit/credit/foreign by the issuer's card record, QR by entry mode 03x),
  in whole fen, half up, capped per transaction.
* A **payout** takes the settled lines not yet paid (terminal batches after their 0500
  settlement, console rows at once) and freezes them in ``payout_lines`` (a transaction is paid
  once). T+1: the business day ``value_date − settlement_days`` and any earlier unpaid line;
  D0: today's settled lines on the merchant's request, less the D0 fee. A total ≤ 0 is not paid:
  its lines stay unpaid and are carried into the next payout.
* The **balance** owed to a merchant at the end of day D is Σ net of its lines up to D − Σ D0
  fees − Σ payouts of business days up to D; a statement shows opening, lines, fees, payouts
  and closing, which add up cent for cent.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, and_, exists, func, insert, or_, select, update

from posgate.dialect.operations import OPERATIONS
from posgate.dialect.qr import is_qr_entry
from posgate.domain.response_codes import APPROVED
from posgate.store import schema as s
from posgate.store.admin import _audit, get_settings
from posgate.store.keyring import Keyring
from posgate.store.payouts_schema import bank_accounts, fee_rules, payout_files, payout_lines, payouts

T = s.transactions.c
P = payouts.c
L = payout_lines.c
B = bank_accounts.c

ACCOUNT_PURPOSE = b"bank_account"
CONSOLE_BATCH = "000000"  # rows the console writes (make-up entries, refunds): settled at once
DEAD = ("reversed", "declined")
CARD_KINDS = ("debit", "credit", "foreign", "qr")
FEE_KINDS = (*CARD_KINDS, "d0")
DEFAULT_ACQUIRER = "*"
# (rate in hundredths of a percent, cap in fen per transaction): the acquirer's defaults until it
# sets its own (merchant ``*``). Debit 0.50 % capped at ¥20 and QR 0.38 % as China's common MDR;
# credit is the merchant's own rate (``merchants.fee_rate_bp``) unless overridden.
DEFAULT_FEES: dict[str, tuple[int, int | None]] = {
    "debit": (50, 20_00), "credit": (60, None), "foreign": (150, None), "qr": (38, None), "d0": (5, None),
}  # fmt: skip
PAYOUT_STATUSES = ("pending", "held", "exported", "paid", "failed")
RETURN_STATUSES = ("paid", "failed", "retry")
FILE_HEADER = ["payout_ref", "value_date", "merchant_id", "account_name", "account_number", "bank_code", "bank_name",
               "amount", "currency", "purpose", "attempt"]  # fmt: skip
RETURN_HEADER = ["payout_ref", "status", "amount", "bank_ref", "reason"]


class PayoutError(ValueError):
    """A request that cannot be carried out; nothing was changed. ``message`` is an English
    msgid (the console translates it), ``fields`` its values."""

    def __init__(self, message: str, status: int = 400, **fields: Any) -> None:
        super().__init__(message.format(**fields) if fields else message)
        self.message = message
        self.status = status
        self.fields = fields


def _now() -> datetime:
    return datetime.now(UTC)


def timezone(conn: Connection) -> str:
    return get_settings(conn).get("timezone") or "Asia/Shanghai"


def business_today(conn: Connection, now: datetime | None = None) -> str:
    return (now or _now()).astimezone(ZoneInfo(timezone(conn))).date().isoformat()


def day_offset(day: str, days: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()


def check_day(day: str) -> str:
    try:
        return date.fromisoformat(day).isoformat()
    except (TypeError, ValueError):
        raise PayoutError("The date must be YYYY-MM-DD.") from None


# ------------------------------------------------------------------ the ledger's rules


def settlement_side(operation: str, processing_code: str | None) -> str:
    """``debit``, ``credit`` or ``""``: how a row counts in settlement totals (spec 9.1); make-up
    adjustments and annulments by their processing code."""
    if operation in ("adjustment", "annulment"):
        return "debit" if (processing_code or "").startswith("00") else "credit"
    op = OPERATIONS.get(operation)
    return op.settlement if op else ""


def counted_clause() -> ColumnElement[bool]:
    """Approved rows that still count (not reversed, not declined)."""
    return and_(T.response_code.in_(sorted(APPROVED)), T.status.notin_(DEAD))


def settled_clause() -> ColumnElement[bool]:
    """Rows whose batch the terminal has settled (0500), or console rows (no terminal batch)."""
    st = s.settlements.c
    return or_(T.batch_no == CONSOLE_BATCH, T.settlement_id.isnot(None),
               exists(select(st.id).where(st.terminal_id == T.terminal_id, st.batch_no == T.batch_no)))  # fmt: skip


_SIDED = sorted(name for name, op in OPERATIONS.items() if op.settlement) + ["adjustment", "annulment"]


# ------------------------------------------------------------------ fee rules


@dataclass(frozen=True)
class Rule:
    rate_bp: int
    cap: int | None
    source: str  # merchant | acquirer | merchant_rate | default

    def fee(self, amount: int) -> int:
        """The fee of one transaction of ``amount`` fen: half up to the fen, then the cap."""
        if amount <= 0:
            return 0
        f = (amount * self.rate_bp + 5000) // 10000
        return min(f, self.cap) if self.cap is not None else f


def effective_rules(conn: Connection, merchant_id: str) -> dict[str, Rule]:
    """The rule of every kind for ``merchant_id``: its override, else the acquirer's default
    (for credit: the merchant's own rate), else the built-in default."""
    rows = conn.execute(select(fee_rules).where(fee_rules.c.merchant_id.in_([merchant_id, DEFAULT_ACQUIRER]))).mappings().all()
    own = {r["kind"]: r for r in rows if r["merchant_id"] == merchant_id}
    acq = {r["kind"]: r for r in rows if r["merchant_id"] == DEFAULT_ACQUIRER}
    rate = conn.execute(select(s.merchants.c.fee_rate_bp).where(s.merchants.c.merchant_id == merchant_id)).scalar()
    out = {}
    for kind in FEE_KINDS:
        if kind in own:
            out[kind] = Rule(int(own[kind]["rate_bp"]), own[kind]["cap"], "merchant")
        elif kind == "credit" and rate is not None:
            out[kind] = Rule(int(rate), None, "merchant_rate")
        elif kind in acq:
            out[kind] = Rule(int(acq[kind]["rate_bp"]), acq[kind]["cap"], "acquirer")
        else:
            out[kind] = Rule(DEFAULT_FEES[kind][0], DEFAULT_FEES[kind][1], "default")
    return out


def parse_rate(text: str) -> int:
    """``"0.50"`` (percent) → 50 hundredths of a percent."""
    from decimal import Decimal, InvalidOperation

    try:
        d = Decimal(str(text).strip().rstrip("%").strip())
    except InvalidOperation:
        raise PayoutError("The rate is a percentage such as 0.50.") from None
    if d < 0 or d > 10 or (d * 100) != (d * 100).to_integral_value():
        raise PayoutError("The rate is a percentage such as 0.50.")
    return int(d * 100)


def set_fee_rule(conn: Connection, merchant_id: str, kind: str, rate_bp: int, cap: int | None, *, actor: str) -> None:
    if kind not in FEE_KINDS:
        raise PayoutError("Unknown card kind {kind}.", kind=kind)
    if merchant_id != DEFAULT_ACQUIRER and _merchant(conn, merchant_id) is None:
        raise PayoutError("Unknown merchant {mid}.", 404, mid=merchant_id)
    if not 0 <= rate_bp <= 1000 or (cap is not None and cap <= 0):
        raise PayoutError("The rate is a percentage such as 0.50.")
    old = conn.execute(select(fee_rules).where(fee_rules.c.merchant_id == merchant_id, fee_rules.c.kind == kind)).mappings().first()
    values = {"rate_bp": rate_bp, "cap": cap, "updated_by": actor[:64], "updated_at": _now()}
    if old is None:
        conn.execute(insert(fee_rules).values(merchant_id=merchant_id, kind=kind, **values))
    else:
        conn.execute(update(fee_rules).where(fee_rules.c.id == old["id"]).values(**values))
    _audit(conn, actor, "fee_rule.set", "fee_rule", f"{merchant_id}:{kind}", None if merchant_id == DEFAULT_ACQUIRER else merchant_id,
           before=None if old is None else {"rate_bp": old["rate_bp"], "cap": old["cap"]},
           after={"rate_bp": rate_bp, "cap": cap})  # fmt: skip


def remove_fee_rule(conn: Connection, merchant_id: str, kind: str, *, actor: str) -> bool:
    old = conn.execute(select(fee_rules).where(fee_rules.c.merchant_id == merchant_id, fee_rules.c.kind == kind)).mappings().first()
    if old is None:
        return False
    conn.execute(fee_rules.delete().where(fee_rules.c.id == old["id"]))
    _audit(conn, actor, "fee_rule.removed", "fee_rule", f"{merchant_id}:{kind}", None if merchant_id == DEFAULT_ACQUIRER else merchant_id,
           before={"rate_bp": old["rate_bp"], "cap": old["cap"]})  # fmt: skip
    return True


# ------------------------------------------------------------------ lines


def card_kind(row: Any, issuer_kinds: dict[str, str]) -> str:
    """``qr`` (22 = 03x), ``foreign`` (63.1 not CUP), else the issuer's record of the card
    (``debit`` / ``credit``); a card the issuer does not know pays the credit rate."""
    if is_qr_entry(row["entry_mode"]):
        return "qr"
    org = row["card_organisation"]
    if org and org != "CUP":
        return "foreign"
    kind = issuer_kinds.get(row["pan_hash"] or "")
    return kind if kind in ("debit", "credit") else "credit"


_LINE_COLS = (T.id, T.day, T.created_at, T.terminal_id, T.batch_no, T.stan, T.rrn, T.operation, T.processing_code, T.amount,
              T.pan_hash, T.pan_masked, T.card_organisation, T.entry_mode, T.original_id, T.source)  # fmt: skip


def _chunked(conn: Connection, build: Any, values: list[Any], size: int = 5000) -> list[Any]:
    """Rows of ``build(part)`` for ``values`` in parts: SQLite caps the bound parameters of a query."""
    out: list[Any] = []
    for i in range(0, len(values), size):
        out += conn.execute(build(values[i : i + size])).mappings().all()
    return out


def _lines_for(conn: Connection, merchant_id: str, rows: list[Any], rules: dict[str, Rule] | None = None) -> list[dict[str, Any]]:
    """Lines of ``rows``: frozen values for those paid already, computed for the others."""
    if not rows:
        return []
    rules = rules or effective_rules(conn, merchant_id)
    ids = [r["id"] for r in rows]
    frozen = {r["transaction_id"]: r for r in _chunked(conn, lambda part: select(payout_lines).where(L.transaction_id.in_(part)), ids)}
    orig_ids = sorted({r["original_id"] for r in rows if r["original_id"]})
    originals = {r["id"]: r for r in _chunked(conn, lambda part: select(*_LINE_COLS).where(T.id.in_(part)), orig_ids)}
    orig_fees = {r["transaction_id"]: int(r["fee"])
                 for r in _chunked(conn, lambda part: select(L.transaction_id, L.fee).where(L.transaction_id.in_(part)), orig_ids)}  # fmt: skip
    hashes = sorted({r["pan_hash"] for r in [*rows, *originals.values()] if r["pan_hash"]})
    kinds = {r["pan_hash"]: r["kind"]
             for r in _chunked(conn, lambda part: select(s.cards.c.pan_hash, s.cards.c.kind).where(s.cards.c.pan_hash.in_(part)), hashes)}  # fmt: skip
    out = []
    for r in rows:
        side = settlement_side(r["operation"], r["processing_code"])
        f = frozen.get(r["id"])
        if f is not None:
            amount, fee, kind, payout_id = int(f["amount"]), int(f["fee"]), f["card_kind"], f["payout_id"]
            rate_bp, cap = f["rate_bp"], f["cap"]
        else:
            amount = int(r["amount"]) if side == "debit" else -int(r["amount"])
            kind = card_kind(r, kinds)
            rule = rules[kind]
            rate_bp, cap, payout_id = rule.rate_bp, rule.cap, None
            fee = _fee(r, amount, side, rule, rules, originals, orig_fees, kinds)
        out.append({**dict(r), "side": side, "amount_signed": amount, "fee": fee, "net": amount - fee, "card_kind": kind,
                    "rate_bp": rate_bp, "cap": cap, "payout_id": payout_id})  # fmt: skip
    return out


def _fee(r: Any, amount: int, side: str, rule: Rule, rules: dict[str, Rule], originals: dict[int, Any],
         orig_fees: dict[int, int], kinds: dict[str, str]) -> int:  # fmt: skip
    """docs/decisions.md P1: a sale pays its fee; a void, completion void or annulment gives the
    original's fee back in full; a refund gives none back; a make-up adjustment moves the fee to
    what the corrected amount pays."""
    op = r["operation"]
    o = originals.get(r["original_id"]) if r["original_id"] else None
    if op in ("void", "completion_void", "annulment"):
        if o is None:
            return 0
        if o["id"] in orig_fees:
            return -orig_fees[o["id"]]
        return -rules[card_kind(o, kinds)].fee(int(o["amount"]))
    if op == "adjustment":
        base = int(o["amount"]) if o is not None else 0
        return rule.fee(max(base + amount, 0)) - rule.fee(base)
    if side == "debit":
        return rule.fee(int(r["amount"]))
    return 0


def lines(conn: Connection, merchant_id: str, day_from: str, day_to: str) -> list[dict[str, Any]]:
    """Every counted transaction of the merchant on those business days, oldest first."""
    rows = conn.execute(select(*_LINE_COLS).where(T.merchant_id == merchant_id, T.day >= day_from, T.day <= day_to,
                                                  counted_clause(), T.operation.in_(_SIDED))
                        .order_by(T.created_at, T.id)).mappings().all()  # fmt: skip
    return _lines_for(conn, merchant_id, list(rows))


def _unpaid_settled(conn: Connection, merchant_id: str, day_to: str) -> list[dict[str, Any]]:
    cond = [T.merchant_id == merchant_id, T.day <= day_to, counted_clause(), T.operation.in_(_SIDED), settled_clause(),
            ~exists(select(L.id).where(L.transaction_id == T.id))]  # fmt: skip
    rows = conn.execute(select(*_LINE_COLS).where(*cond).order_by(T.created_at, T.id)).mappings().all()
    return _lines_for(conn, merchant_id, list(rows))


def balance(conn: Connection, merchant_id: str, day: str) -> int:
    """What the merchant is owed at the end of business day ``day`` (fen; negative: it owes)."""
    frozen = conn.execute(select(func.coalesce(func.sum(L.amount - L.fee), 0))
                          .select_from(payout_lines.join(s.transactions, T.id == L.transaction_id))
                          .where(T.merchant_id == merchant_id, L.day <= day)).scalar_one()  # fmt: skip
    rows = conn.execute(select(*_LINE_COLS).where(T.merchant_id == merchant_id, T.day <= day, counted_clause(),
                                                  T.operation.in_(_SIDED), ~exists(select(L.id).where(L.transaction_id == T.id)))
                        ).mappings().all()  # fmt: skip
    loose = sum(x["net"] for x in _lines_for(conn, merchant_id, list(rows)))
    paid = conn.execute(select(func.coalesce(func.sum(P.amount + P.d0_fee), 0))
                        .where(P.merchant_id == merchant_id, P.business_day <= day)).scalar_one()  # fmt: skip
    return int(frozen) + int(loose) - int(paid)


# ------------------------------------------------------------------ bank accounts


def mask_account(number: str) -> str:
    """``6222020200112233445`` → ``6222***********3445``: the first and last four digits."""
    if len(number) <= 8:
        return "*" * max(len(number) - 4, 0) + number[-4:]
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


def _merchant(conn: Connection, merchant_id: str) -> Any:
    return conn.execute(select(s.merchants).where(s.merchants.c.merchant_id == merchant_id)).mappings().first()


def _check_account(account_number: str, bank_name: str, account_name: str, bank_code: str) -> tuple[str, str, str, str]:
    number = "".join(str(account_number or "").split())
    if not number.isdigit() or not 8 <= len(number) <= 32:
        raise PayoutError("The account number must be 8 to 32 digits.")
    code = str(bank_code or "").strip()
    if not (code.isdigit() and len(code) == 12):
        raise PayoutError("The bank code (CNAPS) must be 12 digits.")
    bank, name = str(bank_name or "").strip(), str(account_name or "").strip()
    if not bank or not name or len(bank) > 80 or len(name) > 80:
        raise PayoutError("The bank name and the account name are required (at most 80 characters).")
    return number, bank, name, code


def propose_bank_account(conn: Connection, keyring: Keyring, merchant_id: str, *, account_number: str, bank_name: str,
                         account_name: str, bank_code: str, reason: str, actor: str, now: datetime | None = None) -> int:  # fmt: skip
    """A new settlement account, ``pending`` until a second person approves it."""
    if _merchant(conn, merchant_id) is None:
        raise PayoutError("Unknown merchant {mid}.", 404, mid=merchant_id)
    number, bank, name, code = _check_account(account_number, bank_name, account_name, bank_code)
    reason = str(reason or "").strip()
    if not reason:
        raise PayoutError("A reason is required; it is kept in the audit log.")
    pending = conn.execute(select(B.id).where(B.merchant_id == merchant_id, B.status == "pending")).scalar()
    if pending is not None:
        raise PayoutError("Change #{id} of this account is waiting for a decision already.", 409, id=pending)
    now = now or _now()
    masked = mask_account(number)
    cid = conn.execute(insert(bank_accounts).values(
        merchant_id=merchant_id, account_enc=keyring.encrypt(number.encode("ascii"), ACCOUNT_PURPOSE), account_masked=masked,
        bank_name=bank, account_name=name, bank_code=code, status="pending", reason=reason[:2000], proposed_by=actor[:64],
        proposed_at=now).returning(B.id)).scalar_one()  # fmt: skip
    _audit(conn, actor, "bank_account.proposed", "bank_account", str(cid), merchant_id,
           after={"account": masked, "bank_name": bank, "account_name": name, "bank_code": code, "reason": reason})  # fmt: skip
    return int(cid)


def decide_bank_account(conn: Connection, change_id: int, approve: bool, *, actor: str, note: str = "",
                        now: datetime | None = None) -> str:  # fmt: skip
    """Approve (the account becomes active, the previous one ``replaced``, failed and held
    payouts go back to ``pending``) or reject. Never by the person who proposed it."""
    row = conn.execute(select(bank_accounts).where(B.id == change_id)).mappings().first()
    if row is None:
        raise PayoutError("Not found.", 404)
    if row["status"] != "pending":
        raise PayoutError("This change was decided already.", 409)
    if row["proposed_by"] == actor:
        raise PayoutError("You cannot decide your own proposal: a second person must (maker-checker).", 403)
    note = str(note or "").strip()
    if not approve and not note:
        raise PayoutError("Say why you reject it; the proposer will read it.")
    now = now or _now()
    mid = row["merchant_id"]
    before = active_account(conn, mid)
    status = "active" if approve else "rejected"
    # Decided once: of two people approving at the same moment, the second finds it decided.
    done = conn.execute(update(bank_accounts).where(B.id == change_id, B.status == "pending").values(
        status=status, decided_by=actor[:64], decided_at=now, decision_note=note or None))  # fmt: skip
    if done.rowcount != 1:
        raise PayoutError("This change was decided already.", 409)
    if approve:
        conn.execute(update(bank_accounts).where(B.merchant_id == mid, B.status == "active", B.id != change_id)
                     .values(status="replaced"))  # fmt: skip
    _audit(conn, actor, f"bank_account.{'approved' if approve else 'rejected'}", "bank_account", str(change_id), mid,
           before={"account": before["account_masked"]} if before else None,
           after={"status": status, "account": row["account_masked"], "note": note or None})  # fmt: skip
    if approve:
        for p in conn.execute(select(P.id, P.status).where(P.merchant_id == mid, P.status.in_(["failed", "held"]))).all():
            _set_status(conn, p.id, "pending", actor, "payout.released", reason=None,
                        detail=f"bank account change #{change_id} approved", now=now)  # fmt: skip
    return status


def provision_account(conn: Connection, keyring: Keyring, merchant_id: str, *, account_number: str, bank_name: str,
                      account_name: str, bank_code: str, actor: str) -> None:  # fmt: skip
    """An approved account at once (demo provisioning and ``posgate admin``, audited as such)."""
    number, bank, name, code = _check_account(account_number, bank_name, account_name, bank_code)
    now = _now()
    masked = mask_account(number)
    conn.execute(update(bank_accounts).where(B.merchant_id == merchant_id, B.status == "active").values(status="replaced"))
    cid = conn.execute(insert(bank_accounts).values(
        merchant_id=merchant_id, account_enc=keyring.encrypt(number.encode("ascii"), ACCOUNT_PURPOSE), account_masked=masked,
        bank_name=bank, account_name=name, bank_code=code, status="active", reason="", proposed_by=actor[:64],
        proposed_at=now, decided_by=actor[:64], decided_at=now).returning(B.id)).scalar_one()  # fmt: skip
    _audit(conn, actor, "bank_account.provisioned", "bank_account", str(cid), merchant_id,
           after={"account": masked, "bank_name": bank, "account_name": name, "bank_code": code})  # fmt: skip


_ACCOUNT_COLS = [c for c in bank_accounts.c if c.name != "account_enc"]


def active_account(conn: Connection, merchant_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(*_ACCOUNT_COLS).where(B.merchant_id == merchant_id, B.status == "active")).mappings().first()
    return dict(row) if row else None


def account_changes(conn: Connection, merchant_id: str | None = None, status: str = "") -> list[dict[str, Any]]:
    cond = []
    if merchant_id:
        cond.append(B.merchant_id == merchant_id)
    if status:
        cond.append(B.status == status)
    return [dict(r) for r in conn.execute(select(*_ACCOUNT_COLS).where(*cond).order_by(B.id.desc()).limit(200)).mappings()]


def account_change(conn: Connection, change_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(*_ACCOUNT_COLS).where(B.id == change_id)).mappings().first()
    return dict(row) if row else None


# ------------------------------------------------------------------ payouts


def _hold_reason(conn: Connection, merchant_id: str) -> str | None:
    m = _merchant(conn, merchant_id)
    if m is None or m["status"] != "active":
        return "merchant_suspended"
    if active_account(conn, merchant_id) is None:
        return "no_bank_account"
    return None


def _set_status(conn: Connection, payout_id: int, status: str, actor: str, action: str, *, reason: str | None,
                detail: str | None = None, now: datetime | None = None, **extra: Any) -> None:  # fmt: skip
    old = conn.execute(select(P.status, P.merchant_id, P.reason).where(P.id == payout_id)).one()
    conn.execute(update(payouts).where(P.id == payout_id).values(status=status, reason=reason, updated_at=now or _now(), **extra))
    _audit(conn, actor, action, "payout", str(payout_id), old.merchant_id, before={"status": old.status},
           after={"status": status, "reason": reason, **extra}, detail=detail)  # fmt: skip


def _create(conn: Connection, merchant_id: str, kind: str, business_day: str, value_date: str, ls: list[dict[str, Any]],
            d0_fee: int, actor: str, now: datetime) -> dict[str, Any]:  # fmt: skip
    gross = sum(x["amount_signed"] for x in ls)
    fees = sum(x["fee"] for x in ls) + d0_fee
    reason = _hold_reason(conn, merchant_id)
    values = dict(merchant_id=merchant_id, kind=kind, business_day=business_day, value_date=value_date, gross=gross, fees=fees,
                  d0_fee=d0_fee, amount=gross - fees, status="held" if reason else "pending", reason=reason, attempts=0,
                  created_by=actor[:64], created_at=now, updated_at=now)  # fmt: skip
    pid = int(conn.execute(insert(payouts).values(**values).returning(P.id)).scalar_one())
    conn.execute(insert(payout_lines), [
        {"payout_id": pid, "transaction_id": x["id"], "day": x["day"], "amount": x["amount_signed"], "fee": x["fee"],
         "card_kind": x["card_kind"], "rate_bp": x["rate_bp"], "cap": x["cap"]} for x in ls])  # fmt: skip
    _audit(conn, actor, "payout.built", "payout", str(pid), merchant_id,
           after={"kind": kind, "business_day": business_day, "value_date": value_date, "lines": len(ls), "gross": gross,
                  "fees": fees, "amount": gross - fees, "status": values["status"], "reason": reason})  # fmt: skip
    return {"id": pid, **values, "lines": len(ls)}


@dataclass
class BuildResult:
    value_date: str
    built: list[dict[str, Any]]
    carried: list[dict[str, Any]]  # merchants whose unpaid total is ≤ 0: nothing paid, lines carried
    existing: list[str]  # merchants whose payout for that day exists already


def build_payouts(conn: Connection, value_date: str, *, actor: str, now: datetime | None = None) -> BuildResult:
    """T+1 payouts for ``value_date``: per merchant, the settled unpaid lines of business day
    ``value_date − settlement_days`` and before. Running it again builds nothing new."""
    value_date = check_day(value_date)
    now = now or _now()
    result = BuildResult(value_date, [], [], [])
    for m in conn.execute(select(s.merchants.c.merchant_id, s.merchants.c.settlement_days).order_by(s.merchants.c.merchant_id)).all():
        bday = day_offset(value_date, -int(m.settlement_days or 1))
        if conn.execute(select(P.id).where(P.merchant_id == m.merchant_id, P.kind == "t1", P.business_day == bday)).first():
            result.existing.append(m.merchant_id)
            continue
        ls = _unpaid_settled(conn, m.merchant_id, bday)
        if not ls:
            continue
        total = sum(x["net"] for x in ls)
        if total <= 0:
            result.carried.append({"merchant_id": m.merchant_id, "business_day": bday, "lines": len(ls), "amount": total})
            continue
        result.built.append(_create(conn, m.merchant_id, "t1", bday, value_date, ls, 0, actor, now))
    return result


def d0_quote(conn: Connection, merchant_id: str, now: datetime | None = None) -> dict[str, Any]:
    """What a same-day payout would pay now: today's settled, unpaid lines less fees and the D0 fee."""
    today = business_today(conn, now)
    ls = _unpaid_settled(conn, merchant_id, today)  # today's, and earlier ones still unpaid (a carried debt)
    base = sum(x["net"] for x in ls)
    d0_fee = effective_rules(conn, merchant_id)["d0"].fee(base)
    requested = conn.execute(select(P.id).where(P.merchant_id == merchant_id, P.kind == "d0", P.business_day == today)).scalar()
    return {"day": today, "lines": ls, "count": len(ls), "gross": sum(x["amount_signed"] for x in ls),
            "fees": sum(x["fee"] for x in ls), "base": base, "d0_fee": d0_fee, "amount": base - d0_fee,
            "requested": requested, "hold_reason": _hold_reason(conn, merchant_id)}  # fmt: skip


def request_d0(conn: Connection, merchant_id: str, *, actor: str, now: datetime | None = None) -> dict[str, Any]:
    """A same-day (D0) payout of today's settled amount, at the D0 fee; value date today."""
    if _merchant(conn, merchant_id) is None:
        raise PayoutError("Unknown merchant {mid}.", 404, mid=merchant_id)
    now = now or _now()
    q = d0_quote(conn, merchant_id, now)
    if q["requested"] is not None:
        raise PayoutError("A same-day payout was requested today already (#{id}).", 409, id=q["requested"])
    if q["hold_reason"] == "no_bank_account":
        raise PayoutError("No approved settlement bank account: add one first.", 409)
    if q["hold_reason"]:
        raise PayoutError("The merchant is suspended: payouts are on hold.", 409)
    if q["amount"] <= 0:
        raise PayoutError("Nothing settled today is left to pay out: settle the terminals' batches first.", 409)
    return _create(conn, merchant_id, "d0", q["day"], q["day"], q["lines"], q["d0_fee"], actor, now)


def retry_payout(conn: Connection, payout_id: int, *, actor: str, merchant_id: str | None = None) -> None:
    """A failed payout back to ``pending``: it goes into the next payout file."""
    row = get_payout(conn, payout_id, merchant_id)
    if row is None:
        raise PayoutError("Not found.", 404)
    if row["status"] != "failed":
        raise PayoutError("Only a failed payout can be retried.", 409)
    _set_status(conn, payout_id, "pending", actor, "payout.retried", reason=row["reason"], detail="retry requested")


def get_payout(conn: Connection, payout_id: int, merchant_id: str | None = None) -> dict[str, Any] | None:
    cond = [P.id == payout_id]
    if merchant_id:
        cond.append(P.merchant_id == merchant_id)
    row = conn.execute(select(payouts).where(*cond)).mappings().first()
    return dict(row) if row else None


def payout_lines_of(conn: Connection, payout_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(select(*_LINE_COLS).select_from(payout_lines.join(s.transactions, T.id == L.transaction_id))
                        .where(L.payout_id == payout_id).order_by(T.created_at, T.id)).mappings().all()  # fmt: skip
    pay = get_payout(conn, payout_id)
    return _lines_for(conn, pay["merchant_id"], list(rows)) if pay else []


def list_payouts(conn: Connection, merchant_id: str | None = None, status: str = "", limit: int = 200) -> list[dict[str, Any]]:
    cond = []
    if merchant_id:
        cond.append(P.merchant_id == merchant_id)
    if status:
        cond.append(P.status == status)
    rows = conn.execute(select(payouts).where(*cond).order_by(P.value_date.desc(), P.id.desc()).limit(limit)).mappings()
    return [dict(r) for r in rows]


def latest_payout(conn: Connection, merchant_id: str) -> dict[str, Any] | None:
    rows = list_payouts(conn, merchant_id, limit=1)
    return rows[0] if rows else None


def count_failed_payouts(session: Connection, merchant_id: str | None = None) -> int:
    """Payouts the bank refused and nobody retried yet (for notices): all, or one merchant's."""
    cond = [P.status == "failed"]
    if merchant_id:
        cond.append(P.merchant_id == merchant_id)
    return int(session.execute(select(func.count()).select_from(payouts).where(*cond)).scalar_one())


# ------------------------------------------------------------------ the bank's files


def payout_ref(payout_id: int) -> str:
    return f"PO{payout_id:010d}"


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def _fen(text: str) -> int:
    t = str(text or "").strip()
    whole, dot, frac = t.partition(".")
    if not whole.isdigit() or (dot and not (frac.isdigit() and len(frac) == 2)):
        raise ValueError(t)
    return int(whole) * 100 + (int(frac) if dot else 0)


@dataclass
class ExportResult:
    file_id: int
    name: str
    content: bytes
    count: int
    total: int
    held: list[int]


def export_payouts(conn: Connection, keyring: Keyring, value_date: str, *, actor: str, now: datetime | None = None) -> ExportResult | None:
    """The payout file for the bank: every ``pending`` (and no longer held) payout with a value
    date up to ``value_date``, with the account number in clear (the only place it leaves the
    database decrypted). None when there is nothing to send."""
    value_date = check_day(value_date)
    now = now or _now()
    # Locked (PostgreSQL) so that two exports at once cannot both send a payout; SQLite writers are serial.
    rows = conn.execute(select(payouts).where(P.status.in_(["pending", "held"]), P.value_date <= value_date)
                        .order_by(P.value_date, P.id).with_for_update()).mappings().all()  # fmt: skip
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(FILE_HEADER)
    chosen: list[tuple[Any, dict[str, Any]]] = []
    held = []
    for p in rows:
        reason = _hold_reason(conn, p["merchant_id"])
        if reason:
            if p["status"] != "held" or p["reason"] != reason:
                _set_status(conn, p["id"], "held", actor, "payout.held", reason=reason, now=now)
            held.append(int(p["id"]))
            continue
        acct = active_account(conn, p["merchant_id"])
        assert acct is not None
        chosen.append((p, acct))
    if not chosen:
        return None
    for p, acct in chosen:
        blob = conn.execute(select(B.account_enc).where(B.id == acct["id"])).scalar_one()
        number = keyring.decrypt(blob, ACCOUNT_PURPOSE).decode("ascii")
        purpose = f"POS结算款 {p['business_day']}" + (" D0" if p["kind"] == "d0" else "")
        w.writerow([payout_ref(p["id"]), p["value_date"], p["merchant_id"], acct["account_name"], number, acct["bank_code"],
                    acct["bank_name"], _yuan(int(p["amount"])), "CNY", purpose, int(p["attempts"]) + 1])  # fmt: skip
    content = out.getvalue().encode("utf-8")
    total = sum(int(p["amount"]) for p, _ in chosen)
    fid = int(conn.execute(insert(payout_files).values(
        name="", value_date=value_date, at=now, created_by=actor[:64], count=len(chosen), total=total,
        sha256=hashlib.sha256(content).hexdigest()).returning(payout_files.c.id)).scalar_one())  # fmt: skip
    name = f"posgate-payouts-{value_date}-{fid:04d}.csv"
    conn.execute(update(payout_files).where(payout_files.c.id == fid).values(name=name))
    for p, acct in chosen:
        _set_status(conn, p["id"], "exported", actor, "payout.exported", reason=None, now=now, detail=name, file_id=fid,
                    bank_account_id=acct["id"], attempts=int(p["attempts"]) + 1)  # fmt: skip
    _audit(conn, actor, "payout_file.written", "payout_file", str(fid), None,
           after={"name": name, "count": len(chosen), "total": total, "sha256": hashlib.sha256(content).hexdigest()})  # fmt: skip
    return ExportResult(fid, name, content, len(chosen), total, held)


def import_return(conn: Connection, content: bytes, *, actor: str, now: datetime | None = None) -> list[dict[str, Any]]:
    """The bank's return file: each row marks its payout ``paid``, ``failed`` (held out of the
    files with the bank's reason until retried or a new account is approved) or ``retry`` (back
    to ``pending``: in the next file). The whole file is checked first; one bad row and nothing
    changes."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PayoutError("The return file is not UTF-8 text.") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [h for h in ("payout_ref", "status", "amount") if h not in (reader.fieldnames or [])]
    if missing:
        raise PayoutError("The return file lacks the columns {cols}.", cols=", ".join(missing))
    plan: list[tuple[dict[str, Any], str, str, str]] = []
    seen: set[int] = set()
    skipped = []
    for n, row in enumerate(reader, start=2):
        ref = (row.get("payout_ref") or "").strip()
        status = (row.get("status") or "").strip().lower()
        reason = (row.get("reason") or "").strip()[:500]
        bank_ref = (row.get("bank_ref") or "").strip()[:40]
        if not (ref.startswith("PO") and ref[2:].isdigit()):
            raise PayoutError("Line {n}: {ref} is not a payout reference.", n=n, ref=ref)
        pid = int(ref[2:])
        if pid in seen:
            raise PayoutError("Line {n}: {ref} appears twice.", n=n, ref=ref)
        seen.add(pid)
        p = get_payout(conn, pid)
        if p is None:
            raise PayoutError("Line {n}: no payout {ref}.", n=n, ref=ref)
        if status not in RETURN_STATUSES:
            raise PayoutError("Line {n}: the status must be paid, failed or retry.", n=n)
        try:
            amount = _fen(row.get("amount") or "")
        except ValueError:
            raise PayoutError("Line {n}: the amount must be in yuan with two decimals.", n=n) from None
        if amount != int(p["amount"]):
            raise PayoutError("Line {n}: {ref} was sent for {sent}, the bank returns {got}.", n=n, ref=ref,
                              sent=_yuan(int(p["amount"])), got=_yuan(amount))  # fmt: skip
        if status != "paid" and not reason:
            raise PayoutError("Line {n}: a failed payout needs the bank's reason.", n=n)
        if status == "paid" and p["status"] == "paid":
            skipped.append({"id": pid, "ref": ref, "status": "paid", "already": True})
            continue
        if p["status"] != "exported":
            raise PayoutError("Line {n}: {ref} is not waiting for the bank's answer.", n=n, ref=ref)
        plan.append((p, status, reason, bank_ref))
    now = now or _now()
    done = []
    for p, status, reason, bank_ref in plan:
        if status == "paid":
            _set_status(conn, p["id"], "paid", actor, "payout.paid", reason=None, now=now, bank_ref=bank_ref or None)
        elif status == "failed":
            _set_status(conn, p["id"], "failed", actor, "payout.failed", reason=reason, now=now, bank_ref=bank_ref or None)
        else:
            _set_status(conn, p["id"], "pending", actor, "payout.retried", reason=reason, now=now, detail="the bank asks to send it again")
        done.append({"id": p["id"], "ref": payout_ref(p["id"]), "status": "pending" if status == "retry" else status,
                     "reason": reason or None})  # fmt: skip
    return done + skipped


# ------------------------------------------------------------------ statements


def month_bounds(month: str) -> tuple[str, str]:
    try:
        first = date.fromisoformat(f"{month}-01")
    except (TypeError, ValueError):
        raise PayoutError("The month must be YYYY-MM.") from None
    nxt = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first.isoformat(), (nxt - timedelta(days=1)).isoformat()


def statement(conn: Connection, merchant_id: str, day_from: str, day_to: str) -> dict[str, Any]:
    """A merchant's statement for business days ``day_from``..``day_to``: opening balance, every
    line (transaction, refund, void, make-up entry, each with its fee), the D0 fees and payouts
    of those days, and the closing balance: closing = opening + Σ net − Σ D0 fees − Σ payouts."""
    m = _merchant(conn, merchant_id)
    if m is None:
        raise PayoutError("Unknown merchant {mid}.", 404, mid=merchant_id)
    day_from, day_to = check_day(day_from), check_day(day_to)
    opening = balance(conn, merchant_id, day_offset(day_from, -1))
    ls = lines(conn, merchant_id, day_from, day_to)
    pays = [dict(r) for r in conn.execute(select(payouts).where(P.merchant_id == merchant_id, P.business_day >= day_from,
                                                                 P.business_day <= day_to).order_by(P.business_day, P.id)).mappings()]  # fmt: skip
    net = sum(x["net"] for x in ls)
    d0 = sum(int(p["d0_fee"]) for p in pays)
    paid = sum(int(p["amount"]) for p in pays)
    return {
        "merchant_id": merchant_id, "merchant_name": m["name"], "merchant_name_en": m["name_en"], "day_from": day_from,
        "day_to": day_to, "opening": opening, "lines": ls, "payouts": pays,
        "sales": sum(x["amount_signed"] for x in ls if x["amount_signed"] > 0),
        "credits": sum(x["amount_signed"] for x in ls if x["amount_signed"] < 0),
        "fees": sum(x["fee"] for x in ls) + d0, "d0_fees": d0, "net": net - d0, "paid": paid,
        "closing": opening + net - d0 - paid, "account": active_account(conn, merchant_id),
    }  # fmt: skip
