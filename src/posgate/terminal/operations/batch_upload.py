"""Batch upload (批上送, 0320/0330; spec 9.3, D11). No MAC (5.3), except that an offline
advice re-sent here keeps the MAC it carries as an advice.

* ``batch_upload`` with a tuple of STANs: one 0320, 60 = ``00`` + batch + ``201``, 48 = count
  n2 + per transaction card-org flag n2 (00 CUP / 01 foreign), STAN n6, PAN n20, amount n12
  (≤ 8 per message), a new STAN in 11.
* ``batch_upload`` with ``data="offline"``: the offline advice of ``ref`` re-sent as a 0320
  with its own 60.1 and 60.3 ``000`` and its own STAN (D11); acknowledged only by a reply
  with a verified MAC (docs/decisions.md R3), which also settles the advice's status.
* ``batch_upload`` with ``data="203"``/``"205"`` (issue 14): a chip transaction's TC — 2, 4,
  22, 23, 55 as kept after the card's second GENERATE AC (9F26 = TC, 9F27 = 40), 60.3 203 when
  its side balanced, 205 when not, 62 = ``61`` + card type (00 CUP / 01 foreign) + ``00`` +
  amount n12 + ``156``; a new STAN in 11.
* ``batch_end``: 0320, 60.3 ``207`` (both sides balanced) or ``202``, 48 = number of
  transactions uploaded, n4.

A failed or unanswered upload is noted on the slip; the settlement itself already happened
on the host (its 0510), so the batch still closes.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from posgate.dialect.fields import BatchUploadEntries, BatchUploadEntry, Field60
from posgate.domain.response_codes import APPROVED
from posgate.iso8583 import TLV, Message
from posgate.terminal.operations.base import (
    Flow,
    Step,
    authenticated,
    base_fields,
    check_reply,
    reply_details,
)
from posgate.terminal.operations.offline import advice_message
from posgate.terminal.state import TerminalState, next_stan


def build(state: TerminalState, flow: Flow, step: Step, now: datetime) -> tuple[TerminalState, Flow, Any]:
    batch = flow.data.get("settle_batch", state.batch)
    if step.kind == "batch_end":
        state, stan = next_stan(state)
        f = base_fields(state, stan)
        f[48] = f"{int(flow.data.get('uploaded', 0)):04d}"
        f[60] = Field60("00", batch, step.data).format()
        return state, flow.with_data(upload_end=step.data), (Message("0320", f), False, "60")
    if step.data == "offline":
        t = state.txn(step.ref, batch)
        if t is None:
            return state, flow, None
        return state, flow, (advice_message(state, t, mti="0320"), True, "60")
    if step.data in ("203", "205"):
        t = state.txn(step.ref, batch)
        if t is None or not t.icc:
            return state, flow, None
        state, stan = next_stan(state)
        f = base_fields(state, stan)
        f.update({2: t.pan, 4: f"{t.amount:012d}", 55: TLV.decode(t.icc)})
        if t.entry_mode:
            f[22] = t.entry_mode
        if t.card_seq:
            f[23] = t.card_seq
        f[60] = Field60("00", batch, step.data).format()
        f[62] = f"61{'00' if t.domestic else '01'}00{t.amount:012d}156".encode("ascii")
        return state, flow.with_data(pending_count=1), (Message("0320", f), False, "61")
    entries = []
    for stan in step.data:
        t = state.txn(stan, batch)
        if t is not None:
            entries.append(BatchUploadEntry(not t.domestic, t.stan, t.pan, t.amount))
    if not entries:
        return state, flow, None
    state, stan = next_stan(state)
    f = base_fields(state, stan)
    f[48] = BatchUploadEntries(tuple(entries)).format()
    f[60] = Field60("00", batch, "201").format()
    return state, flow.with_data(pending_count=len(entries)), (Message("0320", f), False, "60")


def on_reply(
    state: TerminalState, flow: Flow, step: Step, reply: Message, now: datetime
) -> tuple[TerminalState, Flow]:
    request = flow.request
    assert request is not None
    ok = (
        reply.mti == "0330"
        and reply.text(11) == request.text(11)
        and reply.text(41) == request.text(41)
        and reply.text(39) in ("00", "")
    )
    if step.kind == "batch_end":
        if not ok:
            return state, flow.with_data(upload_ok=False).note(
                "批上送结束未被接受 / batch-upload end not accepted"
            )
        return state, flow
    n = 1 if step.data == "offline" else int(flow.data.get("pending_count", 0))
    if step.data == "offline":
        # The advice re-sent as a 0320 is acknowledged by the same MAC rule as its 0220 (R3).
        problem = check_reply(state, request, reply, mac=True)
        ok = not problem and authenticated(reply, mac=True)
        t = state.txn(step.ref, flow.data.get("settle_batch", state.batch))
        if ok and t is not None and t.status == "offline_pending":
            code = reply.text(39)
            status = "offline_sent" if code in APPROVED else "offline_declined"
            org = reply_details(reply, t.card_org)["card_org"] if code in APPROVED else t.card_org
            state = state.with_txn(replace(t, status=status, response_code=code, card_org=org))
    if not ok:
        return state, flow.with_data(upload_ok=False).note(
            f"批上送失败 / a batch-upload message was not accepted ({reply.text(39) or 'mismatch'})"
        )
    return state, flow.with_data(uploaded=int(flow.data.get("uploaded", 0)) + n)


def on_timeout(
    state: TerminalState, flow: Flow, step: Step, now: datetime, reason: str
) -> tuple[TerminalState, Flow]:
    queue = tuple(s for s in flow.queue if s.kind not in ("batch_upload", "batch_end"))
    flow = replace(flow, queue=queue).with_data(upload_ok=False)
    return state, flow.note(
        "批上送超时 / batch upload: no reply; the batch is closed, the host keeps the difference"
    )
