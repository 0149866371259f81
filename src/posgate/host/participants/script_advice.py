"""IC script result advice (0620/951): recorded against its original (61, when found); the
host has nothing to authorise, the reply is ``00``."""

from __future__ import annotations

from posgate.host.context import Context
from posgate.host.participants.originals import on_terminal
from posgate.host.pipeline import Participant


class RecordScriptAdvice(Participant):
    def prepare(self, ctx: Context) -> str:
        f61 = ctx.f61
        if f61 is not None:
            o = on_terminal(ctx, f61.orig_batch_no, f61.orig_stan, ("sale", "preauth", "balance", "completion"))
            if o is not None:
                ctx.original = o
                ctx.pan_hash, ctx.pan_masked = o.pan_hash, o.pan_masked
                ctx.card_organisation = o.card_organisation
        ctx.response_code = "00"
        return ctx.prepared(self.name, f"original #{ctx.original.id}" if ctx.original else "original not found")
