"""Ask the issuer (port :class:`~posgate.host.ports.Issuer`) and take its answer as the result.

The kind of request comes from the route (``AuthorizeWithIssuer("debit")``) unless an earlier
participant set ``ctx.extra["issuer_kind"]`` / ``["issuer_amount"]`` / ``["hold_amount"]``
(adjustments, completions). The transaction's RRN is drawn here, so the issuer sees the same
reference the terminal will. If a later participant declines, :meth:`abort` undoes an
approved authorisation with its inverse (jPOS abort semantics).
"""

from __future__ import annotations

from typing import Any

from posgate.dialect.qr import PENDING
from posgate.host.context import Context
from posgate.host.pipeline import Participant
from posgate.host.ports import IssuerRequest
from posgate.iso8583 import TLV

INVERSE = {
    "debit": "reverse_debit", "force_debit": "reverse_debit", "confirm_debit": "reverse_debit", "credit": "reverse_credit",
    "hold": "reverse_hold", "release_hold": "reverse_release", "capture_hold": "reverse_capture",
}  # fmt: skip


def _chip(ctx: Context) -> dict[str, Any]:
    """Field 55 (the card's cryptogram and what it signed) and 23 (PAN sequence number) for the
    issuer's ARQC check (issue 14); nothing for a request without field 55."""
    msg = ctx.msg
    icc = msg.get(55) if msg is not None else None
    if not isinstance(icc, TLV):
        return {}
    assert msg is not None
    return {"icc": icc.raw, "pan_seq": msg.text(23)}


def is_swipe(ctx: Context) -> bool:
    return ctx.msg is not None and ctx.msg.text(22).startswith("02")


def is_fallback(ctx: Context) -> bool:
    """A stripe read after a chip failure: 22 = 02x with 60.5 (chip condition) = 2."""
    return is_swipe(ctx) and ctx.f60 is not None and ctx.f60.chip_condition == "2"


def _where(ctx: Context) -> dict[str, Any]:
    """Where the card was presented (fields 41, 42, 18 of a message sent upstream)."""
    t, m = ctx.terminal, ctx.merchant
    return {"terminal_id": t.terminal_id if t else "", "merchant_id": t.merchant_id if t else "", "stan": ctx.stan,
            "mcc": m.mcc if m else "", "entry_mode": ctx.msg.text(22) if ctx.msg is not None else ""}  # fmt: skip


class AuthorizeWithIssuer(Participant):
    def __init__(self, kind: str) -> None:
        self.kind = kind

    def prepare(self, ctx: Context) -> str:
        if ctx.pan is None:
            return ctx.decline(self.name, "30", "no card data")
        kind = ctx.extra.get("issuer_kind", self.kind)
        amount = ctx.extra.get("issuer_amount", ctx.amount)
        if ctx.rrn is None:
            ctx.rrn = ctx.store.next_rrn(ctx.now)
        original = ctx.original
        request = IssuerRequest(
            kind=kind, pan=ctx.pan, expiry=ctx.expiry, amount=amount, pin_block=ctx.pin_block,
            pin_key=ctx.issuer.zone_key if ctx.pin_block else None, reference=ctx.rrn,
            original_reference=(original.rrn or "") if original else "",
            hold_amount=ctx.extra.get("hold_amount", 0), **_chip(ctx), **_where(ctx),
            swiped=is_swipe(ctx), fallback=is_fallback(ctx),  # the fallback rule (docs/decisions.md C4)
            original_upstream_stan=(original.upstream_stan or "") if original else "",
            original_route=original.route if original else "",
        )  # fmt: skip
        ctx.extra["issuer_request"] = request
        r = ctx.issuer.authorize(request, ctx.now)
        ctx.issuer_result = r
        if r.organisation:
            ctx.card_organisation = r.organisation
        if r.response_code != "00":
            if r.response_code == PENDING and ctx.op is not None and ctx.op.name == "sale":
                ctx.status = "pending"  # a QR payment waiting for the password: settled by a query (Q2)
            return ctx.decline(self.name, r.response_code, f"issuer: {kind}")
        ctx.response_code = "00"
        ctx.auth_code = r.auth_code
        return ctx.prepared(self.name, f"{kind} {amount}")

    def abort(self, ctx: Context) -> None:
        request = ctx.extra.get("issuer_request")
        inverse = INVERSE.get(request.kind) if isinstance(request, IssuerRequest) else None
        if inverse is None or ctx.issuer_result is None or ctx.issuer_result.response_code != "00":
            return
        assert isinstance(request, IssuerRequest)
        r = ctx.issuer_result
        undo = IssuerRequest(kind=inverse, pan=request.pan, expiry=request.expiry, amount=request.amount,
                             reference=request.reference, hold_amount=request.hold_amount,
                             terminal_id=request.terminal_id, merchant_id=request.merchant_id, mcc=request.mcc,
                             stan=request.stan,
                             original_upstream_stan=r.upstream_stan or "", original_route=r.route)  # fmt: skip
        ctx.issuer.authorize(undo, ctx.now)
        ctx.trace.append([self.name, "ABORT", f"undone with {inverse}"])
