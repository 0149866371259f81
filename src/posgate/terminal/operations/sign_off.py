"""Sign-off (签退, 0820/0830, 60.3 002, spec 3.5): no MAC. After an approved reply the
terminal drops its working keys and owes a sign-on before the next transaction."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from posgate.dialect.fields import Field60
from posgate.iso8583 import Message
from posgate.terminal.operations.base import (
    Flow,
    Step,
    base_fields,
    check_reply,
    code_result,
    error_result,
    event,
)
from posgate.terminal.state import TerminalState, next_stan


def build(state: TerminalState, flow: Flow, step: Step, now: datetime) -> tuple[TerminalState, Flow, Any]:
    state, stan = next_stan(state)
    f = base_fields(state, stan)
    f[60] = Field60("00", state.batch, "002").format()
    return state, flow, (Message("0820", f), False, "60")


def on_reply(
    state: TerminalState, flow: Flow, step: Step, reply: Message, now: datetime
) -> tuple[TerminalState, Flow]:
    assert flow.request is not None
    problem = check_reply(state, flow.request, reply, mac=False)
    if problem:
        state = event(state, now, "sign_off", step.cause, "mismatch", problem)
        result = error_result("sign_off", "mismatch", "签退应答不符", "the sign-off reply does not match")
    else:
        code = reply.text(39)
        result = code_result("sign_off", code, stan=flow.request.text(11), batch=state.batch)
        state = event(state, now, "sign_off", step.cause, "ok" if code == "00" else f"declined {code}")
        if code == "00":
            state = replace(state, keys=None, key_scheme="", signed_on_date="", sign_on_owed="signed off")
            result = replace(result, message_zh="签退成功", message_en="Signed off")
    if step.primary:
        return state, replace(flow, result=result)
    return state, flow.note(f"{result.message}")


def on_timeout(
    state: TerminalState, flow: Flow, step: Step, now: datetime, reason: str
) -> tuple[TerminalState, Flow]:
    state = event(state, now, "sign_off", step.cause, "no reply")
    result = error_result("sign_off", "timeout", "签退超时", "no reply to the sign-off")
    if step.primary:
        return state, replace(flow, result=result, queue=())
    return state, flow.note(result.message)
