"""Refund (退货, 0220/0230, 200000, 60.1 = 25; spec 3.8). MAC'd, **not** reversible: an advice,
stored and forwarded until acknowledged (docs/decisions.md R5, :mod:`advice`).

37 = the original RRN; 61 = original batch + STAN + date when the original is in this
terminal's log, else zeros + the original date (as BW sends); 63 = the original's card
organisation (LY) or ``000``. The amount may be less than the original (partial refund). The
card goes as an advice carries it: 2 + 14 + 22 (+ 23/55 for chip), no track, no PIN block.

Theory of operation: the refund enters the batch log as ``refund_pending`` with its request
(without MAC) *before* it leaves, so a lost reply or a power loss leaves it queued. Only a
reply with a verified MAC acknowledges it (R3): approved → ``approved`` (it counts as a credit
in the totals), declined → ``declined``. Anything else — no reply, a damaged reply, a MAC that
fails, a decline without a MAC — leaves it queued: it is re-sent with the same STAN and
content before the next online message and before settlement (which waits for it); the host
answers the retransmission from its record (D8). A re-sign-on code without a MAC (``A0``,
``22``...) makes the terminal sign on and re-send the same refund at once. After the advice
attempts it becomes ``refund_unconfirmed``: flagged, out of the totals, no longer re-sent.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from posgate.dialect.cup import CODEC
from posgate.dialect.fields import Field61, Field63
from posgate.domain.response_codes import APPROVED, RESIGN
from posgate.iso8583 import Message
from posgate.terminal.operations import advice, financial
from posgate.terminal.operations.base import (
    Flow,
    Input,
    Step,
    TerminalError,
    advice_card_fields,
    authenticated,
    category,
    check_reply,
    code_result,
    error_result,
    field60,
    local,
    op,
    reply_details,
)
from posgate.terminal.state import TerminalState, TxnEntry

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
    if step.ref:
        return _resend(state, flow, step)
    inp = flow.input
    card = inp.card
    assert card is not None
    orig = next((t for t in state.txns if t.rrn == inp.rrn and t.operation in ("sale", "completion")), None)
    f61 = (
        Field61(orig.batch, orig.stan, inp.orig_date) if orig else Field61("000000", "000000", inp.orig_date)
    )
    o = op(NAME)
    extra: dict[int, Any] = {
        37: inp.rrn,
        61: f61.format(),
        63: Field63(orig.card_org if orig else "000").format(),
        60: field60(o.type_code, state.batch, o.nmic, card, partial=state.config.partial_approval),
        **advice_card_fields(card),
    }
    state, flow, built = financial.build_request(state, flow, NAME, now, None, inp.amount, extra)
    msg: Message = built[0]
    lt = local(state, now)
    entry = TxnEntry(
        stan=msg.text(11), batch=state.batch, operation=NAME, amount=inp.amount, pan=card.pan,
        expiry=msg.text(14), entry_mode=msg.text(22), card_org=card.org, response_code="",
        date=lt.strftime("%m%d"), time=lt.strftime("%H%M%S"), at=lt.replace(microsecond=0).isoformat(),
        operator=inp.operator, status="refund_pending", original_stan=orig.stan if orig else "",
        original_batch=orig.batch if orig else "", original_date=inp.orig_date, send_count=1,
        card_seq=msg.text(23), icc=msg.data(55) or b"", request=CODEC.encode(msg),
    )  # fmt: skip
    state = state.with_txn(entry)
    return state, flow, (msg, True, category(card))


def _resend(state: TerminalState, flow: Flow, step: Step) -> tuple[TerminalState, Flow, Any]:
    t = state.txn(step.ref)
    if t is None or t.status != "refund_pending" or not t.request:
        return state, flow, None
    state = state.with_txn(replace(t, send_count=t.send_count + 1))
    msg = CODEC.decode(t.request)
    return state, flow.with_data(stan=t.stan), (msg, True, "61" if t.entry_mode[:2] in ("05", "07") else "60")


def _entry(state: TerminalState, request: Message) -> TxnEntry:
    t = state.txn(request.text(11))
    assert t is not None and t.operation == NAME
    return t


def on_reply(
    state: TerminalState, flow: Flow, step: Step, reply: Message, now: datetime
) -> tuple[TerminalState, Flow]:
    request = flow.request
    assert request is not None
    t = _entry(state, request)
    problem = check_reply(state, request, reply, mac=True)
    code = reply.text(39)
    if problem:
        if problem == "mac":
            state = replace(state, sign_on_owed="reply MAC failure")
        return _unacknowledged(state, flow, step, t, now, problem, "mac" if problem == "mac" else "mismatch")
    if not authenticated(reply, mac=True):
        if code in RESIGN:
            if step.primary and not flow.retried:
                flow = replace(flow, retried=True).note(
                    f"应答码 {code}：重新签到后重发退货 / response {code}: signing on again, then sending the refund again"
                )
                return state, flow.push_front(Step("sign_on", cause=f"response {code}"), Step(NAME, ref=t.stan, primary=True))
            state = replace(state, sign_on_owed=f"response {code}")
        return _unacknowledged(state, flow, step, t, now, f"{code} without a MAC", "unconfirmed", code)
    # The host's authenticated answer: the refund's outcome is known.
    det = reply_details(reply, t.card_org)
    if code in APPROVED:
        f44 = reply.text(44)
        t = replace(t, status="approved", response_code=code, rrn=det["rrn"], auth_code=det["auth_code"],
                    card_org=det["card_org"], date=det["date"] or t.date, time=det["time"] or t.time,
                    issuer_bank=f44[0:11].strip(), acquirer_bank=f44[11:22].strip(),
                    settlement_date=reply.text(15), request=b"")  # fmt: skip
    else:
        t = replace(t, status="declined", response_code=code, request=b"")
    state = state.with_txn(t)
    if not step.primary:
        zh, en = ("已批准", "approved") if code in APPROVED else (f"被拒绝 {code}", f"declined {code}")
        return state, flow.note(f"退货 {t.stan} 已确认：{zh} / refund {t.stan} acknowledged: {en}")
    if code in RESIGN and not flow.retried:
        # The host refused it before executing anything: sign on, then a new refund (new STAN).
        flow = replace(flow, retried=True).note(
            f"应答码 {code}：重新签到后重试 / response {code}: signing on again, then retrying once"
        )
        return state, flow.push_front(Step("sign_on", cause=f"response {code}"), Step(NAME, primary=True))
    if code in RESIGN:
        state = replace(state, sign_on_owed=f"response {code}")
    result = code_result(NAME, code, stan=t.stan, batch=t.batch, amount=t.amount, pan_masked=t.pan_masked, **det)
    if code in APPROVED:
        from posgate.terminal.machine import trickle_steps

        flow = flow.push_back(*trickle_steps(state))
    return state, replace(flow, result=result)


_PENDING = {
    "timeout": ("退货超时，结果未知，将在下一笔交易前自动重发",
                "no reply to the refund: it will be sent again (same voucher) before the next transaction"),
    "mac": ("退货应答MAC校验错，将自动重发", "the refund's reply failed its MAC check: it will be sent again"),
    "mismatch": ("退货应答报文不符，将自动重发", "the refund's reply does not match: it will be sent again"),
    "unconfirmed": ("退货应答未经认证，将自动重发确认",
                    "the refund's answer carries no MAC: it will be sent again to confirm it"),
}  # fmt: skip


def _unacknowledged(
    state: TerminalState, flow: Flow, step: Step, t: TxnEntry, now: datetime, why: str, error: str,
    code: str = "",
) -> tuple[TerminalState, Flow]:  # fmt: skip
    state, flow, flagged = advice.unacknowledged(state, flow, t, now, why)
    if not step.primary:
        if error == "timeout":
            flow = replace(flow, queue=tuple(s for s in flow.queue if not s.secondary))
        return state, flow.note(f"退货 {t.stan} 未获确认 / refund {t.stan} not acknowledged ({why})")
    zh, en = _PENDING[error]
    if flagged:
        zh, en = "退货未获确认，请与收单机构核实", "the refund is unconfirmed: check it with the acquirer"
    result = error_result(NAME, error, zh, en, response_code=code, stan=t.stan, batch=t.batch, amount=t.amount,
                          pan_masked=t.pan_masked)  # fmt: skip
    return state, replace(flow, queue=(), result=result)


def on_timeout(
    state: TerminalState, flow: Flow, step: Step, now: datetime, reason: str
) -> tuple[TerminalState, Flow]:
    request = flow.request
    assert request is not None
    t = _entry(state, request)
    return _unacknowledged(state, flow, step, t, now, "no reply" if reason == "98" else "connection lost", "timeout")
