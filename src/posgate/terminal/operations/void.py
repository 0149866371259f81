"""Sale void (消费撤销, 0200/0210, 200000, 60.1 = 23; spec 3.7). Reversible, MAC'd.

The original is found in the batch log by its voucher number (STAN): amount = the original
amount, 37 = its RRN, 38 = its auth code, 61 = original batch + STAN. The card may be swiped
again; without it the stored PAN is sent (manual entry, as BW does). An approved void marks
the sale ``voided`` (it stays in the debit totals; the void counts as a credit, 9.1).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from posgate.dialect.fields import Field61
from posgate.iso8583 import Message
from posgate.terminal.operations import financial
from posgate.terminal.operations.base import Card, Flow, Input, Step, TerminalError, entry_from
from posgate.terminal.state import TerminalState, TxnEntry

NAME = "void"
ORIGINAL_OPERATION = "sale"


def original(state: TerminalState, inp: Input, of: str = ORIGINAL_OPERATION) -> TxnEntry:
    stan = inp.voucher.zfill(6) if inp.voucher else ""
    t = state.txn(stan, state.batch) if stan else None
    if t is None or t.operation != of:
        raise TerminalError(f"原交易不存在 / no {of} with voucher {stan or '(none)'} in the current batch")
    if t.status != "approved":
        raise TerminalError(f"原交易已撤销 / voucher {stan} was already voided")
    if inp.card is not None and inp.card.pan != t.pan:
        raise TerminalError("卡号与原交易不符 / the card is not the one of the original transaction")
    return t


def validate(state: TerminalState, inp: Input) -> None:
    original(state, inp)


def card_for(orig: TxnEntry, inp: Input) -> Card:
    if inp.card is not None:
        return inp.card
    if orig.entry_mode.startswith("03"):  # a QR payment: its code again, from the log (Q1)
        return Card(pan=orig.pan, entry="qr")
    return Card(pan=orig.pan, entry="manual", expiry=orig.expiry)


def build(state: TerminalState, flow: Flow, step: Step, now: datetime) -> tuple[TerminalState, Flow, Any]:
    orig = original(state, flow.input)
    extra = {37: orig.rrn, 38: orig.auth_code, 61: Field61(orig.batch, orig.stan).format()}
    flow = flow.with_data(original=orig.stan)
    return financial.build_request(state, flow, NAME, now, card_for(orig, flow.input), orig.amount, extra)


def record(
    state: TerminalState, flow: Flow, request: Message, reply: Message, now: datetime
) -> TerminalState:
    orig = state.txn(flow.data["original"], state.batch)
    assert orig is not None
    state = state.with_txn(replace(orig, status="voided"))
    entry = entry_from(
        state, now, NAME, request.text(11), orig.amount, card_for(orig, flow.input), request, reply, flow.input.operator,
        original_stan=orig.stan, original_batch=orig.batch, original_date=orig.date,
    )  # fmt: skip
    return state.with_txn(replace(entry, card_org=entry.card_org or orig.card_org))


def on_reply(
    state: TerminalState, flow: Flow, step: Step, reply: Message, now: datetime
) -> tuple[TerminalState, Flow]:
    return financial.handle_reply(state, flow, step, reply, now, NAME, record)


def on_timeout(
    state: TerminalState, flow: Flow, step: Step, now: datetime, reason: str
) -> tuple[TerminalState, Flow]:
    return financial.handle_timeout(state, flow, step, now, reason, NAME)
