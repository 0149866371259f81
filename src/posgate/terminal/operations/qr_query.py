"""Scan-to-pay query (扫码查询, 0200/0210, 730000, 60.1 = 22; docs/decisions.md Q2). MAC'd,
not reversible (it moves no money by itself).

A QR sale answered ``09`` waits in the log as ``qr_pending``: the wallet holds it until the
customer enters a password on the phone. The query names it by 61 (batch + STAN) and carries
its code (59) and amount (4). ``00`` makes the logged sale ``approved`` with the RRN and auth
code of the answer (it then counts in the totals, can be voided, refunded, reprinted); ``09``
leaves it waiting; any other authenticated answer is final: the sale becomes ``declined``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from posgate.dialect.fields import Field61
from posgate.dialect.qr import PENDING
from posgate.iso8583 import Message
from posgate.terminal.operations import financial
from posgate.terminal.operations.base import (
    Card,
    Flow,
    Input,
    Step,
    TerminalError,
    authenticated,
    reply_details,
)
from posgate.terminal.state import TerminalState, TxnEntry

NAME = "qr_query"


def original(state: TerminalState, inp: Input) -> TxnEntry:
    """The QR sale to ask about: the voucher given, else the latest one still waiting."""
    if inp.voucher:
        t = state.txn(inp.voucher.zfill(6), state.batch)
        if t is None or t.operation != "sale" or not t.entry_mode.startswith("03"):
            raise TerminalError(
                f"原交易不存在 / no QR sale with voucher {inp.voucher.zfill(6)} in the current batch"
            )
        return t
    waiting = [t for t in state.txns if t.batch == state.batch and t.status == "qr_pending"]
    if not waiting:
        raise TerminalError("没有等待中的扫码交易 / no QR payment is waiting for the customer")
    return waiting[-1]


def validate(state: TerminalState, inp: Input) -> None:
    original(state, inp)


def build(state: TerminalState, flow: Flow, step: Step, now: datetime) -> tuple[TerminalState, Flow, Any]:
    orig = original(state, flow.input)
    flow = flow.with_data(original=orig.stan)
    card = Card(pan=orig.pan, entry="qr", organisation=orig.card_org)
    extra = {61: Field61(orig.batch, orig.stan).format()}
    return financial.build_request(state, flow, NAME, now, card, orig.amount, extra)


def record(
    state: TerminalState, flow: Flow, request: Message, reply: Message, now: datetime
) -> TerminalState:
    orig = state.txn(flow.data["original"], state.batch)
    assert orig is not None
    if orig.status != "qr_pending":
        return state  # asked again about a sale already final: nothing changes
    det = reply_details(reply, orig.card_org)
    return state.with_txn(replace(
        orig, status="approved", response_code="00", rrn=det["rrn"] or orig.rrn,
        auth_code=det["auth_code"], card_org=det["card_org"] or orig.card_org, settlement_date=reply.text(15),
    ))  # fmt: skip


def on_reply(
    state: TerminalState, flow: Flow, step: Step, reply: Message, now: datetime
) -> tuple[TerminalState, Flow]:
    state, flow = financial.handle_reply(state, flow, step, reply, now, NAME, record)
    code, result = reply.text(39), flow.result
    orig = state.txn(flow.data["original"], state.batch)
    if result is None or result.error or orig is None:
        return state, flow
    if orig.status == "qr_pending" and code == PENDING:
        flow = replace(flow, result=replace(result, error="pending", message_zh="顾客尚未完成支付，请稍后再查询",
                                            message_en="the customer has not paid yet; query again"))  # fmt: skip
    elif orig.status == "qr_pending" and code not in ("00", PENDING) and authenticated(reply, mac=True):
        state = state.with_txn(replace(orig, status="declined", response_code=code))
    result = flow.result
    assert result is not None
    return state, replace(flow, result=replace(result, amount=orig.amount, pan_masked=orig.pan_masked))


def on_timeout(
    state: TerminalState, flow: Flow, step: Step, now: datetime, reason: str
) -> tuple[TerminalState, Flow]:
    return financial.handle_timeout(state, flow, step, now, reason, NAME)
