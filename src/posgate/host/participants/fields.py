"""Format checks per operation (3.1b): mandatory fields → ``30``; 61 layout → ``30``;
currency not the acquirer's → ``A1``; a zero amount where one is needed → ``13``; the
terminal's batch (60.2) not the host's open batch → ``77`` with header requirement 3.
"""

from __future__ import annotations

from posgate.dialect.fields import Field61
from posgate.host.context import Context
from posgate.host.pipeline import Participant
from posgate.iso8583 import CodecError

_FIN = (3, 11, 22, 25, 41, 42, 49, 60)
MANDATORY: dict[str, tuple[int, ...]] = {
    "sign_on": (11, 41, 42, 60),
    "sign_off": (11, 41, 42, 60),
    "echo": (11, 41, 42, 60),
    "parameter_download": (11, 41, 42, 60),
    "status_upload": (11, 41, 42, 60),
    **{name: (11, 41, 42, 60) for name in ("capk_query", "capk_end", "aid_query", "aid_end")},
    "capk_download": (11, 41, 42, 60, 62),
    "aid_download": (11, 41, 42, 60, 62),
    "balance": _FIN,
    "sale": (*_FIN, 4),
    "preauth": (*_FIN, 4),
    "void": (*_FIN, 4, 61),
    "refund": (*_FIN, 4, 37, 61),
    "preauth_void": (*_FIN, 4, 61),
    "completion": (*_FIN, 4, 61),
    "completion_void": (*_FIN, 4, 61),
    "completion_advice": (*_FIN, 4, 61),
    "offline_settlement": (*_FIN, 4),
    "settlement_adjust": (*_FIN, 4, 61),
    "tip_adjust": (*_FIN, 4, 48, 61),
    "reversal": (3, 4, 11, 22, 25, 41, 42, 60),
    "settlement": (11, 41, 42, 48, 60),
    "batch_upload": (11, 41, 42, 60),
    "signature": (11, 41, 42, 60, 62),
    "script_advice": (11, 41, 42, 60),
    "qr_query": (3, 11, 22, 25, 41, 42, 59, 60, 61),
}
# Operations that need a card (2 or 35) in the request itself.
NEEDS_CARD = frozenset({"balance", "sale", "preauth", "refund", "offline_settlement"})
NEEDS_AMOUNT = frozenset({"sale", "preauth", "void", "refund", "preauth_void", "completion", "completion_void",
                          "completion_advice", "offline_settlement", "settlement_adjust", "tip_adjust"})  # fmt: skip


class CheckFields(Participant):
    def prepare(self, ctx: Context) -> str:
        msg, op = ctx.msg, ctx.op
        assert msg is not None and op is not None
        missing = [n for n in MANDATORY.get(op.name, ()) if n not in msg]
        if missing:
            return ctx.decline(self.name, "30", "missing field " + ",".join(map(str, missing)))
        name = op.name
        qr = 59 in msg and msg.text(22).startswith("03")  # scan-to-pay: the code in 59 (Q1)
        if name in NEEDS_CARD and 2 not in msg and 35 not in msg and not qr:
            return ctx.decline(self.name, "30", "no card data (2 or 35)")
        f61 = msg.text(61)
        if f61:
            try:
                ctx.f61 = Field61.parse(f61)
            except CodecError as exc:
                return ctx.decline(self.name, "30", f"field {exc.field}: {exc.expected}")
        currency = msg.text(49)
        if currency and currency != ctx.env.currency:
            return ctx.decline(self.name, "A1", f"currency {currency}")
        if name in NEEDS_AMOUNT and ctx.amount <= 0:
            return ctx.decline(self.name, "13", "zero amount")
        return ctx.prepared(self.name)


class CheckBatch(Participant):
    def prepare(self, ctx: Context) -> str:
        t = ctx.terminal
        assert t is not None
        if ctx.batch_no != t.batch_no:
            ctx.rejected = True
            ctx.require("3")
            return ctx.decline(self.name, "77", f"terminal batch {ctx.batch_no}, host batch {t.batch_no}")
        return ctx.prepared(self.name)
