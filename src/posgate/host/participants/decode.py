"""Decode: body bytes → Message and Operation, in the terminal's dialect profile. A codec error
becomes ``30`` when enough of the message can be read to address a reply (MTI, 11, 41, 42),
otherwise the connection is closed.

The profile is the terminal's (``terminals.dialect``), and the terminal is named by field 41,
inside the message: profiles override only fields after 41 (posgate.dialect.profiles), so the
baseline decoder always reads the TID — from the full baseline decode, or when that fails from
the readable prefix (:func:`salvage`). The terminal record is looked up here once and handed on
to IdentifyTerminal (``ctx.found``). Cost: nothing more for a baseline terminal (one decode, one
lookup, as before); a terminal whose profile overrides fields is decoded a second time with its
profile's compiled codec (a few microseconds: both decodes take the fast path once warm).

Must never: let a :class:`CodecError` escape, or echo undecodable bytes.
"""

from __future__ import annotations

from posgate.dialect import profiles
from posgate.dialect.cup import CODEC, FIELDS
from posgate.dialect.fields import Field60
from posgate.dialect.operations import identify
from posgate.host.context import Context
from posgate.host.pipeline import Participant
from posgate.iso8583 import CodecError, FieldValue, Message, compile_field

# The request MTIs a CUP terminal sends; anything else (a reply, a stray 0210...) is not
# answered, since a reply MTI + 10 would itself look like a request.
REQUEST_MTIS = frozenset({"0100", "0200", "0220", "0320", "0400", "0500", "0620", "0800", "0820"})

# Separate decoders for salvaging the readable prefix of a broken message.
_SALVAGE = {n: compile_field(spec)[0] for n, spec in FIELDS.items() if n <= 42}


def salvage(body: bytes) -> Message | None:
    """The fields before the first undecodable one, if they include 11, 41 and 42."""
    if len(body) < 10:
        return None
    mti = body[:2].hex()
    if mti not in REQUEST_MTIS:
        return None
    bitmap = int.from_bytes(body[2:10], "big")
    fields: dict[int, FieldValue] = {}
    p = 10
    for n in range(2, 43):
        if not bitmap >> (64 - n) & 1:
            continue
        dec = _SALVAGE.get(n)
        if dec is None:
            break
        try:
            fields[n], p = dec(body, p)
        except CodecError:
            break
    if 11 in fields and 41 in fields and 42 in fields:
        return Message(mti, fields)
    return None


class Decode(Participant):
    def prepare(self, ctx: Context) -> str:
        error: CodecError | None = None
        msg: Message | None
        try:
            msg = CODEC.decode(ctx.body)
        except CodecError as exc:
            msg, error = None, exc
        head = msg if msg is not None else salvage(ctx.body)
        if head is None:
            ctx.close = True
            assert error is not None
            return ctx.decline(self.name, "30", f"undecodable, closing ({error.field})")
        if head.mti in REQUEST_MTIS and 41 in head:
            t = ctx.store.terminal(head.text(41).strip())
            ctx.found = (t,)
            profile = profiles.PROFILES.get(t.dialect) if t is not None else None
            if profile is not None and not profile.baseline:
                ctx.dialect = profile
                if profile.codec is not CODEC:
                    try:
                        msg, error = profile.codec.decode(ctx.body), None
                    except CodecError as exc:
                        msg, error = None, exc
        if msg is None:
            assert error is not None
            ctx.msg = head
            return ctx.decline(self.name, "30", f"field {error.field}: {error.expected}")
        ctx.msg = msg
        if msg.mti not in REQUEST_MTIS:
            ctx.close = True
            ctx.msg = None
            return ctx.decline(self.name, "30", f"MTI {msg.mti} is not a request, closing")
        ctx.stan = msg.text(11)
        dialect = ctx.dialect
        f60 = msg.text(60)
        if f60:
            try:
                ctx.f60 = Field60.parse(f60, dialect.f60_private)
            except CodecError as exc:
                return ctx.decline(self.name, "30", f"field {exc.field}: {exc.expected}")
            ctx.batch_no = ctx.f60.batch_no
        op = identify(msg, dialect.aliases)
        if op is None:
            return ctx.decline(self.name, "40", f"{msg.mti} with these codes is not a CUP operation")
        ctx.op = op
        a = msg.text(4)
        if a:
            ctx.amount = int(a)
        return ctx.prepared(self.name, op.name if dialect.baseline else f"{op.name} ({dialect.name})")
