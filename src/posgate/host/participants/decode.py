"""Decode: body bytes → Message and Operation. A codec error becomes ``30`` when enough of the
message can be read to address a reply (MTI, 11, 41, 42), otherwise the connection is closed.

Must never: let a :class:`CodecError` escape, or echo undecodable bytes.
"""

from __future__ import annotations

from posgate.dialect.cup import CODEC, FIELDS
from posgate.dialect.fields import Field60
from posgate.dialect.operations import identify
from posgate.host.context import Context
from posgate.host.pipeline import Participant
from posgate.iso8583 import CodecError, FieldValue, Kind, Message, compile_field
from posgate.iso8583.spec import fixed, llvar, n

# The request MTIs a CUP terminal sends; anything else (a reply, a stray 0210...) is not
# answered, since a reply MTI + 10 would itself look like a request.
REQUEST_MTIS = frozenset({"0100", "0200", "0220", "0320", "0400", "0500", "0620", "0800", "0820"})

# Decoders for salvaging the readable part of a broken message: the dialect's fields, plus the
# ISO 8583:1987 formats of fields this dialect does not define but other CUP dialects send
# (field 7 in chinaljp's scan-to-pay, for one), so that a reply can still be addressed.
_SALVAGE = {n: compile_field(spec)[0] for n, spec in FIELDS.items()}
_SALVAGE.update({s.number: compile_field(s)[0] for s in (
    n(5, 12), n(6, 12), n(7, 10), n(8, 8), n(9, 8), n(10, 8), n(16, 4), n(17, 4), n(18, 4), n(19, 3), n(20, 3),
    n(21, 3), n(24, 3), llvar(33, Kind.N, 11), fixed(40, Kind.AN, 3),
)})  # fmt: skip
# A bitmap reused from another message flags fields that are not there. Salvage tries readings
# that leave out up to MAX_SKIPS flagged fields and keeps one that consumes the body exactly;
# RESYNC_BUDGET bounds the field decodes spent on one message (garbage must stay cheap).
MAX_SKIPS = 3
RESYNC_BUDGET = 2000
ADDRESS = (11, 41, 42)


class _OutOfBudget(Exception):
    pass


def _resync(body: bytes, p0: int, numbers: list[int]) -> tuple[dict[int, FieldValue], list[int]] | None:
    """A reading of the whole body that leaves out the fewest flagged fields (0..MAX_SKIPS)."""
    steps = 0

    def walk(i: int, p: int, skips: int, got: dict[int, FieldValue], left_out: list[int]) -> bool:
        nonlocal steps
        if i == len(numbers):
            return p == len(body)
        steps += 1
        if steps > RESYNC_BUDGET:
            raise _OutOfBudget
        number = numbers[i]
        dec = _SALVAGE.get(number)
        if dec is not None:
            try:
                value, q = dec(body, p)
            except CodecError:
                pass
            else:
                got[number] = value
                if walk(i + 1, q, skips, got, left_out):
                    return True
                del got[number]
        if skips and number not in ADDRESS:  # the addressing fields are the point: never left out
            left_out.append(number)
            if walk(i + 1, p, skips - 1, got, left_out):
                return True
            left_out.pop()
        return False

    try:
        for skips in range(MAX_SKIPS + 1):
            got: dict[int, FieldValue] = {}
            left_out: list[int] = []
            if walk(0, p0, skips, got, left_out):
                return got, left_out
    except _OutOfBudget:
        return None
    return None


def salvage(body: bytes) -> tuple[Message, str] | None:
    """Enough of a broken request to address a ``30`` reply (11, 41 and 42), and a note saying
    how it was read; None when 11, 41 and 42 cannot be read with confidence.

    Two readings: (1) the bitmap was reused from another message (fields flagged but absent):
    a reading that leaves out a few flagged fields and consumes the body exactly; (2) the
    fields in order up to the first that cannot be decoded. A secondary bitmap (bit 1) is
    stepped over; fields 65-128 are never needed to address a reply.
    """
    if len(body) < 10:
        return None
    mti = body[:2].hex()
    if mti not in REQUEST_MTIS:
        return None
    bitmap = int.from_bytes(body[2:10], "big")
    numbers = [k for k in range(2, 65) if bitmap >> (64 - k) & 1]
    # Where the fields start: after the primary bitmap; with bit 1 set, after a secondary
    # bitmap when it is all zeros (no field 65-128 to step over), or right after the primary
    # one when bit 1 itself is the stale flag.
    starts = [10] if not bitmap >> 63 else [18, 10] if body[10:18] == bytes(8) else [10]
    for p0 in starts:
        found = _resync(body, p0, numbers)
        if found is not None and all(k in found[0] for k in ADDRESS):
            got, left_out = found
            notes = [] if not bitmap >> 63 else ["an empty secondary bitmap"] if p0 == 18 else ["bit 1 set, no secondary bitmap"]
            if left_out:
                notes.append(f"bitmap flags absent field{'s' if len(left_out) > 1 else ''} {', '.join(map(str, left_out))}")
            return Message(mti, got), "; ".join(notes) or "read as flagged"
    p = 18 if bitmap >> 63 else 10
    fields: dict[int, FieldValue] = {}
    for k in numbers:
        dec = _SALVAGE.get(k)
        if dec is None or k > 42:
            break
        try:
            fields[k], p = dec(body, p)
        except CodecError:
            break
    if all(k in fields for k in ADDRESS):
        return Message(mti, fields), "read up to the first undecodable field"
    return None


class Decode(Participant):
    def prepare(self, ctx: Context) -> str:
        try:
            msg = CODEC.decode(ctx.body)
        except CodecError as exc:
            found = salvage(ctx.body)
            if found is None:
                ctx.close = True
                return ctx.decline(self.name, "30", f"field {exc.field}: {exc.expected}; 11, 41, 42 unreadable, closing")
            ctx.msg, how = found
            if how.startswith("read up to"):
                return ctx.decline(self.name, "30", f"field {exc.field}: {exc.expected} ({how})")
            # The reading that made sense names the fault; the codec's error under the bitmap as sent follows.
            return ctx.decline(self.name, "30", f"{how} (as sent: field {exc.field}: {exc.expected})")
        ctx.msg = msg
        if msg.mti not in REQUEST_MTIS:
            ctx.close = True
            ctx.msg = None
            return ctx.decline(self.name, "30", f"MTI {msg.mti} is not a request, closing")
        ctx.stan = msg.text(11)
        f60 = msg.text(60)
        if f60:
            try:
                ctx.f60 = Field60.parse(f60)
            except CodecError as exc:
                return ctx.decline(self.name, "30", f"field {exc.field}: {exc.expected}")
            ctx.batch_no = ctx.f60.batch_no
        op = identify(msg)
        if op is None:
            return ctx.decline(self.name, "40", f"{msg.mti} with these codes is not a CUP operation")
        ctx.op = op
        a = msg.text(4)
        if a:
            ctx.amount = int(a)
        return ctx.prepared(self.name, op.name)
