"""Sale void (3.7): only on the same terminal, in the same (open) batch, on the same day, for
the full amount. ``25`` no approved sale with that batch + STAN (61) in this batch today
(or 37 is not its RRN); ``12`` already voided, reversed, refunded or adjusted; ``64``
amount differs. The issuer credits the amount back; the sale becomes ``voided``.
"""

from __future__ import annotations

from posgate.host.context import Context
from posgate.host.participants.originals import found, on_terminal
from posgate.host.pipeline import Participant


class FindVoidOriginal(Participant):
    def __init__(self, operations: tuple[str, ...] = ("sale",)) -> None:
        self.operations = operations

    def prepare(self, ctx: Context) -> str:
        f61, t, msg = ctx.f61, ctx.terminal, ctx.msg
        assert f61 is not None and t is not None and msg is not None
        o = on_terminal(ctx, f61.orig_batch_no, f61.orig_stan, self.operations)
        if o is None or o.response_code != "00":
            return ctx.decline(self.name, "25", "no approved original with that batch and STAN")
        if o.batch_no != t.batch_no or o.day != ctx.day:
            return ctx.decline(self.name, "25", f"original #{o.id} is not in today's open batch")
        rrn = msg.text(37)
        if rrn and rrn != o.rrn:
            return ctx.decline(self.name, "25", f"37 is not the RRN of #{o.id}")
        if o.status != "approved":
            return ctx.decline(self.name, "12", f"original #{o.id} is {o.status}")
        if ctx.amount != o.amount:
            return ctx.decline(self.name, "64", f"amount differs from #{o.id}")
        return found(ctx, self.name, o)
