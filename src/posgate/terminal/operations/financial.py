"""The engine shared by the online financial operations (sale, void, refund, balance, the
pre-auth family): build the request from the row of ``posgate.dialect.operations``, keep the
reversal record *before* the request leaves (section 8), validate the reply (section 10) and
turn it into a :class:`Result`.

Reply handling, in order (section 10 and docs/decisions.md R3):

1. the reply does not answer the request (MTI+10, 3, 4 unless 10, 11, 41, 42 when 00), its
   39 is not two characters of the response-code alphabet, it carries a MAC that fails
   (whatever 39 says), or it approves without a MAC: the reversal stays pending (reason
   ``06``, or ``A0`` for the MAC, which also owes a make-up sign-on) and the operation ends
   with an error;
2. an authenticated reply (a verified MAC) clears the reversal record, whatever 39 says (a
   decline is not reversed); a decline *without* a MAC is shown to the cashier but the
   reversal record is kept with reason ``06`` and goes before the next online message — the
   host MACs every reply to a good request MAC (R1), so an un-MAC'd decline either comes from
   a gate that executed nothing (reversing it is harmless: the host answers ``00``, D9) or
   is damage the terminal cannot tell from an approval;
3. 39 ∈ {A0, 99, 77, 22} (re-sign-on codes) the first time: sign on, (send the kept
   reversal,) then retry once with a new STAN; the second time, the decline stands and a
   sign-on is owed;
4. approved: the module's ``record`` writes the transaction log; the trickle follows.

No reply (``on_timeout``): the reversal stays pending with reason ``98`` (``06`` when the
connection broke after sending).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from posgate.dialect.fields import Balance
from posgate.domain.response_codes import APPROVED, RESIGN
from posgate.iso8583 import TLV, Message
from posgate.terminal.operations import chip
from posgate.terminal.operations.base import (
    REVERSAL_55_TAGS,
    Card,
    Flow,
    Step,
    authenticated,
    base_fields,
    card_fields,
    category,
    check_reply,
    code_result,
    error_result,
    field60,
    iso,
    masked,
    op,
    reply_details,
)
from posgate.terminal.state import PendingReversal, TerminalState, next_stan

Record = Callable[[TerminalState, Flow, Message, Message, datetime], TerminalState]


def reversal_message(request: Message, pan: str, reason: str = "98") -> Message:
    """The 0400 of section 8: the original's fields less 26, 35, 36, 37, 52, 53 (and 62, an SM4
    terminal's PIN block); 39 = reason; field 2 so the host can see the card without track
    data; a reduced field 55."""
    fields: dict[int, Any] = {k: v for k, v in request.items() if k not in (26, 35, 36, 37, 52, 53, 62, 64)}
    if 2 not in fields and 59 not in fields and pan:  # a QR payment keeps its code in 59 (Q1)
        fields[2] = pan
    icc = request.get(55)
    if isinstance(icc, TLV):
        reduced = TLV([(t, v) for t, v in icc.items if t in REVERSAL_55_TAGS])
        if len(reduced):
            fields[55] = reduced
        else:
            fields.pop(55, None)
    fields[39] = reason
    return Message("0400", fields)


def build_request(
    state: TerminalState,
    flow: Flow,
    name: str,
    now: datetime,
    card: Card | None,
    amount: int,
    extra: Mapping[int, Any] | None = None,
) -> tuple[TerminalState, Flow, Any]:
    o = op(name)
    state, stan = next_stan(state)
    f = base_fields(state, stan)
    f[3] = o.processing_code
    if amount or name != "balance":
        f[4] = f"{amount:012d}"
    f[25] = o.condition_code
    f[49] = state.config.currency
    if card is not None:
        f.update(card_fields(state, card))
    f[60] = field60(o.type_code, state.batch, o.nmic, card, partial=state.config.partial_approval)
    if extra:
        f.update({k: v for k, v in extra.items() if v not in (None, "")})
    msg = Message(o.mti, f)
    cat = category(card)
    if o.reversible:
        rec = PendingReversal(
            reversal_message(msg, card.pan if card else ""), name, stan, amount, cat, 0, iso(state, now)
        )
        state = replace(state, reversal=rec)
    return state, flow.with_data(stan=stan), (msg, True, cat)


def handle_reply(
    state: TerminalState,
    flow: Flow,
    step: Step,
    reply: Message,
    now: datetime,
    name: str,
    record: Record | None,
) -> tuple[TerminalState, Flow]:
    request = flow.request
    assert request is not None
    o = op(name)
    card = flow.input.card
    problem = check_reply(state, request, reply, mac=o.mac)
    if problem:
        if state.reversal is not None and o.reversible:
            rec = state.reversal.with_reason("A0" if problem == "mac" else "06")
            if reply.text(38).strip() and 38 not in rec.message:
                rec = replace(rec, message=rec.message.with_fields({38: reply.text(38)}))
            state = replace(state, reversal=rec)
        if problem == "mac":
            state = replace(state, sign_on_owed="reply MAC failure")
            result = error_result(
                name,
                "mac",
                "MAC校验错，交易将被冲正",
                "reply MAC check failed; the transaction will be reversed",
            )
        else:
            result = error_result(
                name,
                "mismatch",
                "应答报文不符，交易将被冲正",
                f"the reply does not match the request ({problem}); the transaction will be reversed",
            )
        if not o.reversible:
            result = replace(result, message_zh=result.message_zh.replace("，交易将被冲正", "，请核实交易结果"),
                             message_en=result.message_en.replace("the transaction will be reversed", "check the transaction"))  # fmt: skip
        result = replace(
            result,
            stan=request.text(11),
            batch=state.batch,
            amount=int(request.text(4) or 0),
            pan_masked=masked(card),
        )
        return state, replace(flow, queue=(), result=result)
    code = reply.text(39)
    kept = False
    pending = state.reversal
    if o.reversible and pending is not None:
        if authenticated(reply, mac=o.mac):
            state = replace(state, reversal=None)
        else:
            kept = True
            state = replace(state, reversal=pending.with_reason("06"))
            flow = flow.note(
                f"应答码 {code} 未经MAC认证，交易将被冲正 / response {code} carries no MAC: "
                "the transaction will be reversed before the next one"
            )
    if code in RESIGN:
        if not flow.retried:
            flow = replace(flow, retried=True).note(
                f"应答码 {code}：重新签到后重试 / response {code}: signing on again, then retrying once"
            )
            first = (Step("sign_on", cause=f"response {code}"), *((Step("reversal"),) if kept else ()))
            return state, flow.push_front(*first, replace(step))
        state = replace(state, sign_on_owed=f"response {code}")
    det = reply_details(reply, card.org if card is not None else "CUP")
    amount = int(reply.text(4) or request.text(4) or 0)
    balance = None
    if reply.text(54):
        try:
            balance = Balance.parse(reply.text(54)).amount
        except ValueError:
            balance = None
    result = code_result(
        name,
        code,
        stan=request.text(11),
        batch=state.batch,
        amount=amount,
        pan_masked=masked(card),
        balance=balance,
        **det,
    )
    if code in APPROVED and chip.applies(card, request):
        assert card is not None
        completed = chip.second_generate_ac(card, request, reply)
        if completed is None:  # the card refuses what the issuer approved: undo it (reason 06)
            return _card_declined(state, flow, request, reply, name, pending, o.reversible)
        request = request.with_fields({55: completed})  # the TC is what the batch upload carries
    if code in APPROVED:
        if record is not None:
            state = record(state, flow, request, reply, now)
            if flow.input.signature and state.txn(request.text(11), state.batch) is not None:
                from posgate.terminal.operations.signature import attach

                state = attach(state, flow.input, request.text(11))
        from posgate.terminal.machine import trickle_steps

        flow = flow.push_back(*trickle_steps(state))
    return state, replace(flow, result=result)


def _card_declined(
    state: TerminalState, flow: Flow, request: Message, reply: Message, name: str,
    pending: PendingReversal | None, reversible: bool,
) -> tuple[TerminalState, Flow]:  # fmt: skip
    """The issuer approved but the card declined (its ARPC check failed): nothing is recorded and
    the approval is reversed at once (reason 06, with the authorisation code)."""
    card = flow.input.card
    result = error_result(
        name, "card_declined", "卡片拒绝交易，交易将被冲正",
        "the card declined: the issuer's answer (ARPC) did not verify; the transaction will be reversed",
        stan=request.text(11), batch=state.batch, amount=int(request.text(4) or 0), pan_masked=masked(card),
    )  # fmt: skip
    if not reversible or pending is None:
        return state, replace(flow, queue=(), result=replace(result, message_zh="卡片拒绝交易",
                                                            message_en="the card declined"))  # fmt: skip
    rec = pending.with_reason("06")
    if reply.text(38).strip():
        rec = replace(rec, message=rec.message.with_fields({38: reply.text(38)}))
    state = replace(state, reversal=rec)
    return state, replace(flow, queue=(Step("reversal"),), result=result)


def handle_timeout(
    state: TerminalState, flow: Flow, step: Step, now: datetime, reason: str, name: str
) -> tuple[TerminalState, Flow]:
    request = flow.request
    assert request is not None
    o = op(name)
    card = flow.input.card
    if o.reversible and state.reversal is not None:
        state = replace(state, reversal=state.reversal.with_reason(reason))
        zh, en = (
            "交易超时，已记录冲正",
            "no reply from the host; the transaction will be reversed before the next one",
        )
    else:
        zh, en = "交易超时，请核实交易结果", "no reply from the host; check the outcome before trying again"
    if reason != "98":
        zh, en = (
            zh.replace("交易超时", "通讯中断"),
            en.replace("no reply from the host", "the connection broke"),
        )
    result = error_result(
        name,
        "timeout",
        zh,
        en,
        stan=request.text(11),
        batch=state.batch,
        amount=int(request.text(4) or 0),
        pan_masked=masked(card),
    )
    return state, replace(flow, queue=(), result=result)
