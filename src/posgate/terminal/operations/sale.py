"""Sale (消费, 0200/0210, 000000, 25 = 00, 60.1 = 22; spec 3.6). Reversible, MAC'd.

The card data becomes fields 2/14/22/23/35/36/55 (tracks TDK-encrypted under scheme 004),
the PIN a format-0 block under the PIK in 52 with 26 = 12 and 53. An approved sale enters the
batch log (debit; ``unsigned`` until its e-signature goes up); an IC reply carrying issuer
scripts (71/72) queues a script-result advice.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from posgate.dialect.qr import PENDING
from posgate.iso8583 import TLV, Message
from posgate.terminal.operations import financial
from posgate.terminal.operations.base import Flow, Input, Step, TerminalError, entry_from
from posgate.terminal.operations.ic_params import card_aid, contactless_cvm, no_cvm_limit
from posgate.terminal.state import TerminalState

NAME = "sale"
# What a cashier is told when a scanned code is refused (the wire code is the card's, Q2).
QR_MESSAGES = {
    "54": ("付款码已失效，请顾客刷新付款码", "the payment code has expired: ask the customer to refresh it"),
    "51": (
        "余额不足，请顾客更换付款方式",
        "not sufficient funds: ask the customer for another payment method",
    ),
    "14": ("无效付款码", "invalid payment code"),
}


def validate(state: TerminalState, inp: Input) -> None:
    if inp.card is None or not inp.card.pan:
        raise TerminalError("请刷卡或扫码 / a card or a payment code is required")
    if inp.amount <= 0:
        raise TerminalError("请输入金额 / the amount must be above 0.00")
    if contactless_cvm(state, inp.card, inp.amount) == "pin" and not inp.card.pin:
        limit = no_cvm_limit(state, card_aid(inp.card)) or 0
        raise TerminalError(f"超过免密限额 {limit // 100}.{limit % 100:02d}，请输入密码 / above the no-PIN limit "
                            f"{limit // 100}.{limit % 100:02d}: the cardholder must enter the PIN")  # fmt: skip


def script_id(reply: Message) -> str:
    """``pending:<id>`` when the reply's field 55 carries issuer scripts (71/72), else ""."""
    icc = reply.get(55)
    if not isinstance(icc, TLV):
        return ""
    for tag, value in icc.items:
        if tag in ("71", "72"):
            sid = value.get("9F18") if isinstance(value, TLV) else None
            return "pending:" + (sid.hex().upper() if isinstance(sid, bytes) else "00000000")
    return ""


def record(
    state: TerminalState, flow: Flow, request: Message, reply: Message, now: datetime
) -> TerminalState:
    inp = flow.input
    entry = entry_from(
        state, now, NAME, request.text(11), int(request.text(4)), inp.card, request, reply, inp.operator
    )
    entry = replace(entry, script=script_id(reply))
    if flow.data.get("no_cvm"):  # 免密免签: no PIN was asked, no signature is (docs/decisions.md C2)
        entry = replace(entry, no_cvm=True, signature="")
    return state.with_txn(entry)


def build(state: TerminalState, flow: Flow, step: Step, now: datetime) -> tuple[TerminalState, Flow, Any]:
    card, amount = flow.input.card, flow.input.amount
    if contactless_cvm(state, card, amount) == "none":
        # qPBOC at or under the no-CVM limit: online without a PIN even if one was keyed (22 = 072).
        assert card is not None
        state, flow, built = financial.build_request(state, flow, NAME, now, replace(card, pin=""), amount)
        return state, flow.with_data(no_cvm=True), built
    return financial.build_request(state, flow, NAME, now, card, amount)


def on_reply(
    state: TerminalState, flow: Flow, step: Step, reply: Message, now: datetime
) -> tuple[TerminalState, Flow]:
    state, flow = financial.handle_reply(state, flow, step, reply, now, NAME, record)
    card, result = flow.input.card, flow.result
    if (card is not None and card.entry == "qr" and reply.text(39) == PENDING and result is not None
            and not result.error and state.reversal is None):  # fmt: skip
        # The wallet waits for the customer's password (Q2): an authenticated 09 is kept in the
        # log as ``qr_pending`` (counted nowhere) for the query that will settle it.
        request = flow.request
        assert request is not None
        entry = entry_from(state, now, NAME, request.text(11), int(request.text(4)), card, request, reply,
                           flow.input.operator, status="qr_pending")  # fmt: skip
        state = state.with_txn(entry)
        result = replace(result, error="pending", message_zh="等待顾客输入密码，请稍后查询",
                         message_en="waiting for the customer's password; query the payment "
                                    f"(posgate terminal query {request.text(11)})")  # fmt: skip
        flow = replace(flow, result=result)
    elif card is not None and card.entry == "qr" and result is not None and reply.text(39) in QR_MESSAGES:
        zh, en = QR_MESSAGES[reply.text(39)]
        flow = replace(flow, result=replace(result, message_zh=zh, message_en=en))
    return state, flow


def on_timeout(
    state: TerminalState, flow: Flow, step: Step, now: datetime, reason: str
) -> tuple[TerminalState, Flow]:
    return financial.handle_timeout(state, flow, step, now, reason, NAME)
