"""IC script result advice (脚本处理结果通知, 0620/0630, 60.3 951; spec 3.1). MAC'd, not
reversible, trickled like an offline advice.

When an IC reply carries issuer scripts (tag 71/72 in field 55), the card would execute them
after the transaction; the terminal then tells the host the outcome in DF31 (script result:
``20`` = processed + the script identifier 9F18). This terminal has no real card, so the
result it reports is "processed". 3 = original, 61 = original batch + STAN + date, a new STAN.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from posgate.dialect.fields import Field60, Field61
from posgate.iso8583 import TLV, Message
from posgate.terminal.operations.base import Flow, Step, check_reply, op
from posgate.terminal.state import TerminalState, next_stan


def build(state: TerminalState, flow: Flow, step: Step, now: datetime) -> tuple[TerminalState, Flow, Any]:
    t = state.txn(step.ref)
    if t is None or not t.script.startswith("pending"):
        return state, flow, None
    sid = t.script.partition(":")[2] or "00000000"
    items: list[tuple[str, bytes]] = [("DF31", bytes.fromhex("20" + sid))]
    icc = TLV.decode(t.icc) if t.icc else TLV()
    for tag in ("9F33", "95", "9F37", "9F1E", "9F10", "9F26", "9F36", "82", "9A"):
        v = icc.get(tag)
        if isinstance(v, bytes):
            items.append((tag, v))
    state, stan = next_stan(state)
    f: dict[int, Any] = {
        2: t.pan,
        3: op(t.operation).processing_code,
        4: f"{t.amount:012d}",
        11: stan,
        22: t.entry_mode,
        41: state.config.terminal_id,
        42: state.config.merchant_id,
        49: state.config.currency,
        55: TLV(items),
        60: Field60("00", t.batch, "951").format(),
        61: Field61(t.batch, t.stan, t.date).format(),
    }
    if t.card_seq:
        f[23] = t.card_seq
    if t.rrn:
        f[37] = t.rrn
    if t.auth_code:
        f[38] = t.auth_code
    return state, flow, (Message("0620", f), True, "61")


def on_reply(
    state: TerminalState, flow: Flow, step: Step, reply: Message, now: datetime
) -> tuple[TerminalState, Flow]:
    t = state.txn(step.ref)
    assert t is not None and flow.request is not None
    if check_reply(state, flow.request, reply, mac=True) or reply.text(39) != "00":
        return state, flow.note(f"脚本通知 {t.stan} 未被接受 / script advice {t.stan} not accepted")
    return state.with_txn(replace(t, script="sent")), flow


def on_timeout(
    state: TerminalState, flow: Flow, step: Step, now: datetime, reason: str
) -> tuple[TerminalState, Flow]:
    queue = tuple(s for s in flow.queue if not s.secondary)
    return state, replace(flow, queue=queue).note(
        f"脚本通知 {step.ref} 超时 / script advice {step.ref}: no reply"
    )
