"""Server-rendered pages (cookie session + CSRF). Thin: each handler calls a service function."""

from __future__ import annotations

import base64
import secrets
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from posgate.console import backup as backups_mod
from posgate.console import (
    dashboard,
    ic_params,
    makeup,
    notices,
    receipt_links,
    settlement,
    terminals,
    txns,
    users,
)
from posgate.console.app import LANG_COOKIE, ConsoleState, current_lang, redirect, render, translator
from posgate.console.audit_view import audit_entries
from posgate.console.auth import (
    ACQUIRER,
    ACQUIRER_ADMIN,
    ALL,
    LOGIN_CSRF_COOKIE,
    MERCHANT,
    MERCHANT_ADMIN,
    SESSION_COOKIE,
    SUPPORT,
    Guard,
    Principal,
    authenticate,
    client_address,
    create_session,
    revoke_session,
)
from posgate.console.fmt import day_offset, fmt_time, parse_yuan, today
from posgate.console.i18n import normalise
from posgate.console.labels import labeller
from posgate.console.ledger import annulment_of
from posgate.console.receipt import build_slip, render_pdf, render_text
from posgate.console.terminals import PARAMS
from posgate.console.txns import ConsoleError, NotFound, TxnQuery
from posgate.dialect.operations import OPERATIONS
from posgate.store.admin import lapse_warnings

router = APIRouter(include_in_schema=False)

Any_ = Annotated[Principal, Depends(Guard(*ALL))]
Acq = Annotated[Principal, Depends(Guard(*ACQUIRER))]
AdminOnly = Annotated[Principal, Depends(Guard(ACQUIRER_ADMIN))]
Approver = Annotated[Principal, Depends(Guard(MERCHANT_ADMIN, SUPPORT, ACQUIRER_ADMIN))]
RefundMaker = Annotated[Principal, Depends(Guard(*MERCHANT, ACQUIRER_ADMIN))]
RefundApprover = Annotated[Principal, Depends(Guard(MERCHANT_ADMIN, ACQUIRER_ADMIN))]
Money = Annotated[Principal, Depends(Guard(MERCHANT_ADMIN, *ACQUIRER))]
UserAdmin = Annotated[Principal, Depends(Guard(ACQUIRER_ADMIN, MERCHANT_ADMIN))]
Auditor = Annotated[Principal, Depends(Guard(ACQUIRER_ADMIN, SUPPORT, MERCHANT_ADMIN))]


def st(request: Request) -> ConsoleState:
    return request.app.state.console


async def form(request: Request) -> dict[str, Any]:
    f = await request.form()
    return {k: v for k, v in f.items()}


def _safe_next(nxt: str) -> str:
    return nxt if nxt.startswith("/") and not nxt.startswith("//") and "\\" not in nxt else "/"


def _cookie_kw(request: Request) -> dict[str, Any]:
    return {"httponly": True, "samesite": "strict", "secure": st(request).settings.cookie_secure, "path": "/"}


# ------------------------------------------------------------------ login, logout, language


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> Response:  # noqa: A002
    token = secrets.token_urlsafe(24)
    resp = render(request, "login.html", {"next": _safe_next(next), "login_csrf": token, "error": None})
    resp.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, **_cookie_kw(request))
    return resp


@router.post("/login")
async def login_submit(request: Request) -> Response:
    f = await form(request)
    state = st(request)
    _ = translator(request)
    sent, cookie = str(f.get("csrf_token", "")), request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not sent or not cookie or not secrets.compare_digest(sent, cookie):
        token = secrets.token_urlsafe(24)
        page = render(request, "login.html", {"next": "/", "login_csrf": token,
                      "error": _("This form has expired. Reload the page and try again.")}, status=403)  # fmt: skip
        page.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, **_cookie_kw(request))
        return page
    username = str(f.get("username", "")).strip().lower()[:64]
    password = str(f.get("password", ""))[:200]
    nxt = _safe_next(str(f.get("next", "/")))
    cfg = state.settings

    def do() -> tuple[Any, Any]:
        with state.db.write() as conn:
            res = authenticate(conn, username, password, threshold=cfg.lockout_threshold, lock_minutes=cfg.lockout_minutes,
                               address=client_address(request))
            token = None
            if res.ok and res.user is not None:
                token = create_session(conn, res.user["id"], "web", timedelta(minutes=cfg.session_idle_minutes))
            return res, token

    res, token = await run_in_threadpool(do)
    if not res.ok or token is None:
        msg = _(res.error)
        if res.locked_until is not None:
            msg += " " + _("Try again after {time}, or ask an administrator to unlock it.",
                           time=fmt_time(res.locked_until, state.tz, False))
        new = secrets.token_urlsafe(24)
        failed = render(request, "login.html", {"next": nxt, "login_csrf": new, "error": msg, "username": username}, status=401)
        failed.set_cookie(LOGIN_CSRF_COOKIE, new, max_age=3600, **_cookie_kw(request))
        return failed
    resp = RedirectResponse(nxt, status_code=303)
    resp.set_cookie(SESSION_COOKIE, token, **_cookie_kw(request))
    resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return resp


@router.post("/logout")
def logout(request: Request, p: Any_) -> Response:
    with st(request).db.write() as conn:
        revoke_session(conn, request.cookies.get(SESSION_COOKIE, ""))
        from posgate.console.audit import audit

        audit(conn, actor=p.username, action="logout", object_type="user", object_id=str(p.user_id), merchant_id=p.merchant_id)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


@router.get("/lang/{code}")
def set_language(request: Request, code: str, next: str = "/") -> Response:  # noqa: A002
    resp = RedirectResponse(_safe_next(next), status_code=303)
    resp.set_cookie(LANG_COOKIE, normalise(code), max_age=365 * 86400, path="/", samesite="lax", httponly=True,
                    secure=st(request).settings.cookie_secure)  # fmt: skip
    return resp


@router.get("/password", response_class=HTMLResponse)
def password_page(request: Request, p: Any_) -> Response:
    return render(request, "password.html", {"error": None})


@router.post("/password")
async def password_submit(request: Request, p: Any_) -> Response:
    f = await form(request)
    _ = translator(request)
    try:
        with st(request).db.write() as conn:
            users.change_password(conn, p, str(f.get("current", "")), str(f.get("new", "")), str(f.get("confirm", "")))
    except ConsoleError as e:
        return render(request, "password.html", {"error": _(e.message, **e.fields)}, status=400)
    return redirect("/", _("Your password has been changed."))


# ------------------------------------------------------------------ dashboard


@router.get("/", response_class=HTMLResponse)
def dashboard_page(request: Request, p: Any_) -> Response:
    state = st(request)
    _ = translator(request)
    with state.db.read() as conn:
        fig = dashboard.figures(conn, p, state.tz)
        # D6: merchants that lapse tomorrow unless a terminal signs on today (the sweep's rule).
        lapsing = lapse_warnings(conn, None if p.is_acquirer else [p.merchant_id] if p.merchant_id else [])
    svg = dashboard.chart_svg(fig["chart"], label=_("Approved sales, last 14 days"))
    return render(request, "dashboard.html", {"f": fig, "chart": svg, "lapsing": lapsing})


# ------------------------------------------------------------------ transactions


@router.get("/transactions", response_class=HTMLResponse)
def transactions_page(request: Request, p: Any_) -> Response:
    state = st(request)
    q = TxnQuery.from_params(request.query_params)
    error = None
    try:
        with state.db.read() as conn:
            rows, total = txns.search(conn, p, q, state.settings.keyring)
    except ConsoleError as e:
        rows, total, error = [], 0, translator(request)(e.message)
    pages = max(1, (total + q.per_page - 1) // q.per_page)
    return render(request, "transactions.html", {
        "rows": rows, "total": total, "q": q, "pages": pages, "error": error, "operations": sorted(OPERATIONS),
        "page_url": lambda n: "/transactions?" + urlencode(q.as_params(page=n)),
        "csv_url": "/transactions.csv?" + urlencode(q.as_params(page=1)),
    })  # fmt: skip


@router.get("/transactions.csv")
def transactions_csv(request: Request, p: Any_) -> Response:
    state = st(request)
    q = TxnQuery.from_params(request.query_params)
    with state.db.read() as conn:
        rows, _total = txns.search(conn, p, q, state.settings.keyring, limit=100_000)
    body = txns.csv_export(rows, state.tz, current_lang(request, state), translator(request))
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="transactions.csv"'})  # fmt: skip


@router.get("/transactions/{txn_id}", response_class=HTMLResponse)
def transaction_page(request: Request, txn_id: int, p: Any_) -> Response:
    state = st(request)
    with state.db.read() as conn:
        d = txns.detail(conn, p, txn_id)
        refundable = makeup.refundable(conn, d["txn"])
        refunds = [r for r in makeup.refund_list(conn, p) if r["original_id"] == txn_id]
        annulled_by = annulment_of(conn, txn_id)
    link_state, link = _receipt_link(request, p, d["txn"])
    url = receipt_links.url_for(_public_base(request), link.token) if link is not None and link.token else None
    return render(request, "transaction.html", {
        "d": d, "x": d["txn"], "refundable": refundable, "refunds": refunds, "slip_text": _slip_text(request, d),
        "annulled_by": annulled_by, "link_state": link_state, "link": link, "link_url": url,
        "link_qr": receipt_links.qr_svg(url) if url and link_state == "ok" else None,
    })  # fmt: skip


def _receipt_link(request: Request, p: Principal, txn: dict[str, Any]) -> tuple[str, Any]:
    """The transaction's e-receipt link; an approved transaction gets its first one here (a write
    transaction only then: the page is read far more often than a link is made)."""
    state = st(request)
    cfg = state.settings
    with state.db.read() as conn:
        found = receipt_links.for_console(conn, p.username, txn, cfg.keyring, cfg.receipt_link_days, create=False)
    if found[0] != "missing":
        return found
    with state.db.write() as conn:
        return receipt_links.for_console(conn, p.username, txn, cfg.keyring, cfg.receipt_link_days)


def _public_base(request: Request) -> str:
    """The console's address for cardholders: the setting, else the address this page came from."""
    return st(request).settings.public_url or str(request.base_url)


@router.post("/transactions/{txn_id}/receipt-link/revoke")
async def receipt_link_revoke(request: Request, txn_id: int, p: Any_) -> Response:
    _ = translator(request)
    await form(request)
    try:
        with st(request).db.write() as conn:
            receipt_links.revoke(conn, p, txn_id)
    except NotFound:
        raise
    except ConsoleError as e:
        return redirect(f"/transactions/{txn_id}", _(e.message, **e.fields), "error")
    return redirect(f"/transactions/{txn_id}", _("E-receipt link revoked: whoever opens it now sees that it was withdrawn."))


@router.post("/transactions/{txn_id}/receipt-link/new")
async def receipt_link_new(request: Request, txn_id: int, p: Any_) -> Response:
    _ = translator(request)
    await form(request)
    cfg = st(request).settings
    try:
        with st(request).db.write() as conn:
            receipt_links.renew(conn, p, txn_id, cfg.keyring, cfg.receipt_link_days)
    except NotFound:
        raise
    except ConsoleError as e:
        return redirect(f"/transactions/{txn_id}", _(e.message, **e.fields), "error")
    return redirect(f"/transactions/{txn_id}", _("A new e-receipt link was made."))


# ------------------------------------------------------------------ e-receipt for the cardholder (no login)


def _receipt_lang(request: Request) -> str:
    """``?lang=`` (the page's toggle), else the browser's Accept-Language, else Chinese."""
    asked = request.query_params.get("lang", "")
    if asked:
        return normalise(asked)
    accept = request.headers.get("accept-language", "").strip().lower()
    return "en" if accept.startswith("en") else "zh_CN"


@router.get("/r/{token}", response_class=HTMLResponse)
def receipt_public(request: Request, token: str) -> Response:
    state = st(request)
    lang = _receipt_lang(request)
    _ = state.i18n.translator(lang)
    who = client_address(request)
    limiter = state.receipt_limiter
    if not limiter.allow(who):
        page = render(request, "receipt_public.html", {"state": "limited", "token": token}, status=429, lang=lang)
        page.headers["Retry-After"] = str(limiter.retry_after(who))
        return page
    with state.db.write() as conn:
        opened = receipt_links.open_link(conn, token)
    status = {"ok": 200, "revoked": 410, "expired": 410}.get(opened.state, 404)
    ctx: dict[str, Any] = {"state": opened.state, "token": token}
    if opened.txn is not None:
        sig = opened.signature
        # Who issued the card, as the console's slip says it (nothing for a payment code).
        slip = build_slip(opened.txn, opened.merchant or {}, sig, state.tz)
        ctx["issuer_line"] = slip.issuer_text(lang, bilingual=False)
        ctx.update(x=opened.txn, m=opened.merchant or {}, sig=sig,
                   sig_data=("data:image/png;base64," + base64.b64encode(bytes(sig["png"])).decode()) if sig and sig.get("png") else None)  # fmt: skip
    page = render(request, "receipt_public.html", ctx, status=status, lang=lang)
    page.headers["X-Robots-Tag"] = "noindex, nofollow"
    page.headers["Referrer-Policy"] = "no-referrer"  # the token never leaves in a Referer header
    return page


# ------------------------------------------------------------------ notices


@router.get("/notices", response_class=HTMLResponse)
def notices_page(request: Request, p: Any_) -> Response:
    state = st(request)
    with state.db.read() as conn:
        found = notices.collect(conn, p, state.settings)
    return render(request, "notices.html", {"notices": found})


@router.get("/transactions/{txn_id}/receipt.pdf")
def receipt_pdf(request: Request, txn_id: int, p: Any_) -> Response:
    state = st(request)
    cfg = state.settings
    with state.db.read() as conn:
        d = txns.detail(conn, p, txn_id)
    url = ""
    if cfg.public_url:  # without the public address a cardholder could not open it: no QR code
        link_state, link = _receipt_link(request, p, d["txn"])
        if link_state == "ok" and link is not None and link.token:
            url = receipt_links.url_for(cfg.public_url, link.token)
    pdf = render_pdf(d["txn"], d["merchant"], d["signature"], state.tz, "en" if current_lang(request, state) == "en" else "zh",
                     receipt_url=url)  # fmt: skip
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="slip-{txn_id}.pdf"'})  # fmt: skip


@router.get("/transactions/{txn_id}/signature.png")
def signature_png(request: Request, txn_id: int, p: Any_) -> Response:
    with st(request).db.read() as conn:
        d = txns.detail(conn, p, txn_id)
    sig = d["signature"]
    if not sig or not sig.get("png"):
        raise NotFound()
    return Response(bytes(sig["png"]), media_type="image/png")


# ------------------------------------------------------------------ unsigned slips, make-up signature


@router.get("/unsigned", response_class=HTMLResponse)
def unsigned_page(request: Request, p: Any_) -> Response:
    state = st(request)
    with state.db.read() as conn:
        rows = txns.unsigned_list(conn, p)
    return render(request, "unsigned.html", {"rows": rows, "after_hours": state.settings.unsigned_after_minutes / 60})


@router.get("/transactions/{txn_id}/sign", response_class=HTMLResponse)
def sign_page(request: Request, txn_id: int, p: Any_) -> Response:
    with st(request).db.read() as conn:
        d = txns.detail(conn, p, txn_id)
    return render(request, "sign.html", {"d": d, "x": d["txn"], "slip_text": _slip_text(request, d)})


def _slip_text(request: Request, d: dict[str, Any]) -> str:
    state = st(request)
    lang = "en" if current_lang(request, state) == "en" else "zh"
    return render_text(d["txn"], d["merchant"], d["signature"], state.tz, lang)


@router.post("/transactions/{txn_id}/sign")
async def sign_submit(request: Request, txn_id: int, p: Any_) -> Response:
    f = await form(request)
    _ = translator(request)
    data = str(f.get("signature", ""))
    if f.get("confirm") != "yes":
        return redirect(f"/transactions/{txn_id}/sign", _("The cardholder must confirm the statement before signing."), "error")
    prefix = "data:image/png;base64,"
    if not data.startswith(prefix):
        return redirect(f"/transactions/{txn_id}/sign", _("The signature is empty: ask the cardholder to sign on the pad."), "error")
    try:
        png = base64.b64decode(data[len(prefix):], validate=True)
    except ValueError:
        return redirect(f"/transactions/{txn_id}/sign", _("The signature must be a PNG image."), "error")
    try:
        with st(request).db.write() as conn:
            txns.capture_signature(conn, p, txn_id, png, via="console canvas")
    except NotFound:
        raise
    except ConsoleError as e:
        return redirect(f"/transactions/{txn_id}/sign", _(e.message, **e.fields), "error")
    return redirect(f"/transactions/{txn_id}", _("Make-up signature recorded; the e-receipt now carries it."))


# ------------------------------------------------------------------ make-up entries (补登)


@router.get("/makeup", response_class=HTMLResponse)
def makeup_page(request: Request, p: Any_, status: str = "") -> Response:
    with st(request).db.read() as conn:
        entries = makeup.entries(conn, p, status if status in ("pending", "approved", "rejected") else "")
        diffs = makeup.open_differences(conn, p)
    return render(request, "makeup.html", {"entries": entries, "diffs": diffs, "status": status})


@router.get("/makeup/new", response_class=HTMLResponse)
def makeup_new(request: Request, p: Any_, kind: str = "missing_sale", original_id: str = "", difference_id: str = "",
               terminal_id: str = "") -> Response:  # fmt: skip
    state = st(request)
    with state.db.read() as conn:
        terms = terminals.list_terminals(conn, p, state.tz)
    return render(request, "makeup_new.html", {"kinds": makeup.KINDS, "terms": terms, "v": {
        "kind": kind, "original_id": original_id, "difference_id": difference_id, "terminal_id": terminal_id}, "error": None})  # fmt: skip


def _int(v: Any) -> int | None:
    if v is None or not str(v).strip():
        return None
    try:
        return int(str(v).strip())
    except ValueError:
        raise ConsoleError("An id must be a number.") from None


@router.post("/makeup")
async def makeup_submit(request: Request, p: Any_) -> Response:
    state = st(request)
    _ = translator(request)
    f = await request.form()
    try:
        v = {k: (val if isinstance(val, str) else "") for k, val in f.items()}
        upload = f.get("evidence_file")
        file_bytes, file_name, file_type = None, "", ""
        if upload is not None and not isinstance(upload, str) and upload.filename:
            file_bytes = await upload.read(makeup.MAX_EVIDENCE + 1)
            file_name, file_type = upload.filename, upload.content_type or "application/octet-stream"
    finally:
        await f.close()
    try:
        amount = parse_yuan(v["amount"]) if v.get("amount", "").strip() else None
    except ValueError:
        amount = None
        error: str | None = _("The amount is not valid: use yuan, e.g. 12.34.")
    else:
        error = None
    if error is None:
        try:
            with state.db.write() as conn:
                entry_id = makeup.propose(
                    conn, p, kind=v.get("kind", ""), reason=v.get("reason", ""), terminal_id=v.get("terminal_id", ""),
                    original_id=_int(v.get("original_id")), difference_id=_int(v.get("difference_id")), amount=amount,
                    card_last4=v.get("card_last4", "").strip(), reference=v.get("reference", ""), txn_day=v.get("txn_day", "").strip(),
                    evidence=v.get("evidence", ""), evidence_file=file_bytes, evidence_name=file_name, evidence_type=file_type,
                )  # fmt: skip
            return redirect(f"/makeup/{entry_id}", _("Proposal #{id} recorded; a second person must approve it.", id=entry_id))
        except NotFound:
            error = _("The original transaction or difference was not found.")
        except ConsoleError as e:
            error = _(e.message, **e.fields)
    with state.db.read() as conn:
        terms = terminals.list_terminals(conn, p, state.tz)
    return render(request, "makeup_new.html", {"kinds": makeup.KINDS, "terms": terms, "v": v, "error": error}, status=400)


@router.get("/makeup/{entry_id}", response_class=HTMLResponse)
def makeup_entry_page(request: Request, entry_id: int, p: Any_) -> Response:
    with st(request).db.read() as conn:
        e = makeup.entry(conn, p, entry_id)
        original = txns.detail(conn, p, e["original_id"])["txn"] if e["original_id"] else None
        diff = None
        if e["difference_id"]:
            from posgate.store.schema import differences

            diff = conn.execute(select(differences).where(differences.c.id == e["difference_id"])).mappings().first()
    can_decide = e["status"] == "pending" and p.role in makeup.MAKEUP_APPROVERS and p.username != e["proposed_by"]
    return render(request, "makeup_entry.html", {"e": e, "original": original, "diff": diff, "can_decide": can_decide})


@router.get("/makeup/{entry_id}/evidence")
def makeup_evidence(request: Request, entry_id: int, p: Any_) -> Response:
    with st(request).db.read() as conn:
        e = makeup.entry(conn, p, entry_id)
    if not e["evidence_file"]:
        raise NotFound()
    # served as a download, never rendered inline: an uploaded file is untrusted content
    return Response(bytes(e["evidence_file"]), media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="evidence-{entry_id}"'})  # fmt: skip


async def _decide_makeup(request: Request, entry_id: int, p: Principal, approve: bool) -> Response:
    f = await form(request)
    _ = translator(request)
    try:
        with st(request).db.write() as conn:
            res = makeup.decide(conn, p, entry_id, approve, str(f.get("note", "")), st(request).tz)
    except NotFound:
        raise
    except ConsoleError as e:
        return redirect(f"/makeup/{entry_id}", _(e.message, **e.fields), "error")
    if res["status"] != "approved":
        msg = _("Rejected.")
    elif res["result_txn_id"] is None:  # closing a difference writes no ledger record
        msg = _("Approved: the difference is closed; the ledger is unchanged.")
    else:
        msg = _("Approved: the ledger has a new record #{id}; the original is unchanged.", id=res["result_txn_id"])
    return redirect(f"/makeup/{entry_id}", msg)


@router.post("/makeup/{entry_id}/approve")
async def makeup_approve(request: Request, entry_id: int, p: Approver) -> Response:
    return await _decide_makeup(request, entry_id, p, True)


@router.post("/makeup/{entry_id}/reject")
async def makeup_reject(request: Request, entry_id: int, p: Approver) -> Response:
    return await _decide_makeup(request, entry_id, p, False)


# ------------------------------------------------------------------ refunds


@router.get("/refunds", response_class=HTMLResponse)
def refunds_page(request: Request, p: Any_) -> Response:
    with st(request).db.read() as conn:
        rows = makeup.refund_list(conn, p)
    return render(request, "refunds.html", {"rows": rows, "approvers": makeup.REFUND_APPROVERS})


@router.post("/refunds")
async def refund_submit(request: Request, p: RefundMaker) -> Response:
    f = await form(request)
    _ = translator(request)
    original_id = _int(f.get("original_id")) or 0
    try:
        amount = parse_yuan(str(f.get("amount", "")))
    except ValueError:
        return redirect(f"/transactions/{original_id}", _("The amount is not valid: use yuan, e.g. 12.34."), "error")
    try:
        with st(request).db.write() as conn:
            rid = makeup.request_refund(conn, p, original_id, amount, str(f.get("reason", "")))
    except NotFound:
        raise
    except ConsoleError as e:
        return redirect(f"/transactions/{original_id}", _(e.message, **e.fields), "error")
    return redirect("/refunds", _("Refund request #{id} recorded; it runs after a second person approves it.", id=rid))


async def _decide_refund(request: Request, rid: int, p: Principal, approve: bool) -> Response:
    f = await form(request)
    _ = translator(request)
    try:
        with st(request).db.write() as conn:
            res = makeup.decide_refund(conn, p, rid, approve, str(f.get("note", "")), st(request).tz)
    except NotFound:
        raise
    except ConsoleError as e:
        return redirect("/refunds", _(e.message, **e.fields), "error")
    if res["status"] == "executed":
        return redirect("/refunds", _("Refund executed: response {code}.", code=res["response_code"]))
    if res["status"] == "failed":
        return redirect("/refunds", _("Refund failed: response {code}.", code=res["response_code"]), "error")
    return redirect("/refunds", _("Rejected."))


@router.post("/refunds/{rid}/approve")
async def refund_approve(request: Request, rid: int, p: RefundApprover) -> Response:
    return await _decide_refund(request, rid, p, True)


@router.post("/refunds/{rid}/reject")
async def refund_reject(request: Request, rid: int, p: RefundApprover) -> Response:
    return await _decide_refund(request, rid, p, False)


# ------------------------------------------------------------------ terminals, merchants, sign-on register


@router.get("/terminals", response_class=HTMLResponse)
def terminals_page(request: Request, p: Any_) -> Response:
    state = st(request)
    with state.db.read() as conn:
        rows = terminals.list_terminals(conn, p, state.tz)
        lapsing = lapse_warnings(conn, None if p.is_acquirer else [p.merchant_id] if p.merchant_id else [])
    return render(request, "terminals.html", {"rows": rows, "today": today(state.tz), "lapsing": lapsing})


@router.get("/terminals/{terminal_id}", response_class=HTMLResponse)
def terminal_page(request: Request, terminal_id: str, p: Any_) -> Response:
    state = st(request)
    with state.db.read() as conn:
        t = terminals.get_terminal(conn, p, terminal_id, state.tz)
    from posgate.dialect.profiles import PROFILES

    return render(request, "terminal.html", {"x": t, "params": PARAMS, "can_act": p.is_acquirer, "profiles": PROFILES})


async def _terminal_action(request: Request, terminal_id: str, p: Principal, action: str) -> Response:
    f = await form(request)
    _ = translator(request)
    reason = str(f.get("reason", ""))
    url = f"/terminals/{terminal_id}"
    try:
        with st(request).db.write() as conn:
            if action == "resign":
                terminals.request_resign(conn, p, terminal_id, reason)
                msg = _("Remote make-up sign-on requested: the terminal is told to sign on with its next reply.")
            elif action == "approve-device":
                serial = terminals.approve_device(conn, p, terminal_id, reason)
                msg = _("Device {serial} approved: its next sign-on opens a new batch.", serial=serial)
            elif action == "profile":
                terminals.set_profile(conn, p, terminal_id, str(f.get("profile", "")), reason)
                msg = _("Dialect profile saved: the host speaks it from the terminal's next request.")
            elif action == "algorithm":
                alg = str(f.get("algorithm", ""))
                kcv = terminals.set_algorithm(conn, p, terminal_id, alg, reason, st(request).settings.keyring)
                msg = _("Keys set to {alg} (TMK check value {kcv}): the terminal signs on again with the new scheme.",
                        alg=alg.upper(), kcv=kcv)  # fmt: skip
            elif action in ("suspend", "reinstate"):
                terminals.set_terminal_status(conn, p, terminal_id, action == "suspend", reason)
                msg = _("Terminal suspended.") if action == "suspend" else _("Terminal reinstated.")
            else:
                terminals.set_params(conn, p, terminal_id, {k: str(v) for k, v in f.items() if k != "csrf_token"})
                msg = _("Parameters saved: the terminal downloads them after its next transaction.")
    except NotFound:
        raise
    except ConsoleError as e:
        return redirect(url, _(e.message, **e.fields), "error")
    return redirect(url, msg)


@router.post("/terminals/{terminal_id}/resign")
async def terminal_resign(request: Request, terminal_id: str, p: Acq) -> Response:
    return await _terminal_action(request, terminal_id, p, "resign")


@router.post("/terminals/{terminal_id}/approve-device")
async def terminal_approve_device(request: Request, terminal_id: str, p: Acq) -> Response:
    return await _terminal_action(request, terminal_id, p, "approve-device")


@router.post("/terminals/{terminal_id}/suspend")
async def terminal_suspend(request: Request, terminal_id: str, p: Acq) -> Response:
    return await _terminal_action(request, terminal_id, p, "suspend")


@router.post("/terminals/{terminal_id}/reinstate")
async def terminal_reinstate(request: Request, terminal_id: str, p: Acq) -> Response:
    return await _terminal_action(request, terminal_id, p, "reinstate")


@router.post("/terminals/{terminal_id}/profile")
async def terminal_profile(request: Request, terminal_id: str, p: Acq) -> Response:
    return await _terminal_action(request, terminal_id, p, "profile")


@router.post("/terminals/{terminal_id}/algorithm")
async def terminal_algorithm(request: Request, terminal_id: str, p: Acq) -> Response:
    return await _terminal_action(request, terminal_id, p, "algorithm")


@router.post("/terminals/{terminal_id}/params")
async def terminal_params(request: Request, terminal_id: str, p: Acq) -> Response:
    return await _terminal_action(request, terminal_id, p, "params")


@router.get("/merchants", response_class=HTMLResponse)
def merchants_page(request: Request, p: Money) -> Response:
    with st(request).db.read() as conn:
        rows = terminals.list_merchants(conn, p)
    return render(request, "merchants.html", {"rows": rows})


async def _merchant_action(request: Request, merchant_id: str, p: Principal, suspend: bool) -> Response:
    f = await form(request)
    _ = translator(request)
    try:
        with st(request).db.write() as conn:
            terminals.set_merchant_status(conn, p, merchant_id, suspend, str(f.get("reason", "")))
    except NotFound:
        raise
    except ConsoleError as e:
        return redirect("/merchants", _(e.message, **e.fields), "error")
    return redirect("/merchants", _("Merchant suspended.") if suspend else _("Merchant reinstated."))


@router.post("/merchants/{merchant_id}/suspend")
async def merchant_suspend(request: Request, merchant_id: str, p: Acq) -> Response:
    return await _merchant_action(request, merchant_id, p, True)


@router.post("/merchants/{merchant_id}/reinstate")
async def merchant_reinstate(request: Request, merchant_id: str, p: Acq) -> Response:
    return await _merchant_action(request, merchant_id, p, False)


def _register_filter(request: Request) -> dict[str, str]:
    keys = ("terminal_id", "merchant_id", "kind", "cause", "day_from", "day_to")
    return {k: request.query_params.get(k, "").strip() for k in keys}


@router.get("/sign-ons", response_class=HTMLResponse)
def signons_page(request: Request, p: Any_) -> Response:
    f = _register_filter(request)
    with st(request).db.read() as conn:
        rows = terminals.register(conn, p, f, limit=500)
    return render(request, "signons.html", {"rows": rows, "f": f,
                                            "csv_url": "/sign-ons.csv?" + urlencode({k: v for k, v in f.items() if v})})  # fmt: skip


@router.get("/sign-ons.csv")
def signons_csv(request: Request, p: Any_) -> Response:
    f = _register_filter(request)
    state = st(request)
    with state.db.read() as conn:
        rows = terminals.register(conn, p, f, limit=100_000)
    return Response(terminals.register_csv(rows, state.tz, current_lang(request, state), translator(request)), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="sign-on-register.csv"'})  # fmt: skip


# ------------------------------------------------------------------ settlement


@router.get("/settlement", response_class=HTMLResponse)
def settlement_page(request: Request, p: Money) -> Response:
    state = st(request)
    day_to = request.query_params.get("day_to") or today(state.tz)
    day_from = request.query_params.get("day_from") or day_offset(day_to, -13)
    with state.db.read() as conn:
        stmts = settlement.statements(conn, p, state.tz, day_from, day_to)
        batches = settlement.batches(conn, p)
    return render(request, "settlement.html", {"stmts": stmts, "batches": batches, "day_from": day_from, "day_to": day_to})


@router.get("/settlement/batches/{settlement_id}", response_class=HTMLResponse)
def batch_page(request: Request, settlement_id: int, p: Money) -> Response:
    with st(request).db.read() as conn:
        b = settlement.batch(conn, p, settlement_id)
    if b is None:
        raise NotFound()
    return render(request, "batch.html", {"b": b["settlement"], "diffs": b["differences"],
                                          "totals": settlement.totals_table(b["settlement"])})  # fmt: skip


def _statement(request: Request, p: Principal, merchant_id: str, day: str) -> dict[str, Any]:
    if p.merchant_id and merchant_id != p.merchant_id and not p.is_acquirer:
        raise NotFound()
    try:
        from datetime import date

        date.fromisoformat(day)
    except ValueError:
        raise NotFound() from None
    state = st(request)
    with state.db.read() as conn:
        try:
            return settlement.statement(conn, merchant_id, day, state.tz)
        except LookupError:
            raise NotFound() from None


@router.get("/settlement/statements/{merchant_id}/{day}.csv")
def statement_csv(request: Request, merchant_id: str, day: str, p: Money) -> Response:
    s = _statement(request, p, merchant_id, day)
    return Response(settlement.statement_csv(s, translator(request)), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="statement-{merchant_id}-{day}.csv"'})  # fmt: skip


@router.get("/settlement/statements/{merchant_id}/{day}.pdf")
def statement_pdf(request: Request, merchant_id: str, day: str, p: Money) -> Response:
    s = _statement(request, p, merchant_id, day)
    lang = current_lang(request, st(request))
    return Response(settlement.statement_pdf(s, lang), media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="statement-{merchant_id}-{day}.pdf"'})  # fmt: skip


@router.get("/settlement/statements/{merchant_id}/{day}", response_class=HTMLResponse)
def statement_page(request: Request, merchant_id: str, day: str, p: Money) -> Response:
    s = _statement(request, p, merchant_id, day)
    return render(request, "statement.html", {"s": s})


# ------------------------------------------------------------------ backups


@router.get("/backups", response_class=HTMLResponse)
def backups_page(request: Request, p: AdminOnly) -> Response:
    state = st(request)
    with state.db.read() as conn:
        rows = backups_mod.list_backups(conn)
    return render(request, "backups.html", {"rows": rows, "cfg": state.settings})


@router.post("/backups")
async def backups_start(request: Request, p: AdminOnly) -> Response:
    state = st(request)
    _ = translator(request)
    bid, manifest, error = await run_in_threadpool(backups_mod.run_backup, state.db.engine, state.settings.backup_dir,
                                                   kind="manual", actor=p.username)  # fmt: skip
    if error:
        # In words a support person can act on, in the reader's language; the technical text
        # (masked) is in the log and the backups table, not on the page.
        why = labeller(_)("backup_cause", backups_mod.cause_of(error))
        return redirect("/backups", _("The backup failed. {cause} The technical details are in the console's log.", cause=why), "error")
    return redirect("/backups", _("Backup #{id} written and its manifest recorded.", id=bid))


@router.get("/backups/{backup_id}/download")
def backup_download(request: Request, backup_id: int, p: AdminOnly) -> Response:
    from fastapi.responses import FileResponse

    path = backups_mod.file_for_download(st(request).db, backup_id, p.username)
    if path is None:
        raise NotFound()
    return FileResponse(path, media_type="application/x-tar", filename=path.name)


# ------------------------------------------------------------------ IC parameters and CA public keys


@router.get("/ic-params", response_class=HTMLResponse)
def ic_params_page(request: Request, p: Acq) -> Response:
    with st(request).db.read() as conn:
        data = ic_params.page(conn)
    return render(request, "ic_params.html", data)


async def _ic_change(request: Request, p: Principal, change: Any, done: str) -> Response:
    f = await form(request)
    _ = translator(request)
    try:
        with st(request).db.write() as conn:
            change(conn, f)
    except NotFound:
        raise
    except ConsoleError as e:
        return redirect("/ic-params", _(e.message, **e.fields), "error")
    return redirect("/ic-params", _(done))


@router.post("/ic-params/aids")
async def ic_aid_save(request: Request, p: Acq) -> Response:
    return await _ic_change(request, p, lambda conn, f: ic_params.save_aid(conn, p, f),
                            "Saved. Terminals download the new IC parameters after their next transaction.")


@router.post("/ic-params/aids/remove")
async def ic_aid_remove(request: Request, p: Acq) -> Response:
    return await _ic_change(request, p, lambda conn, f: ic_params.remove_aid(conn, p, str(f.get("aid", ""))),
                            "Removed. Terminals download the list again after their next transaction.")


@router.post("/ic-params/capks")
async def ic_capk_save(request: Request, p: Acq) -> Response:
    return await _ic_change(request, p, lambda conn, f: ic_params.save_capk(conn, p, f),
                            "Saved. Terminals download the new CA public keys after their next transaction.")


@router.post("/ic-params/capks/remove")
async def ic_capk_remove(request: Request, p: Acq) -> Response:
    return await _ic_change(request, p, lambda conn, f: ic_params.remove_capk(conn, p, str(f.get("rid", "")),
                                                                             str(f.get("index", ""))),
                            "Removed. Terminals download the list again after their next transaction.")


# ------------------------------------------------------------------ users, audit


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, p: UserAdmin) -> Response:
    with st(request).db.read() as conn:
        rows = users.list_users(conn, p)
        mids = [m["merchant_id"] for m in terminals.list_merchants(conn, p)]
    return render(request, "users.html", {"rows": rows, "merchant_ids": mids, "created": None})


@router.post("/users")
async def users_create(request: Request, p: UserAdmin) -> Response:
    f = await form(request)
    _ = translator(request)
    try:
        with st(request).db.write() as conn:
            uid, password = users.create_by(conn, p, str(f.get("username", "")), str(f.get("role", "")),
                                            str(f.get("merchant_id", "")) or None, str(f.get("display_name", "")))  # fmt: skip
    except ConsoleError as e:
        return redirect("/users", _(e.message, **e.fields), "error")
    with st(request).db.read() as conn:
        rows = users.list_users(conn, p)
        mids = [m["merchant_id"] for m in terminals.list_merchants(conn, p)]
    return render(request, "users.html", {"rows": rows, "merchant_ids": mids,
                                          "created": (str(f.get("username", "")).strip().lower(), password)})  # fmt: skip


async def _user_action(request: Request, user_id: int, p: Principal, action: str) -> Response:
    _ = translator(request)
    try:
        with st(request).db.write() as conn:
            if action == "reset":
                password = users.reset_password(conn, p, user_id)
            elif action == "unlock":
                users.unlock(conn, p, user_id)
            else:
                users.set_active(conn, p, user_id, action == "enable")
    except NotFound:
        raise
    except ConsoleError as e:
        return redirect("/users", _(e.message, **e.fields), "error")
    if action == "reset":
        with st(request).db.read() as conn:
            rows = users.list_users(conn, p)
            mids = [m["merchant_id"] for m in terminals.list_merchants(conn, p)]
        name = next((r["username"] for r in rows if r["id"] == user_id), "")
        return render(request, "users.html", {"rows": rows, "merchant_ids": mids, "created": (name, password)})
    return redirect("/users", _("Saved."))


@router.post("/users/{user_id}/reset")
async def user_reset(request: Request, user_id: int, p: UserAdmin) -> Response:
    return await _user_action(request, user_id, p, "reset")


@router.post("/users/{user_id}/unlock")
async def user_unlock(request: Request, user_id: int, p: UserAdmin) -> Response:
    return await _user_action(request, user_id, p, "unlock")


@router.post("/users/{user_id}/disable")
async def user_disable(request: Request, user_id: int, p: UserAdmin) -> Response:
    return await _user_action(request, user_id, p, "disable")


@router.post("/users/{user_id}/enable")
async def user_enable(request: Request, user_id: int, p: UserAdmin) -> Response:
    return await _user_action(request, user_id, p, "enable")


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, p: Auditor) -> Response:
    f = {k: request.query_params.get(k, "").strip() for k in ("actor", "action", "object_id")}
    with st(request).db.read() as conn:
        rows = audit_entries(conn, p, f)
    return render(request, "audit.html", {"rows": rows, "f": f})


# ------------------------------------------------------------------ routing (issue 13, docs/upstream.md)


@router.get("/routing", response_class=HTMLResponse)
def routing_page(request: Request, p: Acq) -> Response:
    from posgate.network.routing import CARD_KINDS
    from posgate.store.admin import list_routes, list_stand_in_limits

    with st(request).db.read() as conn:
        routes, limits = list_routes(conn), list_stand_in_limits(conn)
    return render(request, "routing.html", {"routes": routes, "limits": limits, "kinds": CARD_KINDS,
                                            "can_edit": p.role == ACQUIRER_ADMIN})  # fmt: skip


@router.post("/routing")
async def routing_add(request: Request, p: AdminOnly) -> Response:
    from posgate.store.admin import AdminError, add_route

    f = await form(request)
    _ = translator(request)
    try:
        priority = int(str(f.get("priority", "0") or "0"))
        with st(request).db.write() as conn:
            pk = add_route(conn, str(f.get("bin_low", "")).strip(), str(f.get("bin_high", "")).strip() or None,
                           "issuer" if f.get("target_kind", "issuer") == "issuer" else str(f.get("link", "")).strip(),
                           card_kind=str(f.get("card_kind", "debit")),
                           priority=priority, actor=p.username)  # fmt: skip
    except (AdminError, ValueError):
        msg = _("The route was not added: the BIN range is digits (both ends of one length), the target is the built-in issuer or a link name.")  # noqa: E501
        return redirect("/routing", msg, "error")
    return redirect("/routing", _("Route #{id} added; the host applies it within seconds.", id=pk))


@router.post("/routing/{route_id}/remove")
async def routing_remove(request: Request, route_id: int, p: AdminOnly) -> Response:
    from posgate.store.admin import AdminError, remove_route

    await form(request)
    _ = translator(request)
    try:
        with st(request).db.write() as conn:
            remove_route(conn, route_id, actor=p.username)
    except AdminError:
        return redirect("/routing", _("No such route."), "error")
    return redirect("/routing", _("Route #{id} removed.", id=route_id))
