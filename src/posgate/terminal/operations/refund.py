"""Refund (退货, 0220/0230, 200000, 60.1 = 25; spec 3.8). MAC'd, **not** reversible.

37 = the original RRN; 61 = original batch + STAN + date when the original is in this
terminal's log, else zeros + the original date (as BW sends); 63 = the original's card
organisation (LY) or ``000``. The amount may be less than the original (partial refund).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from posgate.dialect.fields import Field61, Field63
from posgate.iso8583 import Message
from posgate.terminal.operations import financial
from posgate.terminal.operations.base import Flow, Input, Step, TerminalError, entry_from
from posgate.terminal.state import TerminalState

NAME = "refund"


def validate(state: TerminalState, inp: Input) -> None:
    if inp.card is None or not inp.card.pan:
        raise TerminalError("请刷卡 / a card is required")
    if inp.amount <= 0:
        raise TerminalError("请输入金额 / the amount must be above 0.00")
    if len(inp.rrn) != 12:
        raise TerminalError("请输入原参考号 / the original RRN (12 characters) is required")
    if len(inp.orig_date) != 4 or not inp.orig_date.isdigit():
        raise TerminalError("请输入原交易日期 / the original date (MMDD) is required")


def build(state: TerminalState, flow: Flow, step: Step, now: datetime) -> tuple[TerminalState, Flow, Any]:
    inp = flow.input
    orig = next((t for t in state.txns if t.rrn == inp.rrn and t.operation in ("sale", "completion")), None)
    f61 = (
        Field61(orig.batch, orig.stan, inp.orig_date) if orig else Field61("000000", "000000", inp.orig_date)
    )
    extra = {37: inp.rrn, 61: f61.format(), 63: Field63(orig.card_org if orig else "000").format()}
    return financial.build_request(state, flow, NAME, now, inp.card, inp.amount, extra)


def record(
    state: TerminalState, flow: Flow, request: Message, reply: Message, now: datetime
) -> TerminalState:
    inp = flow.input
    entry = entry_from(
        state, now, NAME, request.text(11), int(request.text(4)), inp.card, request, reply, inp.operator,
        original_date=inp.orig_date,
    )  # fmt: skip
    return state.with_txn(entry)


def on_reply(
    state: TerminalState, flow: Flow, step: Step, reply: Message, now: datetime
) -> tuple[TerminalState, Flow]:
    return financial.handle_reply(state, flow, step, reply, now, NAME, record)


def on_timeout(
    state: TerminalState, flow: Flow, step: Step, now: datetime, reason: str
) -> tuple[TerminalState, Flow]:
    return financial.handle_timeout(state, flow, step, now, reason, NAME)
