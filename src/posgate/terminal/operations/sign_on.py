"""Sign-on (签到, 0800/0810, spec 3.4 and 4): fresh working keys, the batch, the clock.

Theory of operation: the request carries 60 = ``00`` + batch + key scheme (001/003/004), the
device serial in 62 (``Sequence No`` + serial, D7) and the operator in 63; no MAC. A reply with
39 = ``00`` carries the working keys in 62, encrypted under the TMK with check values: they are
unwrapped and every check value verified — a mismatch aborts with "下载工作密钥失败 / working-key
check value mismatch", leaves the terminal without keys and owes a make-up sign-on. On success
the batch becomes 60.2, the sign-on date is today (terminal local time) and the offset of the
host clock (12/13) is recorded. Every attempt, with its cause (manual, first transaction of the
day, response A0/99/77/22, host requirement 3, key check failure...), becomes an event for the
journal's sign-on register.

A sign-on that is a step of another operation (make-up) that fails ends that operation.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from posgate.crypto import CheckValueError, CryptoError, unwrap_working_keys
from posgate.dialect.fields import Field60, Field63, terminal_info
from posgate.dialect.operations import SIGN_ON_SCHEMES
from posgate.iso8583 import Message
from posgate.terminal.operations.base import (
    Flow,
    Result,
    Step,
    code_result,
    error_result,
    event,
    local,
)
from posgate.terminal.state import TerminalState, next_stan

KEY_CHECK_ZH = "下载工作密钥失败"
KEY_CHECK_EN = "working-key check value mismatch"


# Why a sign-on came before a transaction (machine.needs_sign_on and sign_on_owed), for the note.
_CAUSES_ZH = {
    "no working keys": "终端尚无工作密钥",
    "first transaction of the day": "当日首笔交易",
    "reply MAC failure": "上笔应答MAC校验失败",
    "signed off": "终端已签退",
    "sign-on failed": "上次签到未成功",
}


def build(state: TerminalState, flow: Flow, step: Step, now: datetime) -> tuple[TerminalState, Flow, Any]:
    scheme = step.data or flow.input.scheme or state.config.sign_on_scheme()
    if scheme not in SIGN_ON_SCHEMES:
        raise ValueError(f"key scheme must be one of {', '.join(SIGN_ON_SCHEMES)}")
    if (scheme == "006") != (state.config.algorithm == "sm4"):
        # The TMK is a key of one cipher: an SM4 TMK cannot unwrap DES keys, nor the reverse.
        raise ValueError(f"key scheme {scheme} does not fit a {state.config.algorithm.upper()} terminal")
    state, stan = next_stan(state)
    fields: dict[int, Any] = {
        11: stan,
        41: state.config.terminal_id,
        42: state.config.merchant_id,
        60: Field60("00", state.batch, scheme).format(),
        62: terminal_info(state.config.serial),
        63: Field63(flow.input.operator or "01").format(),
    }
    flow = flow.with_data(scheme=scheme)
    return state, flow, (Message("0800", fields), False, "60")


def _fail(
    state: TerminalState, flow: Flow, step: Step, result: Result, owed: str
) -> tuple[TerminalState, Flow]:
    state = replace(state, sign_on_owed=owed or state.sign_on_owed or step.cause or "sign-on failed")
    if not step.primary:
        result = replace(
            result, operation=flow.input.operation, notices=("自动签到失败 / automatic sign-on failed",)
        )
    return state, replace(flow, queue=(), result=result)


def clock_offset(state: TerminalState, reply: Message, now: datetime) -> int:
    """Host time (fields 13 MMDD + 12 hhmmss) minus terminal time, in seconds."""
    d, t = reply.text(13), reply.text(12)
    if len(d) != 4 or len(t) != 6:
        return state.clock_offset
    lt = local(state, now)
    try:
        host = lt.replace(
            month=int(d[:2]),
            day=int(d[2:]),
            hour=int(t[:2]),
            minute=int(t[2:4]),
            second=int(t[4:]),
            microsecond=0,
        )
    except ValueError:
        return state.clock_offset
    if host - lt > timedelta(days=180):
        host = host.replace(year=host.year - 1)
    elif lt - host > timedelta(days=180):
        host = host.replace(year=host.year + 1)
    return int((host - lt.replace(microsecond=0)).total_seconds())


def on_reply(
    state: TerminalState, flow: Flow, step: Step, reply: Message, now: datetime
) -> tuple[TerminalState, Flow]:
    request = flow.request
    assert request is not None
    cause = step.cause or "manual"
    scheme = flow.data.get("scheme", state.config.sign_on_scheme())
    if reply.mti != "0810" or reply.text(11) != request.text(11) or reply.text(41) != request.text(41):
        state = event(state, now, "sign_on", cause, "mismatch", f"scheme {scheme}")
        return _fail(
            state,
            flow,
            step,
            error_result("sign_on", "mismatch", "签到应答不符", "the sign-on reply does not match"),
            "",
        )
    code = reply.text(39)
    if code != "00":
        state = event(state, now, "sign_on", cause, f"declined {code}", f"scheme {scheme}")
        return _fail(state, flow, step, code_result("sign_on", code, stan=request.text(11)), "")
    try:
        keys = unwrap_working_keys(state.config.tmk, scheme, reply.data(62) or b"")
    except (CheckValueError, CryptoError) as e:
        which = getattr(e, "key_name", "")
        state = replace(state, keys=None, key_scheme="")
        state = event(
            state, now, "sign_on", cause, "key_check_failed", f"scheme {scheme}; {which} {e}".strip()
        )
        result = error_result("sign_on", "key_check", KEY_CHECK_ZH, KEY_CHECK_EN, stan=request.text(11))
        return _fail(state, flow, step, result, "key check failure")
    batch = state.batch
    try:
        b = Field60.parse(reply.text(60)).batch_no
        if b.isdigit() and 1 <= int(b) <= 999_999:
            batch = b
    except ValueError:
        pass
    offset = clock_offset(state, reply, now)
    state = replace(
        state,
        keys=keys,
        key_scheme=scheme,
        batch=batch,
        signed_on_date=local(state, now).date().isoformat(),
        sign_on_owed="",
        clock_offset=offset,
    )
    state = event(
        state, now, "sign_on", cause, "ok", f"scheme {scheme}; batch {batch}; clock offset {offset}s"
    )
    if step.primary:
        result = code_result(
            "sign_on",
            "00",
            stan=request.text(11),
            batch=batch,
            date=reply.text(13),
            time=reply.text(12),
            extra={"scheme": scheme, "clock_offset": offset, "cause": cause},
        )
        result = replace(result, message_zh="签到成功", message_en="Signed on")
        return state, replace(flow, result=result)
    # Said as what happened, not as a state: "signed on (no working keys)" read as a sign-on
    # that left the terminal without keys.
    return state, flow.note(f"交易前已自动签到 / signed on first: {_CAUSES_ZH.get(cause, cause)} / {cause}")


def on_timeout(
    state: TerminalState, flow: Flow, step: Step, now: datetime, reason: str
) -> tuple[TerminalState, Flow]:
    state = event(
        state,
        now,
        "sign_on",
        step.cause or "manual",
        "no reply",
        "timeout" if reason == "98" else "connection lost",
    )
    stan = flow.request.text(11) if flow.request is not None else ""
    result = error_result(
        "sign_on",
        "timeout",
        "签到超时，请检查网络",
        "no reply to the sign-on; check the connection",
        stan=stan,
    )
    return _fail(state, flow, step, result, "")
