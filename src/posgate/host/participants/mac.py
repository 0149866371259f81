"""MAC (5, D4): check the request's MAC with the terminal's MAK; the reply is MAC'd whenever
the request's MAC verified (``ctx.mac_ok``), declines included (see reply.py).

A message that must carry a MAC (5.3 plus the e-signature upload) and has none, or a wrong
one, is refused with ``A0``. A message that need not carry one but does (an offline advice
re-sent in batch upload) is checked too. Consecutive ``A0``s are counted on the terminal;
after ``env.resign_after_mac_failures`` of them the host asks for a re-sign-on (header
requirement 3, ``resign_reason = "mac_failures"``). The first good MAC resets the count.

:func:`request_mac_verifies` is the same check without side effects, for the participants
that answer before this one runs (duplicates.py: a retransmission, a ``94``) and still want
to authenticate their reply.

Algorithm per terminal: ``cup`` = CUP ECB MAC (8 ASCII hex characters); ``x919`` = ANSI
X9.19 over the same MAB (8 binary bytes) with the MAK doubled when it is single length. An SM4
(国密) terminal (``algorithm = sm4``) uses the CUP method with SM4 and 16-byte blocks
(docs/dialect.md 4.4) whatever ``mac_algorithm`` says: X9.19 is a DES construction.
"""

from __future__ import annotations

from collections.abc import Callable

from posgate.crypto import SM4, cup_ecb_mac, mac_verify, x9_19_mac
from posgate.host.context import Context
from posgate.host.pipeline import Participant
from posgate.host.ports import TerminalRecord


def mac_function(t: TerminalRecord) -> Callable[[bytes], bytes]:
    mak = t.mak
    assert mak is not None
    if t.algorithm == "sm4":
        return lambda mab: cup_ecb_mac(mak, mab, SM4)
    if t.mac_algorithm == "x919":
        key = mak if len(mak) == 16 else mak + mak
        return lambda mab: x9_19_mac(key, mab)
    return lambda mab: cup_ecb_mac(mak, mab)


def request_mac_verifies(ctx: Context) -> bool:
    """The request carries a MAC that verifies under the terminal's *current* MAK (a sign-on
    made today and not followed by a sign-off, D5). Counts nothing, writes nothing."""
    t, msg = ctx.terminal, ctx.msg
    if t is None or msg is None or msg.raw is None or t.mak is None:
        return False
    if t.signed_off or t.signed_on_day != ctx.day:
        return False
    sent = msg.data(64)
    return sent is not None and mac_verify(mac_function(t)(msg.mac_block()), sent)


class CheckMac(Participant):
    def prepare(self, ctx: Context) -> str:
        op, t, msg = ctx.op, ctx.terminal, ctx.msg
        assert op is not None and t is not None and msg is not None
        sent = msg.data(64)
        if not op.mac and sent is None:
            return ctx.prepared(self.name, "no MAC on this message")
        if sent is not None and t.mak is not None and mac_verify(mac_function(t)(msg.mac_block()), sent):
            ctx.mac_ok = True
            if t.mac_failures:
                ctx.store.update_terminal(t.terminal_id, mac_failures=0)
            return ctx.prepared(self.name)
        failures = t.mac_failures + 1
        changes: dict[str, object] = {"mac_failures": failures}
        if failures >= ctx.env.resign_after_mac_failures:
            changes.update(resign_requested=True, resign_reason="mac_failures")
            ctx.require("3")
        ctx.store.update_terminal(t.terminal_id, **changes)
        ctx.rejected = True
        return ctx.decline(self.name, "A0", f"{'no' if sent is None else 'wrong'} MAC ({failures} in a row)")
