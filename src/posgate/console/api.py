"""JSON API under ``/api/v1`` (bearer tokens; no cookies, hence no CSRF). Amounts in fen."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from posgate.console import backup as backups_mod
from posgate.console import dashboard, makeup, notices, settlement, terminals, txns
from posgate.console.app import ConsoleState, translator
from posgate.console.audit_view import audit_entries
from posgate.console.auth import (
    ACQUIRER,
    ACQUIRER_ADMIN,
    ALL,
    MERCHANT,
    MERCHANT_ADMIN,
    SUPPORT,
    Guard,
    Principal,
    authenticate,
    client_address,
    create_session,
    revoke_session,
)
from posgate.console.fmt import aware, day_offset, today
from posgate.console.receipt import render_pdf
from posgate.console.txns import ConsoleError, NotFound, TxnQuery

router = APIRouter(prefix="/api/v1")

Any_ = Annotated[Principal, Depends(Guard(*ALL, api=True))]
Acq = Annotated[Principal, Depends(Guard(*ACQUIRER, api=True))]
AdminOnly = Annotated[Principal, Depends(Guard(ACQUIRER_ADMIN, api=True))]
Approver = Annotated[Principal, Depends(Guard(MERCHANT_ADMIN, SUPPORT, ACQUIRER_ADMIN, api=True))]
RefundMaker = Annotated[Principal, Depends(Guard(*MERCHANT, ACQUIRER_ADMIN, api=True))]
RefundApprover = Annotated[Principal, Depends(Guard(MERCHANT_ADMIN, ACQUIRER_ADMIN, api=True))]
Money = Annotated[Principal, Depends(Guard(MERCHANT_ADMIN, *ACQUIRER, api=True))]
Auditor = Annotated[Principal, Depends(Guard(ACQUIRER_ADMIN, SUPPORT, MERCHANT_ADMIN, api=True))]


def st(request: Request) -> ConsoleState:
    return request.app.state.console


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, bytes | memoryview):
            continue
        if hasattr(v, "isoformat"):
            v = aware(v).isoformat() if hasattr(v, "tzinfo") else v.isoformat()  # type: ignore[union-attr]
        out[k] = v
    return out


# ------------------------------------------------------------------ auth


class TokenRequest(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=200)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int


@router.post("/auth/token", response_model=TokenResponse, tags=["auth"])
def token(request: Request, body: TokenRequest) -> Any:
    """Exchange a username and password for a short-lived bearer token (lockout applies)."""
    state = st(request)
    cfg = state.settings
    with state.db.write() as conn:
        res = authenticate(conn, body.username.strip().lower(), body.password, threshold=cfg.lockout_threshold,
                           lock_minutes=cfg.lockout_minutes, via="api", address=client_address(request))  # fmt: skip
        tok = None
        if res.ok and res.user is not None:
            tok = create_session(conn, res.user["id"], "api", timedelta(minutes=cfg.token_minutes))
    if tok is None:
        return JSONResponse({"detail": res.error}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
    return TokenResponse(access_token=tok, expires_in=cfg.token_minutes * 60)


@router.post("/auth/revoke", tags=["auth"])
def revoke(request: Request, p: Any_) -> dict[str, str]:
    """Invalidate the token used for this request."""
    tok = request.headers.get("authorization", "").partition(" ")[2].strip()
    with st(request).db.write() as conn:
        revoke_session(conn, tok)
    return {"status": "revoked"}


@router.get("/me", tags=["auth"])
def me(p: Any_) -> dict[str, Any]:
    return {"username": p.username, "display_name": p.display_name, "role": p.role, "merchant_id": p.merchant_id}


@router.get("/dashboard", tags=["dashboard"])
def dashboard_api(request: Request, p: Any_) -> dict[str, Any]:
    state = st(request)
    with state.db.read() as conn:
        f = dashboard.figures(conn, p, state.tz)
    f["chart"] = [{"day": d, "count": n, "amount": a} for d, n, a in f["chart"]]
    return f


# ------------------------------------------------------------------ transactions


@router.get("/transactions", tags=["transactions"])
def list_transactions(
    request: Request, p: Any_, rrn: str = "", terminal_id: str = "", merchant_id: str = "", unsigned: bool = False,
    day_from: str = "", day_to: str = "", card: str = "", amount: str = Query("", description="yuan, e.g. 12.34"),
    voucher: str = "", type: str = "", result: str = "", page: int = Query(1, ge=1),  # noqa: A002
    per_page: int = Query(100, ge=1, le=1000),
    method: str = Query("", description="card | qr | unionpay | wechat | alipay (scan-to-pay wallets)"),
) -> list[dict[str, Any]]:  # fmt: skip
    """Search transactions (newest first). Items carry ``amount`` in fen, ``signed`` and
    ``payment_method`` (``card``, or the QR wallet)."""
    state = st(request)
    q = TxnQuery(day_from=day_from, day_to=day_to, terminal_id=terminal_id, merchant_id=merchant_id, card=card,
                 amount=amount, rrn=rrn, voucher=voucher, type=type, result=result, unsigned=unsigned, page=page,
                 per_page=per_page, method=method if method in txns.PAYMENT_METHODS else "")  # fmt: skip
    with state.db.read() as conn:
        rows, _total = txns.search(conn, p, q, state.settings.keyring)
    return [txns.api_item(r, state.tz, p.is_acquirer) for r in rows]


@router.get("/transactions/{txn_id}", tags=["transactions"])
def get_transaction(request: Request, txn_id: int, p: Any_) -> dict[str, Any]:
    state = st(request)
    with state.db.read() as conn:
        d = txns.detail(conn, p, txn_id)
    item = txns.api_item(d["txn"], state.tz, p.is_acquirer)
    if p.is_acquirer:  # the pipeline's steps are for the acquirer's staff only
        item["trace"] = d["txn"].get("trace") or []
    item.update(
        response_text={"zh": d["response"].zh, "en": d["response"].en},
        needs_signature=d["needs_signature"], merchant_name=d["merchant"].get("name"),
        signature=None if not d["signature"] else {"at": _jsonable(d["signature"])["at"], "source": d["signature"]["source"],
                                                   "captured_by": d["signature"]["captured_by"]},
        children=[txns.api_item(c, state.tz, p.is_acquirer) for c in d["children"]],
    )  # fmt: skip
    return item


@router.get("/transactions/{txn_id}/receipt.pdf", tags=["transactions"], response_class=Response)
def transaction_receipt(request: Request, txn_id: int, p: Any_, lang: str = "zh") -> Response:
    state = st(request)
    with state.db.read() as conn:
        d = txns.detail(conn, p, txn_id)
    return Response(render_pdf(d["txn"], d["merchant"], d["signature"], state.tz, lang), media_type="application/pdf")


@router.get("/transactions/{txn_id}/signature.png", tags=["transactions"], response_class=Response)
def transaction_signature_png(request: Request, txn_id: int, p: Any_) -> Response:
    with st(request).db.read() as conn:
        d = txns.detail(conn, p, txn_id)
    if not d["signature"] or not d["signature"].get("png"):
        raise NotFound()
    return Response(bytes(d["signature"]["png"]), media_type="image/png")


@router.post("/transactions/{txn_id}/signature", tags=["transactions"], status_code=201,
             openapi_extra={"requestBody": {"required": True, "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}})  # fmt: skip
async def post_signature(request: Request, txn_id: int, p: Any_) -> dict[str, Any]:
    """Record a make-up signature (补签): the request body is the PNG (``Content-Type: image/png``)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "image/png":
        raise ConsoleError("The signature must be a PNG image.", 415)
    body = await request.body()
    if len(body) > txns.MAX_SIGNATURE_BYTES:
        raise ConsoleError("The signature image is too large.", 413)

    def do() -> int:
        with st(request).db.write() as conn:
            return txns.capture_signature(conn, p, txn_id, body, via="api")

    sig_id = await run_in_threadpool(do)
    return {"transaction_id": txn_id, "signature_id": sig_id, "signed": True}


@router.get("/unsigned", tags=["transactions"])
def unsigned(request: Request, p: Any_) -> list[dict[str, Any]]:
    state = st(request)
    with state.db.read() as conn:
        rows = txns.unsigned_list(conn, p)
    return [dict(txns.api_item(r, state.tz, p.is_acquirer), overdue=r["flagged_at"] is not None) for r in rows]


@router.get("/notices", tags=["notices"])
def notices_list(request: Request, p: Any_) -> list[dict[str, Any]]:
    """What wants attention (the console's bell): one item per kind with a count above zero."""
    state = st(request)
    _ = translator(request)
    with state.db.read() as conn:
        found = notices.collect(conn, p, state.settings)
    return [{"key": n.key, "count": n.count, "message": _(n.message, n=n.count, **n.fields), "href": n.href,
             "items": list(n.items)} for n in found]  # fmt: skip


# ------------------------------------------------------------------ make-up entries, differences


class MakeupIn(BaseModel):
    kind: str = Field(description="missing_sale | wrong_amount | annul | close_difference")
    reason: str = Field(max_length=2000)
    terminal_id: str = ""
    original_id: int | None = None
    difference_id: int | None = None
    amount: int | None = Field(None, description="fen: the sale's amount, or the correct amount")
    card_last4: str = ""
    reference: str = ""
    txn_day: str = ""
    evidence: str = Field("", max_length=4000)


class Decision(BaseModel):
    note: str = Field("", max_length=2000)


def _entry_out(e: dict[str, Any]) -> dict[str, Any]:
    d = _jsonable({k: v for k, v in e.items() if k != "evidence_file"})
    d["has_evidence_file"] = bool(e.get("evidence_file") or e.get("has_file"))
    return d


@router.get("/makeup-entries", tags=["make-up entries"])
def list_makeup(request: Request, p: Any_, status: str = "") -> list[dict[str, Any]]:
    with st(request).db.read() as conn:
        return [_entry_out(e) for e in makeup.entries(conn, p, status)]


@router.post("/makeup-entries", tags=["make-up entries"], status_code=201)
def propose_makeup(request: Request, body: MakeupIn, p: Any_) -> dict[str, Any]:
    with st(request).db.write() as conn:
        eid = makeup.propose(conn, p, kind=body.kind, reason=body.reason, terminal_id=body.terminal_id,
                             original_id=body.original_id, difference_id=body.difference_id, amount=body.amount,
                             card_last4=body.card_last4, reference=body.reference, txn_day=body.txn_day,
                             evidence=body.evidence)  # fmt: skip
        return _entry_out(makeup.entry(conn, p, eid))


@router.get("/makeup-entries/{entry_id}", tags=["make-up entries"])
def get_makeup(request: Request, entry_id: int, p: Any_) -> dict[str, Any]:
    with st(request).db.read() as conn:
        return _entry_out(makeup.entry(conn, p, entry_id))


@router.post("/makeup-entries/{entry_id}/approve", tags=["make-up entries"])
def approve_makeup(request: Request, entry_id: int, body: Decision, p: Approver) -> dict[str, Any]:
    with st(request).db.write() as conn:
        return makeup.decide(conn, p, entry_id, True, body.note, st(request).tz)


@router.post("/makeup-entries/{entry_id}/reject", tags=["make-up entries"])
def reject_makeup(request: Request, entry_id: int, body: Decision, p: Approver) -> dict[str, Any]:
    with st(request).db.write() as conn:
        return makeup.decide(conn, p, entry_id, False, body.note, st(request).tz)


@router.get("/differences", tags=["make-up entries"])
def list_differences(request: Request, p: Any_, include_resolved: bool = False) -> list[dict[str, Any]]:
    with st(request).db.read() as conn:
        return [_jsonable(d) for d in makeup.open_differences(conn, p, include_resolved)]


# ------------------------------------------------------------------ refunds


class RefundIn(BaseModel):
    original_id: int
    amount: int = Field(gt=0, description="fen")
    reason: str = Field(max_length=2000)


@router.get("/refund-requests", tags=["refunds"])
def list_refunds(request: Request, p: Any_, status: str = "") -> list[dict[str, Any]]:
    with st(request).db.read() as conn:
        return [_jsonable(r) for r in makeup.refund_list(conn, p, status)]


@router.post("/refund-requests", tags=["refunds"], status_code=201)
def request_refund(request: Request, body: RefundIn, p: RefundMaker) -> dict[str, Any]:
    with st(request).db.write() as conn:
        rid = makeup.request_refund(conn, p, body.original_id, body.amount, body.reason)
        return _jsonable(makeup.refund_request(conn, p, rid))


@router.post("/refund-requests/{rid}/approve", tags=["refunds"])
def approve_refund(request: Request, rid: int, body: Decision, p: RefundApprover) -> dict[str, Any]:
    with st(request).db.write() as conn:
        return makeup.decide_refund(conn, p, rid, True, body.note, st(request).tz)


@router.post("/refund-requests/{rid}/reject", tags=["refunds"])
def reject_refund(request: Request, rid: int, body: Decision, p: RefundApprover) -> dict[str, Any]:
    with st(request).db.write() as conn:
        return makeup.decide_refund(conn, p, rid, False, body.note, st(request).tz)


# ------------------------------------------------------------------ terminals, merchants, sign-ons


class ReasonIn(BaseModel):
    reason: str = Field(max_length=500)


# Key and MAC state of a terminal: for the acquirer's staff only.
TERMINAL_TECHNICAL = ("key_scheme", "tmk_kcv", "mac_failures", "last_response_codes", "recent_codes")


def _terminal_out(t: dict[str, Any], technical: bool = True) -> dict[str, Any]:
    hidden = {"id", *(() if technical else TERMINAL_TECHNICAL)}
    return _jsonable({k: v for k, v in t.items() if k not in hidden})


@router.get("/terminals", tags=["terminals"])
def list_terminals(request: Request, p: Any_) -> list[dict[str, Any]]:
    state = st(request)
    with state.db.read() as conn:
        return [_terminal_out(t, p.is_acquirer) for t in terminals.list_terminals(conn, p, state.tz)]


@router.get("/terminals/{terminal_id}", tags=["terminals"])
def get_terminal(request: Request, terminal_id: str, p: Any_) -> dict[str, Any]:
    state = st(request)
    with state.db.read() as conn:
        t = terminals.get_terminal(conn, p, terminal_id, state.tz)
    t["sign_ons"] = [_jsonable(s) for s in t["sign_ons"]]
    return _terminal_out(t, p.is_acquirer)


@router.post("/terminals/{terminal_id}/resign", tags=["terminals"])
def terminal_resign(request: Request, terminal_id: str, body: ReasonIn, p: Acq) -> dict[str, Any]:
    """Request a remote make-up sign-on: the host sets header requirement 3 on the terminal's next reply."""
    with st(request).db.write() as conn:
        terminals.request_resign(conn, p, terminal_id, body.reason)
    return {"terminal_id": terminal_id, "resign_requested": True}


@router.post("/terminals/{terminal_id}/approve-device", tags=["terminals"])
def terminal_approve_device(request: Request, terminal_id: str, body: ReasonIn, p: Acq) -> dict[str, Any]:
    with st(request).db.write() as conn:
        serial = terminals.approve_device(conn, p, terminal_id, body.reason)
    return {"terminal_id": terminal_id, "approved_serial": serial}


@router.post("/terminals/{terminal_id}/suspend", tags=["terminals"])
def terminal_suspend(request: Request, terminal_id: str, body: ReasonIn, p: Acq) -> dict[str, Any]:
    with st(request).db.write() as conn:
        terminals.set_terminal_status(conn, p, terminal_id, True, body.reason)
    return {"terminal_id": terminal_id, "status": "suspended"}


@router.post("/terminals/{terminal_id}/reinstate", tags=["terminals"])
def terminal_reinstate(request: Request, terminal_id: str, body: ReasonIn, p: Acq) -> dict[str, Any]:
    with st(request).db.write() as conn:
        terminals.set_terminal_status(conn, p, terminal_id, False, body.reason)
    return {"terminal_id": terminal_id, "status": "active"}


class AlgorithmIn(ReasonIn):
    algorithm: str = Field(pattern="^(des|sm4)$")


@router.post("/terminals/{terminal_id}/algorithm", tags=["terminals"])
def terminal_algorithm(request: Request, terminal_id: str, body: AlgorithmIn, p: Acq) -> dict[str, Any]:
    """Switch the terminal between DES and SM4 (国密) keys: its working keys are dropped and it
    must sign on again with the new scheme (006 for SM4)."""
    state = st(request)
    with state.db.write() as conn:
        kcv = terminals.set_algorithm(conn, p, terminal_id, body.algorithm, body.reason, state.settings.keyring)
    return {"terminal_id": terminal_id, "algorithm": body.algorithm, "tmk_kcv": kcv, "resign_requested": True}


@router.put("/terminals/{terminal_id}/params", tags=["terminals"])
def terminal_params(request: Request, terminal_id: str, body: dict[str, str], p: Acq) -> dict[str, Any]:
    """Replace the downloadable parameters (tag → value, spec 3.12); sets ``params_pending``."""
    with st(request).db.write() as conn:
        params = terminals.set_params(conn, p, terminal_id, body)
    return {"terminal_id": terminal_id, "params": params, "params_pending": True}


@router.get("/merchants", tags=["merchants"])
def list_merchants(request: Request, p: Money) -> list[dict[str, Any]]:
    with st(request).db.read() as conn:
        return [_jsonable(m) for m in terminals.list_merchants(conn, p)]


@router.post("/merchants/{merchant_id}/suspend", tags=["merchants"])
def merchant_suspend(request: Request, merchant_id: str, body: ReasonIn, p: Acq) -> dict[str, Any]:
    with st(request).db.write() as conn:
        terminals.set_merchant_status(conn, p, merchant_id, True, body.reason)
    return {"merchant_id": merchant_id, "status": "suspended"}


@router.post("/merchants/{merchant_id}/reinstate", tags=["merchants"])
def merchant_reinstate(request: Request, merchant_id: str, body: ReasonIn, p: Acq) -> dict[str, Any]:
    with st(request).db.write() as conn:
        terminals.set_merchant_status(conn, p, merchant_id, False, body.reason)
    return {"merchant_id": merchant_id, "status": "active"}


@router.get("/sign-ons", tags=["terminals"])
def sign_ons(request: Request, p: Any_, terminal_id: str = "", merchant_id: str = "", kind: str = "", cause: str = "",
             day_from: str = "", day_to: str = "", limit: int = Query(1000, ge=1, le=100_000)) -> list[dict[str, Any]]:  # fmt: skip
    """The sign-on register (签到登记), newest first."""
    f = {"terminal_id": terminal_id, "merchant_id": merchant_id, "kind": kind, "cause": cause, "day_from": day_from,
         "day_to": day_to}  # fmt: skip
    with st(request).db.read() as conn:
        return [_jsonable(r) for r in terminals.register(conn, p, f, limit=limit)]


# ------------------------------------------------------------------ settlement


@router.get("/settlements", tags=["settlement"])
def list_batches(request: Request, p: Money) -> list[dict[str, Any]]:
    with st(request).db.read() as conn:
        return [_jsonable(b) for b in settlement.batches(conn, p)]


@router.get("/settlements/{settlement_id}", tags=["settlement"])
def get_batch(request: Request, settlement_id: int, p: Money) -> dict[str, Any]:
    with st(request).db.read() as conn:
        b = settlement.batch(conn, p, settlement_id)
    if b is None:
        raise NotFound()
    return {"settlement": _jsonable(b["settlement"]), "differences": [_jsonable(d) for d in b["differences"]]}


@router.get("/statements", tags=["settlement"])
def list_statements(request: Request, p: Money, day_from: str = "", day_to: str = "") -> list[dict[str, Any]]:
    state = st(request)
    day_to = day_to or today(state.tz)
    day_from = day_from or day_offset(day_to, -13)
    with state.db.read() as conn:
        return settlement.statements(conn, p, state.tz, day_from, day_to)


@router.get("/statements/{merchant_id}/{day}", tags=["settlement"])
def get_statement(request: Request, merchant_id: str, day: str, p: Money,
                  format: str = Query("json", pattern="^(json|csv|pdf)$")) -> Any:  # noqa: A002  # fmt: skip
    if not p.is_acquirer and merchant_id != p.merchant_id:
        raise NotFound()
    state = st(request)
    from datetime import date

    try:
        date.fromisoformat(day)
    except ValueError:
        raise NotFound() from None
    with state.db.read() as conn:
        try:
            s = settlement.statement(conn, merchant_id, day, state.tz)
        except LookupError:
            raise NotFound() from None
    if format == "csv":
        return Response(settlement.statement_csv(s, translator(request)), media_type="text/csv; charset=utf-8")
    if format == "pdf":
        return Response(settlement.statement_pdf(s, "zh_CN"), media_type="application/pdf")
    return s


# ------------------------------------------------------------------ backups, audit


@router.get("/backups", tags=["backups"])
def list_backups(request: Request, p: AdminOnly) -> list[dict[str, Any]]:
    with st(request).db.read() as conn:
        return [_jsonable(b) for b in backups_mod.list_backups(conn)]


@router.post("/backups", tags=["backups"], status_code=201)
async def start_backup(request: Request, p: AdminOnly) -> dict[str, Any]:
    state = st(request)
    bid, manifest, error = await run_in_threadpool(backups_mod.run_backup, state.db.engine, state.settings.backup_dir,
                                                   kind="manual", actor=p.username)  # fmt: skip
    if error:
        raise ConsoleError("The backup failed: {error}", 500, error=error)
    assert manifest is not None
    return {"id": bid, "file": manifest["file"], "size": manifest["size"], "sha256": manifest["sha256"],
            "row_counts": manifest["row_counts"], "txn_checksum": manifest["txn_checksum"]}  # fmt: skip


@router.get("/backups/{backup_id}/download", tags=["backups"], response_class=Response)
def download_backup(request: Request, backup_id: int, p: AdminOnly) -> Response:
    path = backups_mod.file_for_download(st(request).db, backup_id, p.username)
    if path is None:
        raise NotFound()
    return FileResponse(path, media_type="application/x-tar", filename=path.name)


@router.get("/audit", tags=["audit"])
def audit_api(request: Request, p: Auditor, actor: str = "", action: str = "", object_id: str = "") -> list[dict[str, Any]]:
    with st(request).db.read() as conn:
        return [_jsonable(r) for r in audit_entries(conn, p, {"actor": actor, "action": action, "object_id": object_id})]
