"""Refund (3.8, 0220): by the original's RRN (37) and date (61.3), same merchant, any terminal,
batch or day. Partial refunds may repeat until the original amount is used up.

``25`` no approved sale/completion with that RRN at this merchant (or 61.3 is not its date,
or another card); ``12`` the original was voided, reversed or adjusted; ``64`` this refund
alone exceeds the original amount; ``61`` together with earlier refunds it would.
"""

from __future__ import annotations

from posgate.host.context import Context
from posgate.host.participants.originals import found, mmdd
from posgate.host.pipeline import Participant

REFUNDABLE = frozenset({"sale", "completion", "completion_advice", "offline_settlement", "settlement_adjust",
                        "tip_adjust"})  # fmt: skip


class FindRefundOriginal(Participant):
    def prepare(self, ctx: Context) -> str:
        msg, t, f61 = ctx.msg, ctx.terminal, ctx.f61
        assert msg is not None and t is not None and f61 is not None
        rrn = msg.text(37)
        o = None
        for r in ctx.store.find_by_rrn(rrn):
            if r.operation in REFUNDABLE and r.merchant_id == t.merchant_id and r.response_code == "00":
                o = r
                break
        if o is None:
            return ctx.decline(self.name, "25", "no approved original with that RRN at this merchant")
        if f61.orig_date and f61.orig_date != mmdd(o.day):
            return ctx.decline(self.name, "25", f"61.3 is not the date of #{o.id}")
        if o.status not in ("approved", "partially_refunded", "completed"):
            return ctx.decline(self.name, "12", f"original #{o.id} is {o.status}")
        if ctx.amount > o.amount:
            return ctx.decline(self.name, "64", f"refund exceeds the amount of #{o.id}")
        if o.refunded_amount + ctx.amount > o.amount:
            return ctx.decline(self.name, "61", f"refunds would exceed the amount of #{o.id}")
        return found(ctx, self.name, o)


class MarkRefunded(Participant):
    def prepare(self, ctx: Context) -> str:
        o = ctx.original
        if o is not None and o.id is not None and ctx.approved:
            total = o.refunded_amount + ctx.amount
            status = "refunded" if total >= o.amount else "partially_refunded"
            ctx.store.update_transaction(o.id, refunded_amount=total, status=status)
            return ctx.prepared(self.name, f"#{o.id} {status} {total}")
        return ctx.prepared(self.name)
