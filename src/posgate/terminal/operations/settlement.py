"""Settlement (结算, 0500/0510, 60.3 201; spec 9.1, 9.2, D10) and closing the batch.

Theory of operation: before the 0500, every advice sent and not yet acknowledged is re-sent
(same STAN and content, R5) and every pending offline advice, script advice and e-signature is
trickled (9.3 step 1); a refund still unacknowledged then stops the settlement (its outcome is
unknown and no batch upload carries it: settle again). The 0500 carries the terminal's totals in 48 — per side
(domestic = card organisation ``CUP`` from 63.1 of the replies, else foreign): debit = sale,
completion, offline settlement/adjust/tip; credit = void, refund, completion void; a voided
sale stays in the debits; declined advices and adjusted originals are left out. The 0510's
48 carries the result flags (``1`` balanced, ``2`` not, ``3`` error; ``0`` is read as
balanced); 39 is not relied on (D10) unless it asks for a re-sign-on.

The reply queues the batch upload (:mod:`batch_upload`): the online transactions of the
unbalanced side(s), ≤ 8 per 0320/201; every offline advice re-sent with its own 60.1 and
60.3 ``000`` (D11); the end 0320 (207 when both sides balanced, 202 otherwise, 48 = count).
Then ``settlement_close`` (a local step): the slip data is kept for reprint, the batch log
is emptied, batch + 1, and, when parameter 21 says so, a sign-off follows.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from posgate.dialect.fields import Field60, Field63, SettlementTotals, SideTotals
from posgate.domain.response_codes import RESIGN
from posgate.iso8583 import TLV, CodecError, Message
from posgate.terminal.operations.advice import refunds_pending
from posgate.terminal.operations.base import (
    Flow,
    Input,
    Result,
    Step,
    base_fields,
    error_result,
    event,
    iso,
    op,
)
from posgate.terminal.state import TerminalState, TxnEntry, next_batch, next_stan

EXCLUDED = ("offline_declined", "adjusted", "refund_pending", "refund_unconfirmed", "declined", "qr_pending")
RESULT_TEXT = {
    "1": ("对账平", "balanced"),
    "0": ("对账平", "balanced"),
    "2": ("对账不平", "not balanced"),
    "3": ("对账出错", "error"),
}


def validate(state: TerminalState, inp: Input) -> None:
    """Settlement is always allowed (an empty batch settles with zero totals)."""


def counts(t: TxnEntry) -> str:
    if t.status in EXCLUDED:
        return ""
    return op(t.operation).settlement


def batch_txns(state: TerminalState) -> list[TxnEntry]:
    return [t for t in state.txns if t.batch == state.batch]


def totals(state: TerminalState) -> SettlementTotals:
    acc = [[0, 0, 0, 0], [0, 0, 0, 0]]
    for t in batch_txns(state):
        side = counts(t)
        if not side:
            continue
        a = acc[0 if t.domestic else 1]
        i = 0 if side == "debit" else 2
        a[i] += t.amount
        a[i + 1] += 1
    d, f = acc
    return SettlementTotals(SideTotals(d[0], d[1], d[2], d[3]), SideTotals(f[0], f[1], f[2], f[3]))


def totals_dict(t: SettlementTotals) -> dict[str, Any]:
    def side(s: SideTotals) -> dict[str, int]:
        return {
            "debit_amount": s.debit_amount,
            "debit_count": s.debit_count,
            "credit_amount": s.credit_amount,
            "credit_count": s.credit_count,
        }

    return {"domestic": side(t.domestic), "foreign": side(t.foreign)}


def has_tc(icc: bytes) -> bool:
    """Field 55 as kept holds a transaction certificate (9F27 = 40, after the card's second
    GENERATE AC)."""
    if not icc:
        return False
    try:
        return TLV.decode(icc).get("9F27") == b"\x40"
    except CodecError:
        return False


def balanced(flag: str) -> bool:
    return flag in ("0", "1")


def upload_steps(state: TerminalState, domestic_flag: str, foreign_flag: str) -> list[Step]:
    """The batch upload of 9.3 for these result flags (D11)."""
    steps: list[Step] = []
    for foreign, flag in ((False, domestic_flag), (True, foreign_flag)):
        if balanced(flag):
            continue
        stans = [
            t.stan for t in batch_txns(state) if counts(t) and not t.offline and (not t.domestic) == foreign
        ]
        for i in range(0, len(stans), 8):
            steps.append(Step("batch_upload", data=tuple(stans[i : i + 8])))
    for t in batch_txns(state):
        if t.offline and t.status in ("offline_sent", "offline_pending"):
            steps.append(Step("batch_upload", ref=t.stan, data="offline"))
    # Chip transactions completed with a TC (issue 14): their TC goes up, 203 when the side
    # balanced, 205 when not (9.3).
    for t in batch_txns(state):
        if counts(t) and not t.offline and has_tc(t.icc):
            flag = foreign_flag if not t.domestic else domestic_flag
            steps.append(Step("batch_upload", ref=t.stan, data="203" if balanced(flag) else "205"))
    end = "207" if balanced(domestic_flag) and balanced(foreign_flag) else "202"
    steps.append(Step("batch_end", data=end))
    return steps


def build(state: TerminalState, flow: Flow, step: Step, now: datetime) -> tuple[TerminalState, Flow, Any]:
    if step.kind == "settlement_close":
        return close(state, flow, now)
    waiting = refunds_pending(state)
    if waiting:
        # A refund whose outcome is unknown has no batch-upload path: settle once it is known
        # (the re-sends before this step did not get its acknowledgement), or flagged (R5).
        stans = ", ".join(t.stan for t in waiting)
        result = error_result("settlement", "pending", f"退货 {stans} 待确认，请稍后重新结算",
                              f"refund {stans} not acknowledged yet: settle again later", batch=state.batch)  # fmt: skip
        return state, replace(flow, queue=(), result=result), None
    state, stan = next_stan(state)
    t = totals(state)
    f = base_fields(state, stan)
    f[48] = t.format()
    f[49] = state.config.currency
    f[60] = Field60("00", state.batch, "201").format()
    f[63] = Field63(flow.input.operator or "01").format()
    flow = flow.with_data(totals=totals_dict(t), settle_batch=state.batch, settle_stan=stan)
    return state, flow, (Message("0500", f), False, "60")


def on_reply(
    state: TerminalState, flow: Flow, step: Step, reply: Message, now: datetime
) -> tuple[TerminalState, Flow]:
    request = flow.request
    assert request is not None
    code = reply.text(39)
    if reply.mti != "0510" or reply.text(11) != request.text(11) or reply.text(41) != request.text(41):
        return state, replace(
            flow,
            queue=(),
            result=error_result(
                "settlement", "mismatch", "结算应答不符", "the settlement reply does not match"
            ),
        )
    if code in RESIGN and not flow.retried:
        flow = replace(flow, retried=True).note(
            f"应答码 {code}：重新签到后重试 / response {code}: signing on again, then retrying"
        )
        return state, flow.push_front(Step("sign_on", cause=f"response {code}"), replace(step))
    try:
        host = SettlementTotals.parse(reply.text(48))
    except CodecError:
        from posgate.terminal.operations.base import code_result

        result = code_result("settlement", code or "06", stan=request.text(11), batch=state.batch)
        return state, replace(flow, queue=(), result=result)
    dom, fgn = host.domestic.flag, host.foreign.flag
    flow = flow.with_data(
        domestic_result=dom, foreign_result=fgn, host_totals=totals_dict(host), uploaded=0, upload_ok=True
    )
    steps = upload_steps(state, dom, fgn)
    steps.append(Step("settlement_close"))
    if state.auto_sign_off:
        steps.append(Step("sign_off", cause="auto sign-off after settlement"))
    return state, flow.push_front(*steps)


def on_timeout(
    state: TerminalState, flow: Flow, step: Step, now: datetime, reason: str
) -> tuple[TerminalState, Flow]:
    result = error_result(
        "settlement",
        "timeout",
        "结算超时，请重新结算",
        "no reply to the settlement; settle again",
        batch=state.batch,
    )
    return state, replace(flow, queue=(), result=result)


def close(state: TerminalState, flow: Flow, now: datetime) -> tuple[TerminalState, Flow, Any]:
    d = flow.data
    dom, fgn = d.get("domestic_result", "3"), d.get("foreign_result", "3")
    settled = d.get("settle_batch", state.batch)
    new_batch = next_batch(settled)
    unsigned = [t.stan for t in batch_txns(state) if t.signature in ("unsigned", "pending")]
    slip = {
        "settled_batch": settled,
        "new_batch": new_batch,
        "domestic_result": dom,
        "foreign_result": fgn,
        "domestic_result_text": RESULT_TEXT.get(dom, ("对账出错", "error"))[0],
        "foreign_result_text": RESULT_TEXT.get(fgn, ("对账出错", "error"))[0],
        "totals": d.get("totals", {}),
        "host_totals": d.get("host_totals", {}),
        "batch_upload_count": d.get("uploaded", 0),
        "batch_upload_complete": bool(d.get("upload_ok", True)),
        "batch_upload_end": d.get("upload_end", ""),
        "unsigned": unsigned,
        "settled_at": iso(state, now),
        "stan": d.get("settle_stan", ""),
        "terminal_id": state.config.terminal_id,
        "merchant_id": state.config.merchant_id,
        "merchant_name": state.merchant_name,
    }
    state = replace(state, batch=new_batch, txns=(), signatures={}, last_settlement=slip)
    state = event(
        state,
        now,
        "settlement",
        "",
        f"domestic {dom} foreign {fgn}",
        f"batch {settled} → {new_batch}; uploaded {slip['batch_upload_count']}",
    )
    both = balanced(dom) and balanced(fgn)
    result = Result(
        "settlement",
        approved=True,
        response_code="00",
        message_zh="结算完成 " + ("对账平" if both else "对账不平"),
        message_en="Settlement complete: " + ("balanced" if both else "not balanced, batch uploaded"),
        stan=slip["stan"],
        batch=settled,
        settlement=slip,
    )
    return state, replace(flow, result=result), None
