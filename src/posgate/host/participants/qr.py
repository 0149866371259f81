"""Scan-to-pay query (docs/decisions.md Q1–Q2): the terminal asks about a QR sale that was
answered ``09`` (the wallet waits for the customer's password).

``FindQrOriginal``: the sale with 61's batch + STAN on this terminal, paid by a scanned code
(22 = ``03x``) — the same code as in the query's 59 — else ``25``; a different amount ``64``.
When that sale is final the query answers its outcome without asking the issuer again (a query
may be repeated at will); when it is still ``pending`` the issuer is asked ``confirm_debit``.

``ConfirmQrOriginal`` writes the issuer's approval onto the sale itself — it is the sale that
counts in the totals and that a void, a refund or a reversal finds; the query row only records
that the question was asked (it counts nowhere). A final decline of the issuer is written onto
the sale by ``FindQrOriginal.abort`` (the pipeline calls it when a later step declines).
"""

from __future__ import annotations

from posgate.dialect.qr import PENDING, is_qr_entry
from posgate.host.context import Context
from posgate.host.participants.originals import on_terminal
from posgate.host.pipeline import Participant


class FindQrOriginal(Participant):
    def prepare(self, ctx: Context) -> str:
        f61 = ctx.f61
        assert f61 is not None
        o = on_terminal(ctx, f61.orig_batch_no, f61.orig_stan, ("sale",))
        if o is None or not is_qr_entry(o.entry_mode):
            return ctx.decline(self.name, "25", "no QR sale with that batch and STAN")
        if o.pan_hash != ctx.pan_hash:
            return ctx.decline(self.name, "25", f"the payment code is not the one of #{o.id}")
        if ctx.amount and ctx.amount != o.amount:
            return ctx.decline(self.name, "64", f"amount differs from #{o.id}")
        ctx.original = o
        ctx.amount = o.amount
        ctx.rrn = o.rrn  # the answer carries the sale's reference, as the sale's reply would
        ctx.card_organisation = o.card_organisation
        if o.status == "pending":
            ctx.extra["issuer_kind"] = "confirm_debit"
            ctx.extra["issuer_amount"] = o.amount
            return ctx.prepared(self.name, f"#{o.id} pending: asking the issuer")
        # Final already: the same answer again (approved, later voided or reversed, or declined).
        ctx.response_code = o.response_code
        ctx.auth_code = o.auth_code
        if o.status == "reversed":
            ctx.response_code = "25"  # nothing paid any more: the terminal must not print a slip
        return ctx.done(self.name, f"#{o.id} already {o.status}")

    def abort(self, ctx: Context) -> None:
        o, r = ctx.original, ctx.issuer_result
        if (
            o is None
            or o.id is None
            or o.status != "pending"
            or r is None
            or r.response_code in ("00", PENDING)
        ):
            return
        ctx.store.update_transaction(o.id, status="declined", response_code=r.response_code)
        ctx.trace.append([self.name, "ABORT", f"#{o.id} declined {r.response_code}"])


class ConfirmQrOriginal(Participant):
    def prepare(self, ctx: Context) -> str:
        o, r = ctx.original, ctx.issuer_result
        assert o is not None and o.id is not None and r is not None
        changes: dict[str, object] = {"status": "approved", "response_code": "00", "auth_code": r.auth_code}
        if r.upstream_stan is not None:  # confirmed upstream: a reversal of the sale must name this message
            changes["upstream_stan"] = r.upstream_stan
        ctx.store.update_transaction(o.id, **changes)
        return ctx.prepared(self.name, f"#{o.id} approved")
