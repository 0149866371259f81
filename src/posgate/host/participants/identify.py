"""The gate: who is talking? Unknown terminal → ``97``; MID not the terminal's → ``03``;
suspended terminal → ``58``; suspended (or D6-lapsed) merchant → ``03``.

Gate declines execute nothing: the request is recorded with status ``rejected`` so that a
later message with the same key is processed afresh (see duplicates.py).
"""

from __future__ import annotations

from posgate.host.context import Context
from posgate.host.participants.ic_params import ic_requirement
from posgate.host.participants.lapse import lapsed, suspend_for_lapse
from posgate.host.pipeline import Participant
from posgate.host.ports import SignOnEntry

# Operations the host keeps a transaction row for (money moves, or could have).
RECORDED = frozenset({
    "balance", "preauth", "preauth_void", "completion", "completion_void", "completion_advice", "sale",
    "void", "refund", "offline_settlement", "settlement_adjust", "tip_adjust", "reversal", "script_advice",
})  # fmt: skip


class IdentifyTerminal(Participant):
    def prepare(self, ctx: Context) -> str:
        assert ctx.msg is not None and ctx.op is not None
        tid = ctx.msg.text(41).strip()
        t = ctx.found[0] if ctx.found else ctx.store.terminal(tid)  # Decode looked it up already
        if t is None:
            return ctx.decline(self.name, "97", "terminal not registered")
        if t.merchant_id != ctx.msg.text(42).strip():
            return ctx.decline(self.name, "03", "merchant id is not this terminal's")
        ctx.terminal = t
        ctx.record = ctx.op.name in RECORDED
        if t.status != "active":
            ctx.rejected = True
            return ctx.decline(self.name, "58", "terminal suspended")
        if t.resign_requested:
            ctx.require("3")
        if t.params_pending:
            ctx.require("1")
        if t.capk_pending or t.aid_pending:
            ctx.require(ic_requirement(t))
        return ctx.prepared(self.name, tid)


class CheckMerchantActive(Participant):
    def prepare(self, ctx: Context) -> str:
        t = ctx.terminal
        assert t is not None and ctx.op is not None
        m = ctx.store.merchant(t.merchant_id)
        if m is None:
            ctx.rejected = True
            return ctx.decline(self.name, "03", "merchant not registered")
        ctx.merchant = m
        if m.status == "active" and t.signed_on_day != ctx.day:
            # D6. Only asked when this terminal has not signed on today: otherwise the merchant
            # had a sign-on today and cannot have lapsed (saves a query per transaction).
            last = ctx.store.merchant_last_sign_on_day(m.merchant_id)
            if lapsed(last, ctx.day, ctx.env.lapse_days):
                suspend_for_lapse(ctx.store, m, last, ctx.now, ctx.env.lapse_days)
                ctx.rejected = True
                _refuse_sign_on(ctx, "lapse")
                return ctx.decline(self.name, "03", f"merchant suspended now (D6, last sign-on {last})")
        if m.status != "active":
            ctx.rejected = True
            _refuse_sign_on(ctx, "merchant_suspended")
            return ctx.decline(self.name, "03", "merchant suspended")
        return ctx.prepared(self.name, m.merchant_id)


def _refuse_sign_on(ctx: Context, cause: str) -> None:
    if ctx.op is not None and ctx.op.name == "sign_on":
        record_refused_sign_on(ctx, cause, "03")


def record_refused_sign_on(ctx: Context, cause: str, code: str, serial: str | None = None) -> None:
    t, msg = ctx.terminal, ctx.msg
    assert t is not None and msg is not None
    ctx.store.record_sign_on(SignOnEntry(
        at=ctx.now, day=ctx.day, terminal_id=t.terminal_id, merchant_id=t.merchant_id, kind="refused",
        cause=cause, operator=msg.text(63).strip() or None, device_serial=serial,
        key_scheme=ctx.f60.nmic if ctx.f60 else None, batch_no=t.batch_no, stan=ctx.stan, response_code=code,
    ))  # fmt: skip
