"""The dashboard's figures: today's sales, approval rate, terminals, unsigned slips, differences."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, case, func, select

from posgate.console.auth import Principal
from posgate.console.fmt import day_offset, today
from posgate.console.ledger import SALES, approved_clause, scope
from posgate.console.settlement import statement
from posgate.console.txns import count_unsigned
from posgate.domain.response_codes import APPROVED
from posgate.store import payouts
from posgate.store.console_schema import makeup_entries, refund_requests
from posgate.store.schema import differences, merchants, terminals, transactions

T = transactions.c
ATTEMPTS = ("sale", "completion", "preauth", "void", "refund", "completion_void", "preauth_void", "balance")


def figures(conn: Connection, p: Principal, tz: str, days: int = 14) -> dict[str, Any]:
    day = today(tz)
    sales = conn.execute(
        select(func.count(), func.coalesce(func.sum(T.amount), 0))
        .where(scope(T.merchant_id, p), T.day == day, T.operation.in_(sorted(SALES)), approved_clause())
    ).one()  # fmt: skip
    by_method = takings_by_method(conn, p, day)
    attempts = conn.execute(
        select(func.count(), func.coalesce(func.sum(case((T.response_code.in_(sorted(APPROVED)), 1), else_=0)), 0))
        .where(scope(T.merchant_id, p), T.day == day, T.operation.in_(ATTEMPTS), T.mti != "0400", T.source == "terminal")
    ).one()  # fmt: skip
    tq = select(terminals.c.signed_on_day, terminals.c.signed_off, terminals.c.status).join_from(
        terminals, merchants, terminals.c.merchant_pk == merchants.c.id).where(scope(merchants.c.merchant_id, p))  # fmt: skip
    term_rows = conn.execute(tq).all()
    signed_on = sum(1 for r in term_rows if r.signed_on_day == day and not r.signed_off)
    unsigned, overdue = count_unsigned(conn, p)
    open_diffs = conn.execute(select(func.count()).select_from(differences)
                              .where(differences.c.status == "open", scope(differences.c.merchant_id, p))).scalar_one()  # fmt: skip
    pending_makeup = conn.execute(select(func.count()).select_from(makeup_entries)
                                  .where(makeup_entries.c.status == "pending", scope(makeup_entries.c.merchant_id, p))).scalar_one()  # fmt: skip
    pending_refunds = conn.execute(select(func.count()).select_from(refund_requests)
                                   .where(refund_requests.c.status == "pending", scope(refund_requests.c.merchant_id, p))).scalar_one()  # fmt: skip
    start = day_offset(day, -(days - 1))
    per_day = {
        r.day: (int(r.n), int(r.amount))
        for r in conn.execute(
            select(T.day, func.count().label("n"), func.coalesce(func.sum(T.amount), 0).label("amount"))
            .where(scope(T.merchant_id, p), T.day >= start, T.day <= day, T.operation.in_(sorted(SALES)), approved_clause())
            .group_by(T.day)
        )
    }  # fmt: skip
    chart = [(d, *per_day.get(d, (0, 0))) for d in (day_offset(start, i) for i in range(days))]
    # the next settlement: today's business, paid out T+settlement_days
    mids = [r.merchant_id for r in conn.execute(select(merchants.c.merchant_id).where(scope(merchants.c.merchant_id, p)))]
    net = 0
    value_date = None
    for mid in mids:
        st = statement(conn, mid, day, tz)
        net += st["net"]
        value_date = min(value_date or st["value_date"], st["value_date"])
    n_att, n_ok = int(attempts[0]), int(attempts[1])
    # 到账: the merchant's latest payout and whether the bank has paid it (merchant roles only)
    latest_payout = payouts.latest_payout(conn, p.merchant_id) if p.merchant_id and not p.is_acquirer else None
    return {
        "day": day, "sales_count": int(sales[0]), "sales_amount": int(sales[1]), "attempts": n_att, "approved": n_ok,
        "approval_rate": (n_ok / n_att) if n_att else None, "terminals_total": len(term_rows),
        "terminals_signed_on": signed_on, "unsigned": unsigned, "unsigned_overdue": overdue,
        "open_differences": int(open_diffs), "pending_makeup": int(pending_makeup),
        "pending_refunds": int(pending_refunds), "chart": chart, "by_method": by_method,
        "next_settlement": {"value_date": value_date or day_offset(day, 1), "net": net, "business_day": day},
        "latest_payout": latest_payout,
    }  # fmt: skip


def takings_by_method(conn: Connection, p: Principal, day: str) -> list[tuple[str, int, int]]:
    """Today's approved sales by payment method: ``(method, count, amount)``, card first, then the
    wallets (a scanned code's wallet is told by its first digits: :func:`txns.payment_method`)."""
    from posgate.console.txns import PAYMENT_METHODS, payment_method

    totals: dict[str, list[int]] = {}
    rows = conn.execute(select(T.entry_mode, T.pan_masked, T.amount)
                        .where(scope(T.merchant_id, p), T.day == day, T.operation.in_(sorted(SALES)), approved_clause()))  # fmt: skip
    for r in rows.mappings():
        t = totals.setdefault(payment_method(dict(r)), [0, 0])
        t[0] += 1
        t[1] += int(r["amount"] or 0)
    order = {m: i for i, m in enumerate(PAYMENT_METHODS)}
    return [(m, n, a) for m, (n, a) in sorted(totals.items(), key=lambda kv: order.get(kv[0], 99))]


def chart_svg(chart: list[tuple[str, int, int]], width: int = 1000, height: int = 240, label: str = "") -> str:
    """Bars of the daily approved sales amount (inline SVG; no script, no CDN)."""
    from html import escape

    from posgate.console.fmt import yuan

    pad_l, pad_b, pad_t = 64, 28, 16
    n = max(1, len(chart))
    top = max([a for _, _, a in chart] + [1])
    step = (width - pad_l - 8) / n
    bar = step * 0.62
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
             f'xmlns="http://www.w3.org/2000/svg">']  # fmt: skip
    for i in range(5):
        v = top * i / 4
        y = height - pad_b - (height - pad_b - pad_t) * i / 4
        parts.append(f'<line x1="{pad_l}" x2="{width - 4}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{pad_l - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{yuan(int(v))[:-3]}</text>')
    for i, (day, count, amount) in enumerate(chart):
        h = (height - pad_b - pad_t) * amount / top
        x = pad_l + i * step + (step - bar) / 2
        y = height - pad_b - h
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{max(h, 0.5):.1f}" rx="2" class="bar">'
                     f"<title>{escape(day)}: {count} · ¥{yuan(amount)}</title></rect>")  # fmt: skip
        if i % 2 == (n - 1) % 2:
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{height - 8}" class="axis" text-anchor="middle">{escape(day[5:])}</text>')
    parts.append("</svg>")
    return "".join(parts)


__all__ = ["and_", "chart_svg", "figures"]
