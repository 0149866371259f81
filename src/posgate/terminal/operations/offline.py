"""Offline transactions and their advices (离线结算 30 / 结算调整 32 / 追加小费 34; spec 3.11).

Theory of operation: an offline transaction is approved by phone (an auth code the cashier
keys in), so :func:`capture` only records it in the batch log with status
``offline_pending`` and a STAN of its own (its voucher number) — nothing is sent. Its advice
(0220, MAC'd, not reversible) is then *trickled*: sent after the next successful online
transaction and before settlement (section 10), with the transaction's own STAN, until the
host accepts it (``offline_sent``) or declines it (``offline_declined``, left out of the
totals). Once sent without an acknowledgement it is in doubt: it goes again, same STAN and
content, *before* the next online message (:mod:`advice`, docs/decisions.md R5), until
acknowledged or its attempts are used up (flagged; the batch upload still carries it, D11). Acknowledged means a reply with a verified MAC (docs/decisions.md R3): a reply whose
MAC fails, a decline without a MAC or a damaged reply leaves it ``offline_pending``. A timeout
stops the trickle; the advice waits for the next chance. Each attempt counts in
``send_count``.

* 30 offline settlement: 38 = auth code, 61 = zeros + date + auth method ``00``, 63 = card org
  — the card's own (the reader's, by BIN: 62… CUP, 4… VIS...) until the host's reply says
  otherwise in 63.1; it decides domestic or foreign in the settlement totals, as on the host.
* 32 settlement adjust: a new amount for an earlier transaction (37 = its RRN, 61 = its batch,
  STAN, date); the earlier one is marked ``adjusted`` and leaves the totals. An offline
  settlement not uploaded yet is simply corrected in place (the host never saw it).
* 34 add tip: amount = original + tip, 48 = tip n12, 37 = RRN of the sale.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from posgate.dialect.fields import Field61, Field63
from posgate.domain.masking import mask_pan
from posgate.domain.response_codes import APPROVED, RESIGN
from posgate.iso8583 import Message
from posgate.terminal.operations import advice
from posgate.terminal.operations.base import (
    Flow,
    Input,
    Result,
    Step,
    TerminalError,
    authenticated,
    check_reply,
    event,
    field60,
    local,
    op,
    reply_details,
)
from posgate.terminal.state import TerminalState, TxnEntry, next_stan

KINDS = {
    "settlement": "offline_settlement",
    "adjust": "settlement_adjust",
    "tip": "tip_adjust",
    "": "offline_settlement",
}


def capture(state: TerminalState, inp: Input, now: datetime) -> tuple[TerminalState, Result]:
    """Record an offline transaction (nothing is sent). Raises TerminalError on bad input."""
    name = KINDS.get(inp.kind)
    if name is None:
        raise TerminalError("offline kind must be settlement, adjust or tip")
    lt = local(state, now)
    orig: TxnEntry | None = None
    if name == "offline_settlement":
        if inp.card is None or not inp.card.pan:
            raise TerminalError("请刷卡 / a card is required")
        if inp.amount <= 0:
            raise TerminalError("请输入金额 / the amount must be above 0.00")
        if not inp.auth_code:
            raise TerminalError("请输入授权码 / the phone authorisation code is required")
    else:
        orig = state.txn(inp.voucher.zfill(6), state.batch) if inp.voucher else None
        if orig is None or orig.status not in ("approved", "offline_pending", "offline_sent"):
            raise TerminalError(
                f"原交易不存在 / no transaction with voucher {inp.voucher or '(none)'} to adjust"
            )
        if name == "tip_adjust" and inp.tip <= 0:
            raise TerminalError("请输入小费金额 / the tip must be above 0.00")
        if name == "settlement_adjust" and inp.amount <= 0:
            raise TerminalError("请输入金额 / the new amount must be above 0.00")
    if orig is not None and name == "settlement_adjust" and orig.status == "offline_pending" and not orig.send_count:
        # Never sent: the host has never seen it, so the stored advice is corrected in place (LY).
        # (Once sent, it may be on the host: its content must not change — R5.)
        entry = replace(orig, amount=inp.amount)
        state = state.with_txn(entry)
        o = op(orig.operation)
        result = Result(name, approved=True, response_code="00", message_zh=f"{o.zh}金额已调整，待上送",
                        message_en=f"{o.en} amount adjusted; it will be uploaded", stan=orig.stan, batch=state.batch,
                        amount=inp.amount, auth_code=orig.auth_code, pan_masked=mask_pan(orig.pan), card_org=orig.card_org)  # fmt: skip
        return state, result
    state, stan = next_stan(state)
    card = inp.card
    entry = TxnEntry(
        stan=stan,
        batch=state.batch,
        operation=name,
        amount=(orig.amount + inp.tip) if (orig and name == "tip_adjust") else inp.amount,
        pan=card.pan if card else (orig.pan if orig else ""),
        expiry=(card.expiry if card else (orig.expiry if orig else "")) or "",
        entry_mode=({"manual": "01", "insert": "05", "tap": "07"}.get(card.entry, "02") + "2")
        if card
        else (orig.entry_mode if orig else "012"),
        card_org=orig.card_org if orig else (card.org if card else "CUP"),
        rrn=orig.rrn if orig else "",
        auth_code=inp.auth_code or (orig.auth_code if orig else ""),
        response_code="",
        date=lt.strftime("%m%d"),
        time=lt.strftime("%H%M%S"),
        at=lt.replace(microsecond=0).isoformat(),
        operator=inp.operator,
        status="offline_pending",
        original_stan=orig.stan if orig else "",
        original_batch=orig.batch if orig else "",
        original_date=orig.date if orig else "",
        tip=inp.tip if name == "tip_adjust" else 0,
        signature="unsigned",
    )
    if orig is not None:
        state = state.with_txn(replace(orig, status="adjusted"))
    state = state.with_txn(entry)
    o = op(name)
    result = Result(
        name,
        approved=True,
        response_code="00",
        message_zh=f"{o.zh}已保存，待上送",
        message_en=f"{o.en} stored; it will be uploaded after the next online transaction",
        stan=stan,
        batch=state.batch,
        amount=entry.amount,
        auth_code=entry.auth_code,
        pan_masked=mask_pan(entry.pan),
        card_org=entry.card_org,
        date=entry.date,
        time=entry.time,
    )
    return state, result


def advice_message(state: TerminalState, t: TxnEntry, mti: str = "0220") -> Message:
    """The advice of an offline transaction (also re-sent in batch upload as 0320, D11)."""
    o = op(t.operation)
    f: dict[int, Any] = {
        2: t.pan,
        3: o.processing_code,
        4: f"{t.amount:012d}",
        11: t.stan,
        22: (t.entry_mode[:2] or "01") + "2",
        25: o.condition_code,
        38: t.auth_code,
        41: state.config.terminal_id,
        42: state.config.merchant_id,
        49: state.config.currency,
        60: field60(o.type_code, t.batch, "000"),
        63: Field63(t.card_org or "CUP").format(),
    }
    if t.expiry:
        f[14] = t.expiry
    if t.original_stan:
        f[61] = Field61(
            t.original_batch or t.batch, t.original_stan, t.original_date or t.date, "00"
        ).format()
    else:
        f[61] = Field61("000000", "000000", t.date, "00").format()
    if t.rrn and t.operation != "offline_settlement":
        f[37] = t.rrn
    if t.tip:
        f[48] = f"{t.tip:012d}"
    return Message(mti, {k: v for k, v in f.items() if v != ""})


def build(state: TerminalState, flow: Flow, step: Step, now: datetime) -> tuple[TerminalState, Flow, Any]:
    t = state.txn(step.ref)
    if t is None or t.status != "offline_pending":
        return state, flow, None
    state = state.with_txn(replace(t, send_count=t.send_count + 1))
    return state, flow, (advice_message(state, t), True, "60")


def on_reply(
    state: TerminalState, flow: Flow, step: Step, reply: Message, now: datetime
) -> tuple[TerminalState, Flow]:
    t = state.txn(step.ref)
    assert t is not None and flow.request is not None
    problem = check_reply(state, flow.request, reply, mac=True)
    code = reply.text(39)
    if problem:
        if problem == "mac":
            state = replace(state, sign_on_owed="reply MAC failure")
        state, flow, _ = advice.unacknowledged(state, flow, t, now, problem)
        return state, flow.note(
            f"离线交易 {t.stan} 上送失败 / offline advice {t.stan} not accepted ({problem})"
        )
    if not authenticated(reply, mac=True):
        # Not the host's authenticated word (R3): a gate refusal or damage; it stays queued.
        if code in RESIGN:
            state = replace(state, sign_on_owed=f"response {code}")
        state, flow, _ = advice.unacknowledged(state, flow, t, now, f"{code} without a MAC")
        return state, flow.note(
            f"离线交易 {t.stan} 未被确认 / offline advice {t.stan} not acknowledged ({code} without a MAC)"
        )
    if code in APPROVED:
        org = reply_details(reply, t.card_org)["card_org"]  # the host's 63.1 when it sent one
        state = state.with_txn(replace(t, status="offline_sent", rrn=reply.text(37).strip() or t.rrn,
                                       response_code=code, card_org=org))  # fmt: skip
        return state, flow
    state = state.with_txn(replace(t, status="offline_declined", response_code=code))
    state = event(state, now, "notice", "offline advice", f"declined {code}", f"STAN {t.stan}")
    return state, flow.note(f"离线交易 {t.stan} 被拒绝 / offline advice {t.stan} declined ({code})")


def on_timeout(
    state: TerminalState, flow: Flow, step: Step, now: datetime, reason: str
) -> tuple[TerminalState, Flow]:
    queue = tuple(s for s in flow.queue if not s.secondary)
    t = state.txn(step.ref)
    if t is not None:
        state, flow, _ = advice.unacknowledged(state, flow, t, now, "no reply")
    return state, replace(flow, queue=queue).note(
        f"离线交易 {step.ref} 上送超时 / offline advice {step.ref}: no reply; will retry later"
    )
