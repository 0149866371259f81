"""E-signature upload (电子签名上送, 0820/0830, 60 = 07 + batch + 800; spec 3.13, D13). MAC'd.

Theory of operation: the cardholder's signature, already a JBIG1 image of at most 999 bytes
(``posgate.signature.encode_for_field62`` does the scaling), is kept in ``state.signatures``
under the transaction's STAN and the transaction is marked ``pending``. It goes up in field 62
with the transaction's own STAN (11), PAN (2), amount (4), RRN (37) and the receipt elements
as TLV in 55 (FF00 merchant name GBK, FF01 transaction-type name GBK, FF02 operator BCD, FF06
YYYYMMDDhhmmss BCD, FF0A ``156`` ASCII, FF70 ``02``). It is trickled after the transaction
itself, again after the next online transaction, and before settlement; once the host answers
``00`` it is ``uploaded`` and dropped from the state. One that never goes up stays
``unsigned`` in the batch log (a make-up signature is needed).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from posgate.dialect.fields import Field60
from posgate.iso8583 import TLV, Message
from posgate.terminal.operations.base import (
    Flow,
    Input,
    Step,
    TerminalError,
    check_reply,
    code_result,
    error_result,
    local,
    op,
)
from posgate.terminal.state import TerminalState, TxnEntry

MAX_JBIG = 999


def receipt_tlv(
    merchant_name: str, txn_type_name: str, operator: str, when: str, currency: str = "156"
) -> bytes:
    """Field 55 of the upload; ``when`` is YYYYMMDDhhmmss (same bytes as posgate.signature.receipt_tlv)."""
    op_digits = operator if len(operator) % 2 == 0 else "0" + operator
    return TLV(
        [
            ("FF00", merchant_name.encode("gbk", errors="replace")),
            ("FF01", txn_type_name.encode("gbk", errors="replace")),
            ("FF02", bytes.fromhex(op_digits if op_digits.isdigit() else "01")),
            ("FF06", bytes.fromhex(when)),
            ("FF0A", currency.encode("ascii")),
            ("FF70", bytes.fromhex("02")),
        ]
    ).raw


def _target(state: TerminalState, stan: str) -> TxnEntry:
    t = state.txn(stan.zfill(6), state.batch) if stan else None
    if t is None:
        raise TerminalError(
            f"原交易不存在 / no transaction with voucher {stan or '(none)'} in the current batch"
        )
    return t


def validate(state: TerminalState, inp: Input) -> None:
    t = _target(state, inp.voucher)
    if t.stan not in state.signatures:
        raise TerminalError("没有待上送的签名 / no signature captured for this transaction")


def attach(state: TerminalState, inp: Input, stan: str | None = None) -> TerminalState:
    """Keep a captured signature (JBIG) for the transaction ``stan`` and mark it ``pending``."""
    t = _target(state, stan or inp.voucher)
    if len(inp.signature) > MAX_JBIG:
        raise TerminalError(
            f"签名图像过大 / the signature image is {len(inp.signature)} bytes; at most {MAX_JBIG}"
        )
    state = replace(state, signatures={**state.signatures, t.stan: inp.signature})
    return state.with_txn(replace(t, signature="pending"))


def build(state: TerminalState, flow: Flow, step: Step, now: datetime) -> tuple[TerminalState, Flow, Any]:
    jbig = state.signatures.get(step.ref)
    t = state.txn(step.ref)
    if jbig is None or t is None:
        return state, flow, None
    when = (
        (t.at[:19].replace("-", "").replace("T", "").replace(":", ""))
        if t.at
        else local(state, now).strftime("%Y%m%d%H%M%S")
    )
    f: dict[int, Any] = {
        2: t.pan,
        4: f"{t.amount:012d}",
        11: t.stan,
        41: state.config.terminal_id,
        42: state.config.merchant_id,
        55: receipt_tlv(state.merchant_name, op(t.operation).zh, t.operator, when, state.config.currency),
        60: Field60("07", t.batch, "800").format(),
        62: jbig,
    }
    if t.rrn:
        f[37] = t.rrn
    if t.settlement_date:
        f[15] = t.settlement_date
    return state, flow, (Message("0820", f), True, "60")


def on_reply(
    state: TerminalState, flow: Flow, step: Step, reply: Message, now: datetime
) -> tuple[TerminalState, Flow]:
    t = state.txn(step.ref)
    assert t is not None and flow.request is not None
    problem = check_reply(state, flow.request, reply, mac=True)
    code = reply.text(39)
    if not problem and code == "00":
        sigs = {k: v for k, v in state.signatures.items() if k != t.stan}
        state = replace(state, signatures=sigs).with_txn(replace(t, signature="uploaded"))
        if step.primary:
            result = replace(code_result("signature", "00", stan=t.stan, batch=t.batch, amount=t.amount, rrn=t.rrn),
                             message_zh="电子签名已上送", message_en="e-signature uploaded")  # fmt: skip
            return state, replace(flow, result=result)
        return state, flow
    why = problem or f"answered {code}"
    if step.primary:
        return state, replace(
            flow,
            result=error_result(
                "signature",
                "mismatch" if problem else "",
                "签名上送失败",
                f"e-signature not accepted ({why})",
                stan=t.stan,
            ),
        )
    return state, flow.note(
        f"签名上送失败 / e-signature of voucher {t.stan} not accepted ({why}); will retry"
    )


def on_timeout(
    state: TerminalState, flow: Flow, step: Step, now: datetime, reason: str
) -> tuple[TerminalState, Flow]:
    if step.primary:
        return state, replace(
            flow,
            queue=(),
            result=error_result(
                "signature", "timeout", "签名上送超时", "no reply to the e-signature upload", stan=step.ref
            ),
        )
    queue = tuple(s for s in flow.queue if not s.secondary)
    return state, replace(flow, queue=queue).note(
        f"签名上送超时 / e-signature of voucher {step.ref}: no reply; will retry"
    )
