"""Build the reply (3.1b "Replies", 11.2) and encode it once, computing the MAC on the way.

Every reply: MTI + 10; the request's 2, 3, 4, 11, 14, 22, 25, 41, 42, 49, 60 echoed where
present (participants may set their own 60, 48, 54, 62...); 12/13 host local time (acquirer
time zone); 32 the acquirer's institution id; 37 a fresh RRN (the one the issuer saw, for
authorised requests); 39. Financial replies add 38 on approval, 44 (issuer bank / acquirer)
and 63 (card organisation) when known. Runs even after a decline (``always``).

Field 64 — a decision beyond section 13 (docs/decisions.md, R1), a superset of D4: **every**
reply to a request whose MAC verified under the terminal's current MAK is MAC'd, whatever 39
says (approvals as D4 requires, and declines: ``51``, ``55``, ``94``...). Replies to requests
whose MAC failed (``A0``) or that were refused before any key could be trusted (``97``,
``03``, ``58``, ``22`` — no sign-on today, D5) stay un-MAC'd, as does the bare ``96`` of an
unexpected failure. Why: a terminal that verifies the MAC of every reply carrying one can
tell an authentic decline from an approval corrupted on the way (a one-bit flip turns ``00``
into ``02``); it keeps its reversal record for an un-MAC'd decline. Terminals that follow LY
(verify only when 39 = ``00``) ignore the MAC of a decline, so this stays compatible.
"""

from __future__ import annotations

from posgate.dialect.fields import Field44
from posgate.host.context import Context
from posgate.host.participants.mac import mac_function
from posgate.host.pipeline import Participant
from posgate.iso8583 import TLV, FieldValue, Message

ECHO = (2, 3, 4, 11, 14, 22, 25, 41, 42, 49, 60)


def _base(ctx: Context, code: str, rrn: bool = True) -> tuple[str, dict[int, FieldValue]]:
    msg = ctx.msg
    assert msg is not None
    fields = ctx.reply
    for n in ECHO:
        if n not in fields and n in msg:
            fields[n] = msg[n]
    local = ctx.local
    fields[12] = f"{local.hour:02d}{local.minute:02d}{local.second:02d}"
    fields[13] = f"{local.month:02d}{local.day:02d}"
    fields[32] = ctx.env.institution_id
    if rrn:
        if ctx.rrn is None:
            ctx.rrn = ctx.store.next_rrn(ctx.now)
        fields[37] = ctx.rrn
    fields[39] = code
    return f"{int(msg.mti) + 10:04d}", fields


def error_reply(ctx: Context, code: str) -> bytes | None:
    """A bare reply (no RRN, no MAC) for when processing failed unexpectedly."""
    if ctx.msg is None:
        return None
    ctx.reply = {}
    mti, fields = _base(ctx, code, rrn=False)
    return ctx.dialect.codec.encode(Message(mti, fields))


class BuildReply(Participant):
    always = True

    def prepare(self, ctx: Context) -> str:
        if ctx.replay is not None or ctx.msg is None:
            return ctx.prepared(self.name, "nothing to build")
        code = ctx.response_code or "96"
        ctx.response_code = code
        mti, fields = _base(ctx, code)
        op = ctx.op
        approved = code == "00"
        if op is not None and (op.financial or op.name == "reversal"):
            if approved and ctx.auth_code:
                fields[38] = ctx.auth_code
            r = ctx.issuer_result
            if r is not None and r.issuer_bank:
                fields[44] = Field44(r.issuer_bank, ctx.env.institution_id).format()
            if r is not None and r.icc and op.name != "reversal":
                fields[55] = TLV.decode(r.icc)  # tag 91: the issuer's ARPC for the card (issue 14)
            if ctx.card_organisation:
                fields[63] = ctx.card_organisation.ljust(3)[:3]
        t = ctx.terminal
        mac = mac_function(t) if ctx.mac_ok and t is not None and t.mak is not None else None
        ctx.reply_body = ctx.dialect.codec.encode(Message(mti, fields), mac=mac)
        return ctx.prepared(self.name, code)
