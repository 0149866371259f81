"""Balance inquiry (余额查询, 0200/0210, 310000, 60.1 = 01; spec 3.9): no amount, PIN
normally required, MAC'd, not reversible; the balance comes back in 54."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from posgate.iso8583 import Message
from posgate.terminal.operations import financial
from posgate.terminal.operations.base import Flow, Input, Step, TerminalError
from posgate.terminal.state import TerminalState

NAME = "balance"


def validate(state: TerminalState, inp: Input) -> None:
    if inp.card is None or not inp.card.pan:
        raise TerminalError("请刷卡 / a card is required")


def build(state: TerminalState, flow: Flow, step: Step, now: datetime) -> tuple[TerminalState, Flow, Any]:
    return financial.build_request(state, flow, NAME, now, flow.input.card, 0)


def on_reply(
    state: TerminalState, flow: Flow, step: Step, reply: Message, now: datetime
) -> tuple[TerminalState, Flow]:
    return financial.handle_reply(state, flow, step, reply, now, NAME, None)


def on_timeout(
    state: TerminalState, flow: Flow, step: Step, now: datetime, reason: str
) -> tuple[TerminalState, Flow]:
    return financial.handle_timeout(state, flow, step, now, reason, NAME)
