"""Reversal (冲正, 0400/0410; spec section 8).

Theory of operation: the reversal *record* is made by the financial engine when it builds a
reversible request, so the shell persists it before the request leaves; its 39 starts as
``98`` (no reply) and becomes ``A0`` (reply MAC failed) or ``06`` (other failure). This module
*sends* it: as the first online message of the next operation (after a make-up sign-on, whose
fresh MAK the 0400 is MAC'd with), with the original STAN and the fields of section 8.

Each send counts an attempt (persisted before it leaves). A reply that answers the 0400 with
39 = ``00`` and a valid MAC clears the record. Anything else keeps it and tries again, up to
the resend count (parameter tag 23, default 3); then the record is dropped, "冲正不成功 请与客服联系"
is shown, and the operation that was waiting ends (the cashier starts it again).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from posgate.iso8583 import Message
from posgate.terminal.operations.base import Flow, Step, check_reply, error_result, event
from posgate.terminal.state import TerminalState

FAILED_ZH = "冲正不成功 请与客服联系"
FAILED_EN = "reversal failed: please contact customer service"
# The host's gate refused the terminal itself (merchant suspended, terminal suspended, device
# not registered): the failed reversal's result carries that code, so the cashier sees its
# action (call the acquirer) and not only "reversal failed".
GATE_CODES = frozenset({"03", "58", "97"})


def build(state: TerminalState, flow: Flow, step: Step, now: datetime) -> tuple[TerminalState, Flow, Any]:
    rec = state.reversal
    if rec is None:
        return state, flow, None
    rec = replace(rec, attempts=rec.attempts + 1)
    state = replace(state, reversal=rec)
    return state, flow, (rec.message, True, rec.category)


def _failed(
    state: TerminalState, flow: Flow, step: Step, now: datetime, why: str, code: str = ""
) -> tuple[TerminalState, Flow]:
    rec = state.reversal
    assert rec is not None
    if rec.attempts >= state.reversal_attempts:
        state = event(
            state,
            now,
            "reversal",
            rec.reason,
            "dropped",
            f"STAN {rec.stan} {rec.operation}: {why}; {rec.attempts} attempts",
        )
        state = replace(state, reversal=None)
        gate = {"response_code": code} if code in GATE_CODES else {}
        result = error_result(flow.input.operation, "reversal", FAILED_ZH, FAILED_EN, stan=rec.stan, **gate)
        return state, replace(flow, queue=(), result=result).note(
            f"{FAILED_ZH} / {FAILED_EN} (STAN {rec.stan})"
        )
    state = event(
        state, now, "reversal", rec.reason, "retry", f"STAN {rec.stan}: {why}; attempt {rec.attempts}"
    )
    return state, flow.push_front(replace(step))


def on_reply(
    state: TerminalState, flow: Flow, step: Step, reply: Message, now: datetime
) -> tuple[TerminalState, Flow]:
    rec = state.reversal
    if rec is None:  # cannot happen: nothing else clears it while in flight
        return state, flow
    problem = check_reply(state, rec.message, reply, mac=True)
    code = reply.text(39)
    if problem or code != "00":
        state = replace(state, reversal=rec.with_reason("06"))
        return _failed(state, flow, step, now, problem or f"answered {code}", "" if problem else code)
    state = event(
        state,
        now,
        "reversal",
        rec.reason,
        "cleared",
        f"STAN {rec.stan} {rec.operation}; attempt {rec.attempts}",
    )
    state = replace(state, reversal=None)
    return state, flow.note(f"冲正成功 / reversal of voucher {rec.stan} accepted")


def on_timeout(
    state: TerminalState, flow: Flow, step: Step, now: datetime, reason: str
) -> tuple[TerminalState, Flow]:
    if state.reversal is None:
        return state, flow
    return _failed(state, flow, step, now, "no reply" if reason == "98" else "connection lost")
