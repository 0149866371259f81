"""Echo test (0820/301): proves the line and the host are alive; changes nothing."""

from __future__ import annotations

from posgate.host.context import Context
from posgate.host.pipeline import Participant


class Echo(Participant):
    def prepare(self, ctx: Context) -> str:
        ctx.response_code = "00"
        return ctx.prepared(self.name)
