"""Payouts, settlement bank accounts, fee rules and statements as the console shows them.

The business rules live in :mod:`posgate.store.payouts` (shared with ``posgate admin
payouts``); this module adds who may do what, scoping to the principal's merchant, and the
statement's CSV and PDF.

* A bank-account change is maker-checker like make-up entries and refunds: a merchant
  administrator or the acquirer's staff propose it, the acquirer's staff (who check the account
  papers) approve it, never the proposer (``makeup._check_decider``).
* The account number is shown masked everywhere; only the payout file carries it in clear.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, select

from posgate.console.auth import ACQUIRER_ADMIN, MERCHANT_ADMIN, SUPPORT, Principal
from posgate.console.fmt import fmt_time, yuan
from posgate.console.ledger import OPERATION_NAMES
from posgate.console.makeup import _check_decider
from posgate.console.txns import ConsoleError, NotFound
from posgate.store import payouts as core
from posgate.store.keyring import Keyring
from posgate.store.schema import merchants

BANK_PROPOSERS = frozenset({MERCHANT_ADMIN, ACQUIRER_ADMIN, SUPPORT})
BANK_APPROVERS = frozenset({ACQUIRER_ADMIN, SUPPORT})
D0_REQUESTERS = frozenset({MERCHANT_ADMIN, ACQUIRER_ADMIN})


@contextmanager
def translated() -> Iterator[None]:
    """A refusal of the store (``PayoutError``) as the console's error, translated on the page."""
    try:
        yield
    except core.PayoutError as e:
        if e.status == 404:
            raise NotFound() from None
        raise ConsoleError(e.message, e.status, **e.fields) from None


def merchant_of(conn: Connection, p: Principal, merchant_id: str | None) -> str:
    """The merchant a page is about: a merchant user's own, or the one an acquirer user chose
    (the first merchant when none). Another merchant's id is "not found"."""
    if not p.is_acquirer:
        if not p.merchant_id or (merchant_id and merchant_id != p.merchant_id):
            raise NotFound()
        return p.merchant_id
    if merchant_id:
        if conn.execute(select(merchants.c.id).where(merchants.c.merchant_id == merchant_id)).first() is None:
            raise NotFound()
        return merchant_id
    first = conn.execute(select(merchants.c.merchant_id).order_by(merchants.c.merchant_id)).scalar()
    if first is None:
        raise NotFound()
    return str(first)


def merchant_ids(conn: Connection, p: Principal) -> list[str]:
    if not p.is_acquirer:
        return [p.merchant_id] if p.merchant_id else []
    return list(conn.execute(select(merchants.c.merchant_id).order_by(merchants.c.merchant_id)).scalars())


def propose_account(conn: Connection, keyring: Keyring | None, p: Principal, merchant_id: str, form: dict[str, Any]) -> int:
    if p.role not in BANK_PROPOSERS:
        raise ConsoleError("Your role does not allow this page or action.", 403)
    if keyring is None:
        raise ConsoleError("The console has no master key here; the account number cannot be stored encrypted.", 409)
    with translated():
        return core.propose_bank_account(
            conn, keyring, merchant_id, account_number=str(form.get("account_number", "")),
            bank_name=str(form.get("bank_name", "")), account_name=str(form.get("account_name", "")),
            bank_code=str(form.get("bank_code", "")), reason=str(form.get("reason", "")), actor=p.username)  # fmt: skip


def decide_account(conn: Connection, p: Principal, change_id: int, approve: bool, note: str) -> dict[str, Any]:
    change = core.account_change(conn, change_id)
    if change is None or (not p.is_acquirer and change["merchant_id"] != p.merchant_id):
        raise NotFound()
    if change["status"] != "pending":
        raise ConsoleError("This change was decided already.", 409)
    _check_decider(p, change["proposed_by"], BANK_APPROVERS)
    with translated():
        core.decide_bank_account(conn, change_id, approve, actor=p.username, note=note)
    return change


def request_d0(conn: Connection, p: Principal, merchant_id: str) -> dict[str, Any]:
    if p.role not in D0_REQUESTERS:
        raise ConsoleError("Your role does not allow this page or action.", 403)
    with translated():
        return core.request_d0(conn, merchant_id, actor=p.username)


def retry(conn: Connection, p: Principal, payout_id: int) -> None:
    with translated():
        core.retry_payout(conn, payout_id, actor=p.username, merchant_id=None if p.is_acquirer else p.merchant_id)


def payout(conn: Connection, p: Principal, payout_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    row = core.get_payout(conn, payout_id, None if p.is_acquirer else (p.merchant_id or "-"))
    if row is None:
        raise NotFound()
    return row, core.payout_lines_of(conn, payout_id)


def set_fee(conn: Connection, p: Principal, form: dict[str, Any]) -> None:
    mid = str(form.get("merchant_id", "")).strip() or core.DEFAULT_ACQUIRER
    kind = str(form.get("kind", ""))
    with translated():
        if form.get("action") == "remove":
            core.remove_fee_rule(conn, mid, kind, actor=p.username)
            return
        rate = core.parse_rate(str(form.get("rate", "")))
        cap_text = str(form.get("cap", "")).strip()
        try:
            from posgate.console.fmt import parse_yuan

            cap = parse_yuan(cap_text) if cap_text else None
        except ValueError:
            raise ConsoleError("The amount is not valid: use yuan, e.g. 12.34.") from None
        core.set_fee_rule(conn, mid, kind, rate, cap, actor=p.username)


def statement(conn: Connection, p: Principal, merchant_id: str | None, day: str, month: str) -> dict[str, Any]:
    mid = merchant_of(conn, p, merchant_id)
    with translated():
        if month:
            day_from, day_to = core.month_bounds(month)
        else:
            day_from = day_to = core.check_day(day)
        st = core.statement(conn, mid, day_from, day_to)
    st["month"] = month
    return st


# ------------------------------------------------------------------ CSV and PDF


def statement_rows(st: dict[str, Any], tz: str, lang: str, _: Callable[..., str], label: Callable[[str, object], str]) -> list[dict[str, Any]]:
    """The statement as rows, the same for the CSV and the PDF: opening balance, each line, each
    D0 fee and payout, closing balance. Σ net of every row but the last = the closing balance."""
    zh = lang == "zh_CN"

    def op_name(op: str) -> str:
        return OPERATION_NAMES.get(op, (op, op))[0 if zh else 1]

    rows: list[dict[str, Any]] = [{"kind": "opening", "type": _("Opening balance"), "net": st["opening"]}]
    for x in st["lines"]:
        rows.append({
            "kind": "line", "day": x["day"], "time": fmt_time(x["created_at"], tz), "terminal_id": x["terminal_id"],
            "voucher": x["stan"], "reference": x["rrn"] or "", "type": op_name(x["operation"]),
            "source": label("source", x["source"]), "card": x["pan_masked"] or "", "card_kind": label("card_kind", x["card_kind"]),
            "amount": x["amount_signed"], "fee": x["fee"], "net": x["net"], "payout": core.payout_ref(x["payout_id"]) if x["payout_id"] else "",
        })  # fmt: skip
    for pay in st["payouts"]:
        ref = core.payout_ref(pay["id"])
        if pay["d0_fee"]:
            rows.append({"kind": "d0_fee", "day": pay["business_day"], "type": _("Same-day (D0) payout fee"), "fee": int(pay["d0_fee"]),
                         "net": -int(pay["d0_fee"]), "payout": ref})  # fmt: skip
        rows.append({"kind": "payout", "day": pay["business_day"], "type": _("Payout to the bank account"),
                     "amount": -int(pay["amount"]), "net": -int(pay["amount"]), "payout": ref,
                     "status": label("payout_status", pay["status"]), "value_date": pay["value_date"]})  # fmt: skip
    rows.append({"kind": "closing", "type": _("Closing balance"), "net": st["closing"]})
    return rows


CSV_COLUMNS = ["line", "business_day", "time", "terminal_id", "voucher", "reference", "type", "source", "card", "card_kind",
               "amount", "fee", "net", "payout", "payout_status"]  # fmt: skip


def _y(fen: Any) -> str:
    return "" if fen is None or fen == "" else yuan(int(fen)).replace(",", "")


def statement_csv(st: dict[str, Any], tz: str, lang: str, _: Callable[..., str], label: Callable[[str, object], str]) -> str:
    """Stable English column names (for spreadsheets and scripts), values in the reader's
    language, amounts in yuan with two decimals, card numbers masked; UTF-8 with a BOM."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(CSV_COLUMNS)
    for n, r in enumerate(statement_rows(st, tz, lang, _, label), start=1):
        w.writerow([n, r.get("day", ""), r.get("time", ""), r.get("terminal_id", ""), r.get("voucher", ""), r.get("reference", ""),
                    r["type"], r.get("source", ""), r.get("card", ""), r.get("card_kind", ""), _y(r.get("amount")),
                    _y(r.get("fee")), _y(r.get("net")), r.get("payout", ""), r.get("status", "")])  # fmt: skip
    return "\ufeff" + out.getvalue()


def statement_pdf(st: dict[str, Any], tz: str, lang: str, _: Callable[..., str], label: Callable[[str, object], str]) -> bytes:
    """A4, drawn like the slips (``posgate.receipt.pdf``): CJK runs in reportlab's built-in
    STSong-Light, the rest (digits, card masks, English) in Helvetica, so amounts line up and
    text extraction (pdftotext) reads the Latin runs."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas

    from posgate.receipt.pdf import _draw, string_width

    zh = lang == "zh_CN"
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=True)
    period = st["month"] or st["day_from"]
    c.setTitle(f"statement {st['merchant_id']} {period}")
    w, h = A4
    left, right = 15 * mm, w - 15 * mm
    y = h - 20 * mm

    def text(x: float, s: str, size: float = 9, align: str = "left") -> None:
        _draw(c, x - string_width(s, size) if align == "right" else x, y, s, size)

    title = _("Monthly statement") if st["month"] else _("Daily statement")
    text(left, title, 16)
    c.setFillColor(colors.grey)
    text(right, "posgate", 8, "right")
    c.setFillColor(colors.black)
    y -= 10 * mm
    name = st["merchant_name"] if zh else (st["merchant_name_en"] or st["merchant_name"])
    acct = st["account"]
    summary = [
        (_("Merchant"), f"{name}  {st['merchant_id']}"),
        (_("Period"), st["day_from"] if st["day_from"] == st["day_to"] else f"{st['day_from']} – {st['day_to']}"),
        (_("Settlement account"), f"{acct['bank_name']}  {acct['account_masked']}" if acct else "—"),
        (_("Opening balance"), yuan(st["opening"])), (_("Sales"), yuan(st["sales"])), (_("Refunds and voids"), yuan(st["credits"])),
        (_("Fees"), yuan(-st["fees"])), (_("Paid out"), yuan(-st["paid"])), (_("Closing balance"), yuan(st["closing"])),
    ]  # fmt: skip
    for k, v in summary:
        text(left, k, 10)
        text(left + 40 * mm, v, 10)
        y -= 6 * mm
    y -= 4 * mm
    cols = [(left, _("Business day"), "left"), (left + 22 * mm, _("Time"), "left"), (left + 40 * mm, _("Type"), "left"),
            (left + 80 * mm, _("Card"), "left"), (left + 135 * mm, _("Amount"), "right"), (left + 155 * mm, _("Fee"), "right"),
            (right, _("Net"), "right")]  # fmt: skip

    def head() -> None:
        nonlocal y
        for x, t, a in cols:
            text(x, t, 8, a)
        y -= 2 * mm
        c.line(left, y, right, y)
        y -= 5 * mm

    head()
    for r in statement_rows(st, tz, lang, _, label):
        if y < 20 * mm:
            c.showPage()
            y = h - 20 * mm
            head()
        vals = [r.get("day", ""), (r.get("time") or "")[11:16], r["type"], r.get("card", "") or r.get("payout", ""),
                _y(r.get("amount")), _y(-r["fee"] if r.get("fee") else None), _y(r.get("net"))]  # fmt: skip
        for (x, _t, a), v in zip(cols, vals, strict=True):
            text(x, str(v), 8, a)
        y -= 5 * mm
    c.showPage()
    c.save()
    return buf.getvalue()
