"""Echo test (回响测试, 0820/0830, 60.3 301, spec 3.1): checks the line and the host; no MAC."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from posgate.dialect.fields import Field60
from posgate.iso8583 import Message
from posgate.terminal.operations.base import Flow, Step, base_fields, check_reply, code_result, error_result
from posgate.terminal.state import TerminalState, next_stan


def build(state: TerminalState, flow: Flow, step: Step, now: datetime) -> tuple[TerminalState, Flow, Any]:
    state, stan = next_stan(state)
    f = base_fields(state, stan)
    f[60] = Field60("00", state.batch, "301").format()
    return state, flow, (Message("0820", f), False, "60")


def on_reply(
    state: TerminalState, flow: Flow, step: Step, reply: Message, now: datetime
) -> tuple[TerminalState, Flow]:
    assert flow.request is not None
    problem = check_reply(state, flow.request, reply, mac=False)
    if problem:
        return state, replace(
            flow, result=error_result("echo", "mismatch", "应答不符", f"the reply does not match ({problem})")
        )
    result = code_result(
        "echo",
        reply.text(39),
        stan=flow.request.text(11),
        batch=state.batch,
        date=reply.text(13),
        time=reply.text(12),
    )
    return state, replace(flow, result=result)


def on_timeout(
    state: TerminalState, flow: Flow, step: Step, now: datetime, reason: str
) -> tuple[TerminalState, Flow]:
    return state, replace(
        flow, queue=(), result=error_result("echo", "timeout", "回响测试超时", "no reply to the echo test")
    )
