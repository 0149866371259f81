"""Sign-off (3.5): the terminal gives up its sign-on; financial messages need a new one (D5)."""

from __future__ import annotations

from posgate.host.context import Context
from posgate.host.pipeline import Participant
from posgate.host.ports import SignOnEntry


class SignOff(Participant):
    def prepare(self, ctx: Context) -> str:
        t, msg = ctx.terminal, ctx.msg
        assert t is not None and msg is not None
        ctx.store.update_terminal(t.terminal_id, signed_off=True)
        ctx.store.record_sign_on(SignOnEntry(
            at=ctx.now, day=ctx.day, terminal_id=t.terminal_id, merchant_id=t.merchant_id, kind="sign_off",
            cause=None, operator=t.operator, device_serial=t.device_serial, key_scheme=t.key_scheme,
            batch_no=ctx.batch_no or t.batch_no, stan=ctx.stan, response_code="00",
        ))  # fmt: skip
        ctx.response_code = "00"
        return ctx.prepared(self.name)
