"""The pre-authorisation family (spec 3.10), all reversible and MAC'd, 25 = 06:

* ``preauth``          预授权         0100 030000 60.1 10
* ``preauth_void``     预授权撤销     0100 200000 60.1 11 — 38 = auth code, 61 = batch+STAN+date
* ``completion``       预授权完成     0200 000000 60.1 20 — 38 = auth code, 61 = batch+STAN+date
* ``completion_void``  预授权完成撤销 0200 200000 60.1 21 — 37, 38, 61 of the completion

The original pre-auth is looked up in the batch log by its auth code (it may be from an
earlier batch: then 61.1/61.2 are zeros and 61.3 is the date the cashier keyed in). The card
may be presented again; without it, the stored PAN is sent (manual entry).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from posgate.dialect.fields import Field61
from posgate.iso8583 import Message
from posgate.terminal.operations import financial
from posgate.terminal.operations.base import Card, Flow, Input, Step, TerminalError, entry_from
from posgate.terminal.operations.void import original as original_by_voucher
from posgate.terminal.state import TerminalState, TxnEntry


def find_preauth(state: TerminalState, inp: Input) -> TxnEntry | None:
    if inp.voucher:
        t = state.txn(inp.voucher.zfill(6))
        if t is not None and t.operation == "preauth":
            return t
    if inp.auth_code:
        for t in reversed(state.txns):
            if t.operation == "preauth" and t.auth_code == inp.auth_code and t.status == "approved":
                return t
    return None


def validate(state: TerminalState, inp: Input) -> None:
    name = inp.operation
    if name == "completion_void":
        original_by_voucher(state, inp, "completion")
        return
    if name != "preauth_void" and inp.amount <= 0:
        raise TerminalError("请输入金额 / the amount must be above 0.00")
    if name == "preauth":
        if inp.card is None:
            raise TerminalError("请刷卡 / a card is required")
        return
    orig = find_preauth(state, inp)
    if orig is None:
        if not inp.auth_code or len(inp.orig_date) != 4:
            raise TerminalError(
                "请输入原授权码和原交易日期 / the original auth code and date (MMDD) are required"
            )
        if inp.card is None:
            raise TerminalError("请刷卡 / a card is required")


def _card(inp: Input, orig: TxnEntry | None) -> Card | None:
    if inp.card is not None:
        return inp.card
    return Card(pan=orig.pan, entry="manual", expiry=orig.expiry) if orig is not None else None


def build(state: TerminalState, flow: Flow, step: Step, now: datetime) -> tuple[TerminalState, Flow, Any]:
    name, inp = step.kind, flow.input
    if name == "preauth":
        return financial.build_request(state, flow, name, now, inp.card, inp.amount)
    if name == "completion_void":
        orig = original_by_voucher(state, inp, "completion")
        extra = {37: orig.rrn, 38: orig.auth_code, 61: Field61(orig.batch, orig.stan, orig.date).format()}
        flow = flow.with_data(original=orig.stan)
        return financial.build_request(state, flow, name, now, _card(inp, orig), orig.amount, extra)
    pre = find_preauth(state, inp)
    auth = pre.auth_code if pre is not None else inp.auth_code
    f61 = (
        Field61(pre.batch, pre.stan, pre.date)
        if pre is not None
        else Field61("000000", "000000", inp.orig_date)
    )
    amount = inp.amount or (pre.amount if pre is not None else 0)
    flow = flow.with_data(original=pre.stan if pre is not None else "")
    return financial.build_request(
        state, flow, name, now, _card(inp, pre), amount, {38: auth, 61: f61.format()}
    )


def _record_for(name: str) -> financial.Record:
    def record(
        state: TerminalState, flow: Flow, request: Message, reply: Message, now: datetime
    ) -> TerminalState:
        inp = flow.input
        orig_stan = flow.data.get("original", "")
        orig = state.txn(orig_stan) if orig_stan else None
        if orig is not None and name in ("completion_void", "preauth_void"):
            state = state.with_txn(replace(orig, status="voided"))
        entry = entry_from(
            state, now, name, request.text(11), int(request.text(4)), _card(inp, orig), request, reply, inp.operator,
            original_stan=orig_stan, original_batch=orig.batch if orig else "", original_date=orig.date if orig else inp.orig_date,
        )  # fmt: skip
        if name == "completion" and not entry.auth_code:
            entry = replace(entry, auth_code=request.text(38))
        return state.with_txn(entry)

    return record


def on_reply(
    state: TerminalState, flow: Flow, step: Step, reply: Message, now: datetime
) -> tuple[TerminalState, Flow]:
    return financial.handle_reply(state, flow, step, reply, now, step.kind, _record_for(step.kind))


def on_timeout(
    state: TerminalState, flow: Flow, step: Step, now: datetime, reason: str
) -> tuple[TerminalState, Flow]:
    return financial.handle_timeout(state, flow, step, now, reason, step.kind)
