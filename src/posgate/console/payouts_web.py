"""Pages of the money side: payouts (到账), settlement bank account, fee rules, statements.

Thin, like ``web``: each handler checks the form and calls :mod:`posgate.console.payouts`. The
pages use the console's layout and stack on a phone (tables scroll sideways in their card).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from posgate.console import payouts as svc
from posgate.console.app import ConsoleState, current_lang, redirect, render, translator
from posgate.console.auth import ACQUIRER, ACQUIRER_ADMIN, MERCHANT_ADMIN, Guard, Principal
from posgate.console.fmt import today
from posgate.console.labels import labeller
from posgate.console.txns import ConsoleError, NotFound
from posgate.store import payouts as core

router = APIRouter(include_in_schema=False)

Money = Annotated[Principal, Depends(Guard(MERCHANT_ADMIN, *ACQUIRER))]
Staff = Annotated[Principal, Depends(Guard(*ACQUIRER))]
AdminOnly = Annotated[Principal, Depends(Guard(ACQUIRER_ADMIN))]
D0 = Annotated[Principal, Depends(Guard(MERCHANT_ADMIN, ACQUIRER_ADMIN))]


def st(request: Request) -> ConsoleState:
    return request.app.state.console


async def form(request: Request) -> dict[str, Any]:
    f = await request.form()
    return {k: v for k, v in f.items() if isinstance(v, str)}


def _done(url: str, request: Request, fn: Any, ok: str, **fields: Any) -> Response:
    _ = translator(request)
    try:
        with st(request).db.write() as conn:
            result = fn(conn)
    except NotFound:
        raise
    except ConsoleError as e:
        return redirect(url, _(e.message, **e.fields), "error")
    return redirect(url, _(ok, **{k: (v(result) if callable(v) else v) for k, v in fields.items()}))


# ------------------------------------------------------------------ payouts


@router.get("/payouts", response_class=HTMLResponse)
def payouts_page(request: Request, p: Money, merchant_id: str = "", status: str = "") -> Response:
    with st(request).db.read() as conn:
        mid = svc.merchant_of(conn, p, merchant_id) if (merchant_id or not p.is_acquirer) else ""
        rows = core.list_payouts(conn, mid or None, status if status in core.PAYOUT_STATUSES else "")
        quote = core.d0_quote(conn, mid) if mid else None
        account = core.active_account(conn, mid) if mid else None
        mids = svc.merchant_ids(conn, p)
        failed = core.count_failed_payouts(conn, mid or None)
    return render(request, "payouts.html", {"rows": rows, "mid": mid, "status": status, "quote": quote, "account": account,
                                            "mids": mids, "statuses": core.PAYOUT_STATUSES, "failed": failed,
                                            "can_d0": p.role in svc.D0_REQUESTERS, "today": today(st(request).tz)})  # fmt: skip


@router.post("/payouts/d0")
async def payouts_d0(request: Request, p: D0) -> Response:
    f = await form(request)
    with st(request).db.read() as conn:
        mid = svc.merchant_of(conn, p, f.get("merchant_id") or None)
    url = "/payouts?" + urlencode({"merchant_id": mid})
    return _done(url, request, lambda conn: svc.request_d0(conn, p, mid),
                 "Same-day payout #{id} requested: it goes into today's payout file.", id=lambda r: r["id"])  # fmt: skip


@router.post("/payouts/{payout_id}/retry")
async def payout_retry(request: Request, payout_id: int, p: Staff) -> Response:
    return _done(f"/payouts/{payout_id}", request, lambda conn: svc.retry(conn, p, payout_id),
                 "The payout goes into the next payout file.")  # fmt: skip


@router.get("/payouts/{payout_id}", response_class=HTMLResponse)
def payout_page(request: Request, payout_id: int, p: Money) -> Response:
    with st(request).db.read() as conn:
        row, lines = svc.payout(conn, p, payout_id)
        account = core.account_change(conn, row["bank_account_id"]) if row["bank_account_id"] else core.active_account(conn, row["merchant_id"])
    return render(request, "payout.html", {"x": row, "lines": lines, "account": account, "ref": core.payout_ref(row["id"])})


# ------------------------------------------------------------------ settlement bank account


@router.get("/merchants/{merchant_id}/bank-account", response_class=HTMLResponse)
def bank_account_page(request: Request, merchant_id: str, p: Money) -> Response:
    with st(request).db.read() as conn:
        mid = svc.merchant_of(conn, p, merchant_id)
        active = core.active_account(conn, mid)
        changes = core.account_changes(conn, mid)
    return render(request, "bank_account.html", {"mid": mid, "active": active, "changes": changes,
                                                 "approvers": svc.BANK_APPROVERS, "error": None})  # fmt: skip


@router.post("/merchants/{merchant_id}/bank-account")
async def bank_account_propose(request: Request, merchant_id: str, p: Money) -> Response:
    f = await form(request)
    with st(request).db.read() as conn:
        mid = svc.merchant_of(conn, p, merchant_id)
    keyring = st(request).settings.keyring
    return _done(f"/merchants/{mid}/bank-account", request, lambda conn: svc.propose_account(conn, keyring, p, mid, f),
                 "Change #{id} proposed: a second person of the acquirer must approve it.", id=lambda r: r)  # fmt: skip


async def _decide(request: Request, change_id: int, p: Principal, approve: bool) -> Response:
    f = await form(request)
    with st(request).db.read() as conn:
        change = core.account_change(conn, change_id)
    if change is None or (not p.is_acquirer and change["merchant_id"] != p.merchant_id):
        raise NotFound()
    return _done(f"/merchants/{change['merchant_id']}/bank-account", request,
                 lambda conn: svc.decide_account(conn, p, change_id, approve, str(f.get("note", ""))),
                 "Approved: payouts go to the new account." if approve else "Rejected.")  # fmt: skip


@router.post("/bank-account-changes/{change_id}/approve")
async def bank_account_approve(request: Request, change_id: int, p: Staff) -> Response:
    return await _decide(request, change_id, p, True)


@router.post("/bank-account-changes/{change_id}/reject")
async def bank_account_reject(request: Request, change_id: int, p: Staff) -> Response:
    return await _decide(request, change_id, p, False)


# ------------------------------------------------------------------ fee rules


@router.get("/fees", response_class=HTMLResponse)
def fees_page(request: Request, p: Money, merchant_id: str = "") -> Response:
    with st(request).db.read() as conn:
        mid = svc.merchant_of(conn, p, merchant_id)
        rules = core.effective_rules(conn, mid)
        defaults = core.effective_rules(conn, core.DEFAULT_ACQUIRER)
        mids = svc.merchant_ids(conn, p)
    return render(request, "fees.html", {"mid": mid, "rules": rules, "defaults": defaults, "mids": mids, "kinds": core.FEE_KINDS,
                                         "can_edit": p.role == ACQUIRER_ADMIN})  # fmt: skip


@router.post("/fees")
async def fees_set(request: Request, p: AdminOnly) -> Response:
    f = await form(request)
    back = "/fees?" + urlencode({"merchant_id": f.get("back", "")})
    return _done(back, request, lambda conn: svc.set_fee(conn, p, f), "Saved.")


# ------------------------------------------------------------------ statements


def _statement(request: Request, p: Principal) -> dict[str, Any]:
    q = request.query_params
    month = q.get("month", "").strip()
    day = q.get("day", "").strip() or today(st(request).tz)
    with st(request).db.read() as conn:
        return svc.statement(conn, p, q.get("merchant_id", "").strip() or None, day, month)


@router.get("/statements", response_class=HTMLResponse)
def statements_page(request: Request, p: Money) -> Response:
    s = _statement(request, p)
    with st(request).db.read() as conn:
        mids = svc.merchant_ids(conn, p)
    period = {"merchant_id": s["merchant_id"], **({"month": s["month"]} if s["month"] else {"day": s["day_from"]})}
    return render(request, "statements.html", {"s": s, "mids": mids, "query": urlencode(period),
                                               "month_value": s["month"] or s["day_from"][:7]})  # fmt: skip


def _file_args(request: Request) -> tuple[str, str, Any, Any]:
    state = st(request)
    lang = current_lang(request, state)
    _ = translator(request)
    return state.tz, lang, _, labeller(_)


@router.get("/statements.csv")
def statements_csv(request: Request, p: Money) -> Response:
    s = _statement(request, p)
    name = f"statement-{s['merchant_id']}-{s['month'] or s['day_from']}.csv"
    return Response(svc.statement_csv(s, *_file_args(request)), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip


@router.get("/statements.pdf")
def statements_pdf(request: Request, p: Money) -> Response:
    s = _statement(request, p)
    name = f"statement-{s['merchant_id']}-{s['month'] or s['day_from']}.pdf"
    return Response(svc.statement_pdf(s, *_file_args(request)), media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip


# ------------------------------------------------------------------ JSON API (amounts in fen)

api_router = APIRouter(prefix="/api/v1")
ApiMoney = Annotated[Principal, Depends(Guard(MERCHANT_ADMIN, *ACQUIRER, api=True))]


def _api_payout(row: dict[str, Any]) -> dict[str, Any]:
    from posgate.console.api import _jsonable

    return {**_jsonable(row), "ref": core.payout_ref(int(row["id"]))}


@api_router.get("/payouts", tags=["payouts"])
def api_payouts(request: Request, p: ApiMoney, merchant_id: str = "", status: str = "") -> dict[str, Any]:
    """Payouts (newest value date first) with their 到账 status, and how many the bank refused."""
    with st(request).db.read() as conn:
        mid = svc.merchant_of(conn, p, merchant_id) if (merchant_id or not p.is_acquirer) else ""
        rows = core.list_payouts(conn, mid or None, status if status in core.PAYOUT_STATUSES else "")
        failed = core.count_failed_payouts(conn, mid or None)
    return {"items": [_api_payout(r) for r in rows], "failed": failed}


@api_router.get("/payouts/{payout_id}", tags=["payouts"])
def api_payout(request: Request, payout_id: int, p: ApiMoney) -> dict[str, Any]:
    """One payout and its lines (each transaction's signed amount, fee and net, fen)."""
    from posgate.console.api import _jsonable

    keep = ("id", "day", "created_at", "terminal_id", "operation", "pan_masked", "card_kind", "amount_signed", "fee", "net")
    with st(request).db.read() as conn:
        row, lines = svc.payout(conn, p, payout_id)
    return {**_api_payout(row), "lines": [_jsonable({k: x[k] for k in keep}) for x in lines]}
