"""Parameter download (参数传递, 0800/0810, 60.3 360) and status upload (状态上送, 0820/0830,
60.3 362), spec 3.12 and D12. Both are done when the host asks in the reply header
(processing requirement 1 and 2, D2) or on request; neither carries a MAC.

The downloaded field 62 is ``tag(2) + fixed-width value`` items (3.12): 12 comm timeout
seconds, 21 auto sign-off after settlement, 22 merchant name (GBK), 23 reversal resend times,
and so on. Values are kept as text (the merchant name decoded from GBK).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from posgate.dialect.fields import (
    PARAMETER_WIDTHS,
    STATUS_PREFIX,
    Field60,
    format_parameters,
    parse_parameters,
)
from posgate.iso8583 import CodecError, Message
from posgate.terminal.operations.base import (
    Flow,
    Step,
    base_fields,
    check_reply,
    code_result,
    error_result,
    event,
)
from posgate.terminal.state import TerminalState, next_stan

NMIC = {"parameter_download": ("0800", "360"), "status_upload": ("0820", "362")}


def status_items(state: TerminalState) -> bytes:
    """Field 62 of the status upload: the fixed prefix then the terminal's current parameters:
    every downloaded one it holds (so the host sees what a download changed), the values in
    force for 12, 21 and 23, and 22 the name it prints on its slips (GBK, as downloaded)."""
    items: dict[str, bytes] = {}
    for tag, value in state.params.items():
        width = PARAMETER_WIDTHS.get(tag)
        if width is None or tag == "22":
            continue
        raw = value.encode("ascii", "replace")
        if len(raw) <= width:
            items[tag] = raw
    items["12"] = str(state.timeout).zfill(2).encode()[:2]
    items["21"] = b"1" if state.auto_sign_off else b"0"
    items["23"] = str(state.reversal_attempts)[:1].encode()
    name = state.merchant_name
    while len(name.encode("gbk", "replace")) > PARAMETER_WIDTHS["22"]:
        name = name[:-1]  # never cut a GBK character in half
    items["22"] = name.encode("gbk", "replace")
    return STATUS_PREFIX + format_parameters(items)


def build(state: TerminalState, flow: Flow, step: Step, now: datetime) -> tuple[TerminalState, Flow, Any]:
    mti, nmic = NMIC[step.kind]
    state, stan = next_stan(state)
    f = base_fields(state, stan)
    f[60] = Field60("00", state.batch, nmic).format()
    if step.kind == "status_upload":
        f[62] = status_items(state)
    return state, flow, (Message(mti, f), False, "60")


def decode_parameters(raw: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for tag, value in parse_parameters(raw).items():
        out[tag] = value.decode("gbk", "replace") if tag == "22" else value.decode("ascii", "replace").strip()
    return out


def on_reply(
    state: TerminalState, flow: Flow, step: Step, reply: Message, now: datetime
) -> tuple[TerminalState, Flow]:
    assert flow.request is not None
    name = step.kind
    problem = check_reply(state, flow.request, reply, mac=False)
    code = reply.text(39)
    if problem:
        result = error_result(name, "mismatch", "应答不符", f"the reply does not match ({problem})")
    else:
        result = code_result(name, code, stan=flow.request.text(11), batch=state.batch)
        if code == "00" and name == "parameter_download":
            try:
                params = decode_parameters(reply.data(62) or b"")
            except CodecError as e:
                result = error_result(name, "mismatch", "参数格式错", f"parameters could not be read: {e}")
            else:
                state = replace(state, params={**state.params, **params})
                state = event(
                    state, now, "parameters", step.cause or "manual", "ok", ", ".join(sorted(params))
                )
                result = replace(
                    result,
                    message_zh="参数下载成功",
                    message_en="Parameters downloaded",
                    extra={"parameters": params},
                )
        elif code == "00":
            state = event(state, now, "status_upload", step.cause or "manual", "ok")
            result = replace(result, message_zh="状态上送成功", message_en="Status uploaded")
    if step.primary:
        return state, replace(flow, result=result)
    return state, flow.note(f"{'参数下载' if name == 'parameter_download' else '状态上送'}: {result.message}")


def on_timeout(
    state: TerminalState, flow: Flow, step: Step, now: datetime, reason: str
) -> tuple[TerminalState, Flow]:
    result = error_result(step.kind, "timeout", "超时", "no reply")
    if step.primary:
        return state, replace(flow, queue=(), result=result)
    return state, flow.note(f"{step.kind}: no reply")
