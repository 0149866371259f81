"""Decode: body bytes → Message and Operation, in the terminal's dialect profile. A codec error
becomes ``30`` when enough of the message can be read to address a reply (MTI, 11, 41, 42),
otherwise the connection is closed.

The profile is the terminal's (``terminals.dialect``), and the terminal is named by field 41,
inside the message: profiles override only fields after 41 (posgate.dialect.profiles), so the
baseline decoder always reads the TID — from the full baseline decode, or when that fails from
the salvaged reading (:func:`salvage`: a reused bitmap read around, or the readable prefix). The terminal record is looked up here once and handed on
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
from posgate.iso8583 import TLV, CodecError, FieldValue, Kind, Message, compile_field
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
# A bitmap reused from another message flags fields that are not there (a library that ORs each
# message's and each reply's bitmap into one table flags six or more). Salvage reads the body as
# a sequence of flagged fields each either present or absent (never 11, 41, 42): a search over
# (field index, byte position) states, each decoded at most once, so any number of absent fields
# costs at most one decode per state; RESYNC_BUDGET bounds the decodes spent on one message
# (garbage must stay cheap). Of the readings that consume the body exactly, the cheapest wins:
# a field left out costs 2, 1 if only replies carry it (a library that copies each reply's bitmap
# into its table flags those); read as present, a field only replies carry costs 1 too (so those
# weigh nothing either way) and a field this dialect does not define costs 2 (fixed digit fields
# stand in for each other's bytes). When the cheapest readings disagree on 11, 41 or 42, there is
# no telling which the terminal sent: no reading.
RESYNC_BUDGET = 4000
ADDRESS = (11, 41, 42)
_NONE = 1 << 30  # no reading from this state
# Set by the host in its replies to a terminal: time and date, settlement date, acquirer, RRN,
# authorisation code, response code, additional response data, balance, keys.
REPLY_SIDE = frozenset({12, 13, 15, 32, 37, 38, 39, 44, 54, 62})
_PRESENT_COST = {k: 2 for k in frozenset(_SALVAGE) - frozenset(FIELDS)} | {k: 1 for k in REPLY_SIDE}


class _OutOfBudget(Exception):
    pass


def _length(value: FieldValue) -> int:
    return len(value.raw) if isinstance(value, TLV) else len(value)


def _mmdd(s: str) -> bool:
    return "01" <= s[:2] <= "12" and "01" <= s[2:4] <= "31"


def _hhmmss(s: str) -> bool:
    return s[:2] < "24" and s[2:4] < "60" and s[4:6] < "60"


# Fixed numeric fields read each other's digits when a reading is shifted (an amount's twelve
# digits read as 11 and 12, say): values the terminal could not have sent rule such a reading out.
_PLAUSIBLE = {
    2: lambda s: 12 <= len(s) <= 19,
    7: lambda s: _mmdd(s) and _hhmmss(s[4:]),
    11: lambda s: s != "000000",
    12: _hhmmss,
    13: _mmdd,
    15: _mmdd,
    41: lambda s: s.isprintable() and s.strip() != "",
    42: lambda s: s.isprintable() and s.strip() != "",
}


# A state's best: its cost, the address fields its cheapest readings read (None: they disagree),
# and one cheapest choice (present, its value, the next position).
_Best = tuple[int, "tuple[FieldValue, ...] | None", bool, "FieldValue | None", int]


def _resync(body: bytes, p0: int, numbers: list[int]) -> tuple[dict[int, FieldValue], list[int]] | None:
    """The cheapest reading of the whole body (see above), or None (none, or ambiguous)."""
    end = len(body)
    best: dict[tuple[int, int], _Best] = {}
    decodes = 0

    def solve(i: int, p: int) -> _Best:
        nonlocal decodes
        if i == len(numbers):
            return (0 if p == end else _NONE, (), False, None, p)
        hit = best.get((i, p))
        if hit is not None:
            return hit
        number = numbers[i]
        options: list[_Best] = []
        dec = _SALVAGE.get(number)
        if dec is not None and p < end:
            decodes += 1
            if decodes > RESYNC_BUDGET:
                raise _OutOfBudget
            try:
                value, q = dec(body, p)
            except CodecError:
                pass
            else:
                check = _PLAUSIBLE.get(number)
                # An empty variable field is a length prefix read out of other digits, not sent.
                if (check is None or isinstance(value, str) and check(value)) and _length(value):
                    c, address, *_ = solve(i + 1, q)
                    if c < _NONE:
                        if number in ADDRESS and address is not None:
                            address = (value, *address)
                        options.append((c + _PRESENT_COST.get(number, 0), address, True, value, q))
        if number not in ADDRESS:  # the addressing fields are the point: never left out
            c, address, *_ = solve(i + 1, p)
            if c < _NONE:
                options.append((c + (1 if number in REPLY_SIDE else 2), address, False, None, p))
        if not options:
            choice: _Best = (_NONE, None, False, None, p)
        else:
            low = min(o[0] for o in options)
            cheapest = [o for o in options if o[0] == low]
            choice = cheapest[0]
            if any(o[1] != choice[1] for o in cheapest):
                choice = (low, None, *choice[2:])
        best[(i, p)] = choice
        return choice

    try:
        c, address, *_ = solve(0, p0)
    except _OutOfBudget:
        return None
    if c >= _NONE or address is None:
        return None
    got: dict[int, FieldValue] = {}
    left_out: list[int] = []
    p = p0
    for i, number in enumerate(numbers):
        _, _, present, value, q = best[(i, p)]
        if present:
            assert value is not None
            got[number], p = value, q
        else:
            left_out.append(number)
    return got, left_out


def salvage(body: bytes) -> tuple[Message, str] | None:
    """Enough of a broken request to address a ``30`` reply (11, 41 and 42), and a note saying
    how it was read; None when 11, 41 and 42 cannot be read with confidence.

    Two readings: (1) the bitmap was reused from another message (fields flagged but absent):
    a reading that leaves out the fewest flagged fields and consumes the body exactly; (2) the
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
        error: CodecError | None = None
        msg: Message | None
        found: tuple[Message, str] | None = None
        try:
            msg = CODEC.decode(ctx.body)
        except CodecError as exc:
            msg, error = None, exc
            found = salvage(ctx.body)
            if found is None:
                ctx.close = True
                return ctx.decline(self.name, "30", f"field {exc.field}: {exc.expected}; 11, 41, 42 unreadable, closing")
        head = msg if msg is not None else found[0] if found is not None else None
        assert head is not None
        if head.mti in REQUEST_MTIS and 41 in head:
            # The baseline (or its salvage) reads 41 in every profile: find the terminal's.
            t = ctx.store.terminal(head.text(41).strip())
            ctx.found = (t,)
            profile = profiles.PROFILES.get(t.dialect) if t is not None else None
            if profile is not None and not profile.baseline:
                ctx.dialect = profile
                if profile.codec is not CODEC:
                    try:
                        msg, error, found = profile.codec.decode(ctx.body), None, None
                    except CodecError as exc:
                        msg, error = None, exc
        if msg is None:
            assert error is not None
            if found is None:  # the baseline read it, the terminal's profile cannot
                ctx.msg = head
                return ctx.decline(self.name, "30", f"field {error.field}: {error.expected} ({ctx.dialect.name})")
            ctx.msg, how = found
            if how.startswith("read up to"):
                return ctx.decline(self.name, "30", f"field {error.field}: {error.expected} ({how})")
            # The reading that made sense names the fault; the codec's error under the bitmap as sent follows.
            return ctx.decline(self.name, "30", f"{how} (as sent: field {error.field}: {error.expected})")
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
