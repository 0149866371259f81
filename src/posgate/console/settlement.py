"""Settlement as the merchant sees it: batches, differences and daily statements (T+1 by default).

A statement covers one merchant's business day (acquirer time zone). Debits are approved sales
(voided ones included, the void counted as a credit, as in the 0500 totals of spec 9.1), credits
are voids, refunds and make-up credits. The fee is the sum of the day's per-transaction fees
(``posgate.store.payouts``: the fee rule of each card's kind, docs/decisions.md P1); the
merchant's ``fee_rate_bp`` is its credit-card rate. The net amount is what the day adds to the
merchant's payout on the value date (business day + ``settlement_days``; docs/payouts.md).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, func, select

from posgate.console.auth import Principal
from posgate.console.fmt import day_offset, today, yuan
from posgate.console.labels import labeller
from posgate.console.ledger import approved_clause, scope, side
from posgate.store.payouts import lines as day_lines
from posgate.store.schema import differences, merchants, settlements, transactions

T = transactions.c


def statement(conn: Connection, merchant_id: str, day: str, tz: str) -> dict[str, Any]:
    m = conn.execute(select(merchants).where(merchants.c.merchant_id == merchant_id)).mappings().first()
    if m is None:
        raise LookupError(merchant_id)
    rows = conn.execute(select(T.terminal_id, T.operation, T.processing_code, T.amount)
                        .where(T.merchant_id == merchant_id, T.day == day, approved_clause())).all()  # fmt: skip
    debit_n = debit = credit_n = credit = 0
    by_terminal: dict[str, dict[str, int]] = {}
    for r in rows:
        s = side(r.operation, r.processing_code)
        if not s:
            continue
        t = by_terminal.setdefault(r.terminal_id, {"debit_count": 0, "debit": 0, "credit_count": 0, "credit": 0})
        if s == "debit":
            debit_n += 1
            debit += r.amount
            t["debit_count"] += 1
            t["debit"] += r.amount
        else:
            credit_n += 1
            credit += r.amount
            t["credit_count"] += 1
            t["credit"] += r.amount
    net_turnover = debit - credit
    f = sum(x["fee"] for x in day_lines(conn, merchant_id, day, day))
    value_date = day_offset(day, int(m["settlement_days"] or 1))
    now_day = today(tz)
    if m["status"] != "active":
        status = "on_hold"
    elif day >= now_day:
        status = "open"
    elif value_date > now_day:
        status = "scheduled"
    else:
        status = "settled"
    return {
        "merchant_id": merchant_id, "merchant_name": m["name"], "merchant_name_en": m["name_en"], "day": day,
        "value_date": value_date, "fee_rate_bp": m["fee_rate_bp"], "debit_count": debit_n, "gross": debit,
        "credit_count": credit_n, "refunds": credit, "fees": f, "net": net_turnover - f, "status": status,
        "terminals": by_terminal,
    }  # fmt: skip


def statements(conn: Connection, p: Principal, tz: str, day_from: str, day_to: str) -> list[dict[str, Any]]:
    pairs = conn.execute(
        select(T.merchant_id, T.day).where(scope(T.merchant_id, p), T.day >= day_from, T.day <= day_to)
        .group_by(T.merchant_id, T.day).order_by(T.day.desc(), T.merchant_id)
    ).all()  # fmt: skip
    return [statement(conn, r.merchant_id, r.day, tz) for r in pairs]


def batches(conn: Connection, p: Principal, limit: int = 200) -> list[dict[str, Any]]:
    s = settlements.c
    open_diffs = (select(differences.c.settlement_id, func.count().label("n")).where(differences.c.status == "open")
                  .group_by(differences.c.settlement_id).subquery())  # fmt: skip
    rows = conn.execute(
        select(settlements, func.coalesce(open_diffs.c.n, 0).label("open_differences"))
        .select_from(settlements.outerjoin(open_diffs, open_diffs.c.settlement_id == s.id))
        .where(scope(s.merchant_id, p)).order_by(s.at.desc()).limit(limit)
    ).mappings()  # fmt: skip
    return [dict(r) for r in rows]


def batch(conn: Connection, p: Principal, settlement_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(settlements).where(settlements.c.id == settlement_id, scope(settlements.c.merchant_id, p))).mappings().first()
    if row is None:
        return None
    diffs = conn.execute(select(differences).where(differences.c.settlement_id == settlement_id)
                         .order_by(differences.c.id)).mappings().all()  # fmt: skip
    return {"settlement": dict(row), "differences": [dict(d) for d in diffs]}


CARD_KINDS = (("domestic", "CUP cards"), ("foreign", "Foreign cards"))
SIDES = (("debit", "Debits"), ("credit", "Credits"))


def _side_totals(totals: Any, kind: str) -> dict[str, int] | None:
    """One card kind's totals from a stored field 48 (``{"domestic": {...}, "foreign": {...}}``).

    A flat ``{"debit_amount": ..}`` (older rows) counts as the domestic side; anything else is
    treated as absent rather than shown raw."""
    if not isinstance(totals, dict):
        return None
    side = totals.get(kind)
    if side is None and kind == "domestic" and any(k.startswith(("debit_", "credit_")) for k in totals):
        side = totals
    if not isinstance(side, dict):
        return None
    out = {}
    for k in ("debit_count", "debit_amount", "credit_count", "credit_amount"):
        try:
            out[k] = int(side.get(k) or 0)
        except (TypeError, ValueError):
            out[k] = 0
    return out


def totals_table(b: dict[str, Any]) -> list[dict[str, Any]]:
    """The batch's totals as rows (card kind × debits/credits): terminal and host count and
    amount (fen), and whether they agree. Kinds neither side reported are left out."""
    rows = []
    for kind, kind_label in CARD_KINDS:
        term, host = _side_totals(b.get("terminal_totals"), kind), _side_totals(b.get("host_totals"), kind)
        if term is None and host is None:
            continue
        for which, side_label in SIDES:
            tc = term[f"{which}_count"] if term else None
            ta = term[f"{which}_amount"] if term else None
            hc = host[f"{which}_count"] if host else None
            ha = host[f"{which}_amount"] if host else None
            rows.append({"kind": kind, "kind_label": kind_label, "side": which, "side_label": side_label,
                         "terminal_count": tc, "terminal_amount": ta, "host_count": hc, "host_amount": ha,
                         "agree": tc == hc and ta == ha})  # fmt: skip
    return rows


def statement_csv(st: dict[str, Any], _: Callable[..., str]) -> str:
    """Stable English column names; the status as the page shows it (``status``, in the
    reader's language) and as a code (``status_code``, last column: for scripts). UTF-8 with a BOM."""
    label = labeller(_)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["merchant_id", "merchant_name", "business_day", "value_date", "fee_rate_percent", "debit_count",
                "gross_yuan", "credit_count", "refunds_yuan", "fees_yuan", "net_yuan", "status", "status_code"])  # fmt: skip
    w.writerow([st["merchant_id"], st["merchant_name"], st["day"], st["value_date"], f"{st['fee_rate_bp'] / 100:.2f}",
                st["debit_count"], _y(st["gross"]), st["credit_count"], _y(st["refunds"]), _y(st["fees"]), _y(st["net"]),
                label("statement_status", st["status"]), st["status"]])  # fmt: skip
    w.writerow([])
    w.writerow(["terminal_id", "debit_count", "debit_yuan", "credit_count", "credit_yuan"])
    for tid, t in sorted(st["terminals"].items()):
        w.writerow([tid, t["debit_count"], _y(t["debit"]), t["credit_count"], _y(t["credit"])])
    return "\ufeff" + out.getvalue()


def _y(fen: int) -> str:
    return yuan(fen).replace(",", "")


def statement_pdf(st: dict[str, Any], lang: str) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    font = "STSong-Light"
    try:
        pdfmetrics.getFont(font)
    except KeyError:
        pdfmetrics.registerFont(UnicodeCIDFont(font))
    zh = not lang.startswith("en")
    L = {  # noqa: N806
        "title": ("商户结算单", "Merchant settlement statement"),
        "merchant": ("商户", "Merchant"), "day": ("交易日", "Business day"), "value": ("入账日", "Value date"),
        "rate": ("手续费率", "Fee rate"), "gross": ("交易总额", "Gross sales"), "refunds": ("退货及撤销", "Refunds and voids"),
        "fees": ("手续费", "Fees"), "net": ("结算净额", "Net amount"), "status": ("状态", "Status"),
        "count": ("笔数", "Count"), "terminal": ("终端", "Terminal"), "debit": ("借记", "Debits"),
        "credit": ("贷记", "Credits"), "amount": ("金额(元)", "Amount (CNY)"),
    }  # fmt: skip
    statuses = {"open": ("营业中", "Open"), "scheduled": ("待入账", "Scheduled"), "settled": ("已入账", "Settled"),
                "on_hold": ("暂停结算", "On hold")}  # fmt: skip

    def t(k: str) -> str:
        return L[k][0 if zh else 1]

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    c.setTitle(f"statement {st['merchant_id']} {st['day']}")
    w, h = A4
    y = h - 25 * mm
    c.setFont(font, 18)
    c.drawString(20 * mm, y, t("title"))
    c.setFont(font, 9)
    c.setFillColor(colors.grey)
    c.drawRightString(w - 20 * mm, y, "posgate")
    c.setFillColor(colors.black)
    y -= 12 * mm
    name = st["merchant_name"] if zh else (st["merchant_name_en"] or st["merchant_name"])
    rows = [
        (t("merchant"), f"{name}  {st['merchant_id']}"), (t("day"), st["day"]), (t("value"), st["value_date"]),
        (t("rate"), f"{st['fee_rate_bp'] / 100:.2f} %"),
        (t("gross"), f"{yuan(st['gross'])}   ({t('count')} {st['debit_count']})"),
        (t("refunds"), f"-{yuan(st['refunds'])}   ({t('count')} {st['credit_count']})"),
        (t("fees"), f"-{yuan(st['fees'])}"), (t("net"), yuan(st["net"])),
        (t("status"), statuses.get(st["status"], (st["status"], st["status"]))[0 if zh else 1]),
    ]  # fmt: skip
    for k, v in rows:
        c.setFont(font, 11 if k != t("net") else 13)
        c.drawString(20 * mm, y, k)
        c.drawString(70 * mm, y, v)
        y -= 8 * mm
    y -= 6 * mm
    c.setFont(font, 10)
    heads = [t("terminal"), t("debit"), t("amount"), t("credit"), t("amount")]
    xs = [20, 55, 85, 125, 150]
    for x, head in zip(xs, heads, strict=True):
        c.drawString(x * mm, y, head)
    y -= 2 * mm
    c.line(20 * mm, y, w - 20 * mm, y)
    y -= 6 * mm
    for tid, tt in sorted(st["terminals"].items()):
        vals = [tid, str(tt["debit_count"]), yuan(tt["debit"]), str(tt["credit_count"]), yuan(tt["credit"])]
        for x, v in zip(xs, vals, strict=True):
            c.drawString(x * mm, y, v)
        y -= 6 * mm
    c.showPage()
    c.save()
    return buf.getvalue()
