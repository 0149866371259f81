"""Store-and-forward of advices (refund 0220, offline advices 0220; docs/decisions.md R5).

Theory of operation: an advice is never reversed (section 8), so when its acknowledgement does
not come (no reply, a damaged or unauthenticated one: R3) its outcome is unknown until the host
is asked again. The terminal keeps it queued — a refund as ``refund_pending`` with its request
as first sent (``TxnEntry.request``), an offline advice as ``offline_pending`` rebuilt from its
entry, both deterministic — and re-sends it with the **same STAN and content** (a new MAC under
the current MAK) before the next online message and before settlement, after any make-up
sign-on and pending reversal. The host answers such a retransmission from its record without
executing it again (D8, R2), so re-sending is always safe. Each send counts in ``send_count``;
after ``state.advice_attempts`` sends without an acknowledgement the advice is flagged (an
event and a notice for the cashier; a refund becomes ``refund_unconfirmed`` and leaves the
totals) and no longer re-sent by itself — an offline one still goes up in the batch upload
(D11), which settles its fate either way.

Pure functions of the core: no clock, no socket.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from posgate.terminal.operations.base import Flow, Step, event
from posgate.terminal.state import TerminalState, TxnEntry


def in_doubt(state: TerminalState, t: TxnEntry) -> bool:
    """Sent, not acknowledged, and still re-sent by itself."""
    if t.send_count >= state.advice_attempts:
        return False
    return t.status == "refund_pending" or (t.status == "offline_pending" and t.send_count > 0)


def resend_steps(state: TerminalState) -> tuple[Step, ...]:
    """The queued advices to re-send before the next online message (secondary steps: a
    failure does not change the operation's result, a timeout stops the others)."""
    kinds = {"refund_pending": "refund", "offline_pending": "offline"}
    return tuple(Step(kinds[t.status], ref=t.stan, secondary=True) for t in state.txns if in_doubt(state, t))


def refunds_pending(state: TerminalState) -> list[TxnEntry]:
    """Refunds whose outcome is still unknown and that are still being re-sent: settlement
    waits for them (they have no batch-upload path)."""
    return [t for t in state.txns if t.status == "refund_pending" and in_doubt(state, t)]


def unacknowledged(
    state: TerminalState, flow: Flow, t: TxnEntry, now: datetime, why: str
) -> tuple[TerminalState, Flow, bool]:
    """The advice ``t`` went without an acknowledgement (``why``). Returns the new state, flow
    and whether it was flagged now (its attempts are used up)."""
    if t.send_count < state.advice_attempts:
        return state, flow, False
    kind = "refund" if t.operation == "refund" else "offline advice"
    if t.operation == "refund":
        state = state.with_txn(replace(t, status="refund_unconfirmed"))
    state = event(state, now, "notice", kind, "unconfirmed", f"STAN {t.stan}: {why}; {t.send_count} attempts")
    flow = flow.note(
        f"{'退货' if t.operation == 'refund' else '离线交易'} {t.stan} 多次上送未获确认，请与收单机构核实 / "
        f"{kind} {t.stan} unconfirmed after {t.send_count} attempts: check it with the acquirer"
    )
    return state, flow, True
