"""Balance inquiry (3.9): the issuer's available balance goes back in field 54."""

from __future__ import annotations

from posgate.dialect.fields import Balance
from posgate.host.context import Context
from posgate.host.pipeline import Participant


class ReturnBalance(Participant):
    def prepare(self, ctx: Context) -> str:
        r = ctx.issuer_result
        if r is not None and r.balance is not None:
            ctx.reply[54] = Balance(r.balance, ctx.env.currency).format()
        return ctx.prepared(self.name)
