"""The clearing pages (support desk and acquirer administrator): imported clearing files with the
count of each outcome, the differences (filters, detail), and their maker-checker resolution.
Thin: every handler calls :mod:`posgate.clearing.service`."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from posgate.clearing import service
from posgate.clearing.match import DIFFERENCES, OUTCOMES
from posgate.console.app import ConsoleState, redirect, render, translator
from posgate.console.auth import ACQUIRER_ADMIN, SUPPORT, Guard, Principal
from posgate.console.txns import NotFound

router = APIRouter(include_in_schema=False)
Desk = Annotated[Principal, Depends(Guard(SUPPORT, ACQUIRER_ADMIN))]


def _state(request: Request) -> ConsoleState:
    state: ConsoleState = request.app.state.console
    return state


@router.get("/clearing", response_class=HTMLResponse)
def clearing_page(request: Request, p: Desk) -> Response:
    f = service.DiffFilter.from_params(request.query_params)
    with _state(request).db.read() as conn:
        files = service.files(conn)
        diffs = service.differences(conn, f)
    return render(request, "clearing.html", {
        "files": files, "diffs": diffs, "f": f, "outcomes": OUTCOMES, "kinds": DIFFERENCES,
        "statuses": service.DIFF_STATUSES, "query": urlencode(f.as_params()),
    })  # fmt: skip


@router.get("/clearing/differences/{diff_id}", response_class=HTMLResponse)
def difference_page(request: Request, diff_id: int, p: Desk) -> Response:
    with _state(request).db.read() as conn:
        try:
            full = service.difference(conn, diff_id)
        except service.ClearingError:
            raise NotFound() from None
        clearing_file = service.clearing_file(conn, full["d"]["file_id"])
    pending = full["pending"]
    return render(request, "clearing_difference.html", {
        **full, "file": clearing_file, "effect": service.effect_of(full["d"]), "actions": service.ACTIONS,
        "can_decide": pending is not None and pending["proposed_by"] != p.username,
    })  # fmt: skip


async def _form(request: Request) -> dict[str, Any]:
    f = await request.form()
    return {k: v for k, v in f.items() if isinstance(v, str)}


async def _act(request: Request, diff_id: int, p: Principal, what: str) -> Response:
    f = await _form(request)
    _ = translator(request)
    url = f"/clearing/differences/{diff_id}"
    state = _state(request)
    try:
        with state.db.write() as conn:
            if what == "propose":
                service.propose(conn, p.username, diff_id, str(f.get("action", "")), str(f.get("note", "")))
                msg = _("Proposal recorded; a second person must approve it.")
            else:
                res = service.decide(
                    conn, p.username, diff_id, what == "approve", str(f.get("note", "")), state.tz
                )
                if res["status"] == "rejected":
                    msg = _("Rejected: the difference is open again.")
                elif res["result_txn_id"] is None:
                    msg = _("Approved: the difference is resolved; the ledger is unchanged.")
                else:
                    msg = _(
                        "Approved: the ledger has a new record #{id}; merchant settlement counts it.",
                        id=res["result_txn_id"],
                    )
    except service.ClearingError as e:
        if e.status == 404:
            raise NotFound() from None
        return redirect(url, _(e.message, **e.fields), "error")
    return redirect(url, msg)


@router.post("/clearing/differences/{diff_id}/propose")
async def difference_propose(request: Request, diff_id: int, p: Desk) -> Response:
    return await _act(request, diff_id, p, "propose")


@router.post("/clearing/differences/{diff_id}/approve")
async def difference_approve(request: Request, diff_id: int, p: Desk) -> Response:
    return await _act(request, diff_id, p, "approve")


@router.post("/clearing/differences/{diff_id}/reject")
async def difference_reject(request: Request, diff_id: int, p: Desk) -> Response:
    return await _act(request, diff_id, p, "reject")
