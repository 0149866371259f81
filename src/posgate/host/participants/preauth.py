"""The pre-authorisation family (3.10): pre-auth (issuer hold), pre-auth void (release),
completion request and completion advice (capture the hold), completion void (credit).

Matching: the pre-auth is found on the same terminal by 61.1 batch + 61.2 STAN, with 61.3
its date and 38 (when sent) its auth code — a pre-auth may be completed in a later batch or
on a later day. ``25`` no approved pre-auth; ``12`` already completed, voided or reversed.

Amounts: a pre-auth void is for the full amount (``64`` otherwise); a completion may exceed
the pre-authorised amount by up to :data:`COMPLETION_TOLERANCE_PCT` per cent (tips, fuel —
the usual acquirer rule), above that ``64``. A completion void follows the sale-void rules
(same terminal, open batch, same day, full amount) and leaves the pre-auth ``completed``: the
hold was consumed by the capture, a new pre-auth is needed to charge the card again.
"""

from __future__ import annotations

from posgate.host.context import Context
from posgate.host.participants.originals import found, mmdd, on_terminal
from posgate.host.pipeline import Participant

COMPLETION_TOLERANCE_PCT = 15


class FindPreauth(Participant):
    def __init__(self, purpose: str) -> None:
        self.purpose = purpose  # "void" | "completion"

    def prepare(self, ctx: Context) -> str:
        msg, f61 = ctx.msg, ctx.f61
        assert msg is not None and f61 is not None
        o = on_terminal(ctx, f61.orig_batch_no, f61.orig_stan, ("preauth",))
        if o is None or o.response_code != "00":
            return ctx.decline(self.name, "25", "no approved pre-auth with that batch and STAN")
        if f61.orig_date and f61.orig_date != mmdd(o.day):
            return ctx.decline(self.name, "25", f"61.3 is not the date of #{o.id}")
        auth = msg.text(38).strip()
        if auth and o.auth_code and auth != o.auth_code:
            return ctx.decline(self.name, "25", f"38 is not the auth code of #{o.id}")
        if o.status != "approved":
            return ctx.decline(self.name, "12", f"pre-auth #{o.id} is {o.status}")
        if self.purpose == "void":
            if ctx.amount != o.amount:
                return ctx.decline(self.name, "64", f"amount differs from #{o.id}")
        elif ctx.amount * 100 > o.amount * (100 + COMPLETION_TOLERANCE_PCT):
            return ctx.decline(self.name, "64", f"completion above {100 + COMPLETION_TOLERANCE_PCT}% of #{o.id}")
        ctx.extra["hold_amount"] = o.amount
        return found(ctx, self.name, o)
