"""Offline advices (3.11, 0220): offline settlement (60.1 30), settlement adjust (32), tip
adjust (34, tip in 48). The money already moved at the counter: the host posts it to the
issuer as a forced debit (no PIN, limit or balance check; unknown, lost... cards still
decline) and records it for settlement. The terminal's own 38 is the auth code.

Adjust and tip replace their original (found on this terminal by 61.1 + 61.2; ``25`` if
none): the original becomes ``adjusted`` and leaves the totals, the advice counts once with
its field 4 — for 32 the new amount (the issuer posts the difference), for 34 the original
amount plus the tip in 48 (``64`` if 4 ≠ original + tip; the issuer posts the tip).
"""

from __future__ import annotations

from posgate.host.context import Context
from posgate.host.participants.originals import found, on_terminal
from posgate.host.pipeline import Participant

ADJUSTABLE = ("sale", "offline_settlement", "settlement_adjust", "tip_adjust", "completion", "completion_advice")


class FindAdjustOriginal(Participant):
    def prepare(self, ctx: Context) -> str:
        msg, f61, op = ctx.msg, ctx.f61, ctx.op
        assert msg is not None and f61 is not None and op is not None
        o = on_terminal(ctx, f61.orig_batch_no, f61.orig_stan, ADJUSTABLE)
        if o is None or o.response_code != "00":
            return ctx.decline(self.name, "25", "no approved original with that batch and STAN")
        if o.status != "approved":
            return ctx.decline(self.name, "12", f"original #{o.id} is {o.status}")
        if op.name == "tip_adjust":
            tip = int(msg.text(48) or "0")
            if tip <= 0 or ctx.amount != o.amount + tip:
                return ctx.decline(self.name, "64", f"4 is not the amount of #{o.id} plus the tip")
            ctx.extra["issuer_kind"], ctx.extra["issuer_amount"] = "force_debit", tip
        else:
            delta = ctx.amount - o.amount
            ctx.extra["issuer_kind"] = "force_debit" if delta >= 0 else "credit"
            ctx.extra["issuer_amount"] = abs(delta)
        return found(ctx, self.name, o)


class KeepTerminalAuthCode(Participant):
    """The issuer's forced posting returns its own code; the advice keeps the terminal's."""

    def prepare(self, ctx: Context) -> str:
        assert ctx.msg is not None
        code = ctx.msg.text(38).strip()
        if code and ctx.approved:
            ctx.auth_code = code
        return ctx.prepared(self.name)
