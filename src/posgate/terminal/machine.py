"""The terminal's sans-IO core: a CUP POS terminal as pure functions over immutable state.

Theory of operation
-------------------
A cashier's request (:class:`Input`: a sale, a void, a settlement...) becomes a :class:`Flow`:
an ordered queue of :class:`Step` s, each one message exchange handled by a module of
:mod:`posgate.terminal.operations`. The flow is planned by :func:`start`::

    [make-up sign-on, if owed]  [pending reversal, if any]  [advices sent and not yet
    acknowledged: refunds, offline advices — same STAN and content]  [the operation]  → then,
    added on the way: [sign-on + retry once on 39 ∈ A0/99/77/22]  [header requirement 3/1/2]
    [trickle: offline advices, script advices, e-signatures]  (settlement: batch upload…)

and driven by the shell, one message at a time::

    state, out = start(state, Input("sale", amount=1234, card=card), now)
    while isinstance(out, Send):
        # frame out.body with TPDU + header (category out.category), send it, wait out.timeout s
        state, out = on_reply(state, reply_body, now, requirement=header_digit_6)
        #   or:  state, out = on_timeout(state, now)
        #   or:  state, out = on_comm_error(state, now, sent=True|False)
    result = out.result          # a Done: what the cashier sees

Every function returns a *new* state; the shell must hand it to the journal **before** it
sends ``out.body``: that is how the reversal record is on disk before the request leaves
(section 8). Nothing here opens a socket, reads the clock or draws a random number: ``now``
(an aware datetime) is an argument, and everything random (field 55's unpredictable number)
comes from the shell with the card.

Invariants: STAN 000001–999999 wrapping, incremented for every new online message (a
reversal reuses the original STAN; an e-signature upload and an offline advice carry the STAN
of their transaction); at most one pending reversal, sent before any other online message;
declines are results, never exceptions. :class:`TerminalError` is raised only by :func:`start`
for a request that cannot begin (nothing to void, amount missing...), and then nothing changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from types import ModuleType

from posgate.crypto import CryptoError
from posgate.framing import Frame
from posgate.iso8583 import CodecError, Message
from posgate.terminal.operations import (
    advice,
    balance,
    batch_upload,
    echo,
    ic_params,
    offline,
    parameters,
    preauth,
    qr_query,
    refund,
    reversal,
    sale,
    script_advice,
    settlement,
    sign_off,
    sign_on,
    signature,
    void,
)
from posgate.terminal.operations.base import (
    Card,
    Flow,
    Input,
    Result,
    Step,
    TerminalError,
    decode_reply,
    dialect_of,
    error_result,
    local,
    mac_of,
)
from posgate.terminal.state import TerminalConfig, TerminalState

__all__ = [
    "Card",
    "Done",
    "Flow",
    "Input",
    "Result",
    "Send",
    "Step",
    "TerminalConfig",
    "TerminalError",
    "TerminalState",
    "needs_sign_on",
    "new_state",
    "on_comm_error",
    "on_reply",
    "on_timeout",
    "start",
]


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``body`` (MTI..64, MAC'd when needed) framed with the TPDU and a header whose
    application category is ``category``; wait at most ``timeout`` seconds for the reply."""

    body: bytes
    message: Message  # the request without its MAC (holds card data: never log it)
    category: str
    purpose: str  # the step kind (sale, reversal, sign_on, offline, ...)
    timeout: int


@dataclass(frozen=True, slots=True)
class Done:
    result: Result


Outcome = Send | Done

# Step kind → the module that builds and answers it.
HANDLERS: dict[str, ModuleType] = {
    "sign_on": sign_on,
    "sign_off": sign_off,
    "echo": echo,
    "parameter_download": parameters,
    "status_upload": parameters,
    "balance": balance,
    "sale": sale,
    "qr_query": qr_query,
    "void": void,
    "refund": refund,
    "preauth": preauth,
    "preauth_void": preauth,
    "completion": preauth,
    "completion_void": preauth,
    "offline": offline,
    "script_advice": script_advice,
    "reversal": reversal,
    "settlement": settlement,
    "batch_upload": batch_upload,
    "batch_end": batch_upload,
    "settlement_close": settlement,
    "signature": signature,
    **{f"{kind}_{part}": ic_params for kind in ic_params.KINDS for part in ("query", "download", "end")},
}

FINANCIAL = ("balance", "sale", "void", "refund", "preauth", "preauth_void", "completion", "completion_void",
             "qr_query")
# Operations that need a sign-on today first (D5); sign-on, sign-off and echo do not.
NEED_SIGN_ON = (*FINANCIAL, "settlement", "signature", "parameter_download", "status_upload", "ic_download")


def new_state(config: TerminalConfig | None = None) -> TerminalState:
    """A factory-fresh terminal: no keys, batch 000001, next STAN 000001."""
    return TerminalState(config=config or TerminalConfig())


def needs_sign_on(state: TerminalState, now: datetime) -> str:
    """Why a (make-up) sign-on must come before the next transaction, or "" if none is due."""
    if state.sign_on_owed:
        return state.sign_on_owed
    if state.keys is None:
        return "no working keys"
    if state.signed_on_date != local(state, now).date().isoformat():
        return "first transaction of the day"
    return ""


def trickle_steps(state: TerminalState) -> tuple[Step, ...]:
    """Offline advices never sent yet, script advices and e-signatures waiting to go up
    (section 10). Advices already sent and not acknowledged go *before* the next online
    message instead (:func:`advice.resend_steps`)."""
    steps: list[Step] = []
    for t in state.txns:
        if t.status == "offline_pending" and t.send_count == 0:
            steps.append(Step("offline", ref=t.stan, secondary=True))
    for t in state.txns:
        if t.script.startswith("pending"):
            steps.append(Step("script_advice", ref=t.stan, secondary=True))
    for stan in state.signatures:
        steps.append(Step("signature", ref=stan, secondary=True))
    return tuple(steps)


def _plan(state: TerminalState, inp: Input, now: datetime) -> tuple[TerminalState, Flow]:
    name = inp.operation
    if name == "sign_on":
        return state, Flow(
            inp, (Step("sign_on", cause=inp.cause or "manual", data=inp.scheme, primary=True),)
        )
    if name == "echo":
        return state, Flow(inp, (Step("echo", primary=True),))
    steps: list[Step] = []
    if name in NEED_SIGN_ON:
        cause = needs_sign_on(state, now)
        if cause:
            steps.append(Step("sign_on", cause=cause))
    if state.reversal is not None:
        steps.append(Step("reversal"))
    steps.extend(advice.resend_steps(state))  # advices in doubt: same STAN and content (R5)
    if name in FINANCIAL:
        HANDLERS[name].validate(state, inp)
        steps.append(Step(name, primary=True))
    elif name == "settlement":
        settlement.validate(state, inp)
        steps.extend(replace(s, secondary=True) for s in trickle_steps(state))
        steps.append(Step("settlement", primary=True))
    elif name == "signature":
        signature.validate(state, inp)
        steps.append(Step("signature", ref=inp.voucher, primary=True))
    elif name in ("sign_off", "parameter_download", "status_upload"):
        steps.append(Step(name, primary=True))
    elif name == "ic_download":  # both lists: CA public keys, then IC parameters (3.12)
        steps.extend((*ic_params.steps("capk", "manual"), *ic_params.steps("aid", "manual", primary=True)))
    else:
        raise TerminalError(f"unknown operation {name!r}")
    return state, Flow(inp, tuple(steps))


def start(state: TerminalState, inp: Input, now: datetime) -> tuple[TerminalState, Outcome]:
    """Begin an operation. Returns the first request to send (or ``Done`` for an operation
    that sends nothing, such as capturing an offline sale). Raises :class:`TerminalError`
    when it cannot begin; the state is then unchanged."""
    if state.flow is not None:
        raise TerminalError("交易进行中 / another operation is in progress")
    if inp.operation == "offline":
        state, result = offline.capture(state, inp, now)
        return state, Done(result)
    if inp.operation == "signature" and inp.signature:
        state = signature.attach(state, inp)
    state, flow = _plan(state, inp, now)
    return _advance(state, flow, now, first=True)


def _advance(
    state: TerminalState, flow: Flow, now: datetime, *, first: bool = False
) -> tuple[TerminalState, Outcome]:
    while flow.queue:
        step, rest = flow.queue[0], flow.queue[1:]
        flow = replace(flow, queue=rest, current=step, request=None)
        handler = HANDLERS[step.kind]
        before, txns_before = state.reversal, state.txns
        try:
            state, flow, built = handler.build(state, flow, step, now)
            if built is None:
                continue
            message, mac, cat = built
            profile = dialect_of(state)
            message = profile.outbound(message)
            body = profile.codec.encode(message, mac=_mac_function(state) if mac else None)
        except (TerminalError, CodecError, CryptoError) as e:
            if first:
                raise TerminalError(str(e)) from None
            flow = replace(
                flow,
                queue=(),
                result=flow.result or error_result(flow.input.operation, "refused", str(e), ""),
            )
            break
        flow = replace(flow, request=message, data={**flow.data, "reversal_before": before, "txns_before": txns_before})
        state = replace(state, flow=flow)
        return state, Send(body, message, cat, step.kind, state.timeout)
    return _finish(state, flow)


def _mac_function(state: TerminalState) -> Callable[[bytes], bytes]:
    return lambda mab: mac_of(state, mab)


def _finish(state: TerminalState, flow: Flow) -> tuple[TerminalState, Done]:
    result = flow.result or error_result(
        flow.input.operation, "refused", "交易未完成", "operation not completed"
    )
    if flow.notices:
        result = replace(result, notices=(*flow.notices, *result.notices))
    return replace(state, flow=None), Done(result)


def _current(state: TerminalState) -> tuple[Flow, Step]:
    flow = state.flow
    if flow is None or flow.current is None or flow.request is None:
        raise TerminalError("no request in flight")
    return flow, flow.current


def on_reply(
    state: TerminalState, reply: bytes | Message | Frame, now: datetime, requirement: str = "0"
) -> tuple[TerminalState, Outcome]:
    """A reply arrived for the request in flight. ``requirement`` is the 6th digit of the
    reply's header (1.3, D2); a :class:`~posgate.framing.Frame` carries its own."""
    flow, step = _current(state)
    if isinstance(reply, Frame):
        requirement = reply.requirement
        reply = reply.body
    handler = HANDLERS[step.kind]
    msg = decode_reply(reply, dialect_of(state).codec)
    if msg is None:
        # Not a message at all: like a reply that does not match (section 10: keep the reversal).
        state, flow = handler.on_timeout(state, flow, step, now, "06")
        flow = flow.note("应答报文无法解析 / the reply could not be decoded")
        return _advance(replace(state, flow=flow), flow, now)
    state, flow = handler.on_reply(state, flow, step, msg, now)
    answered = flow.result is None or flow.result.error not in ("mismatch", "mac")
    if answered and (step.kind != "sign_on" or requirement in ("1", "2", "4", "5")):
        # The host's processing requirement, declines included (D2); not from a reply that
        # does not answer our request, and a sign-on's own "3" would only loop.
        flow = _obey(flow, requirement)
    if step.kind == "sign_on" and state.keys is not None and state.config.ic_params and not state.ic_loaded:
        # The first sign-on of a terminal with no IC public keys or parameters: fetch them.
        for kind, at in (("capk", "capks_at"), ("aid", "aids_at")):
            if not state.ic.get(at) and not _ic_queued(flow, kind):
                flow = flow.push_back(*ic_params.steps(kind, "first sign-on", secondary=True))
    return _advance(replace(state, flow=flow), flow, now)


def _ic_queued(flow: Flow, kind: str) -> bool:
    prefix = kind + "_"
    current = flow.current is not None and flow.current.kind.startswith(prefix)
    return current or any(s.kind.startswith(prefix) for s in flow.queue)


def _obey(flow: Flow, requirement: str) -> Flow:
    """Queue what the host asked for in the header's processing requirement (1.3, D2)."""
    if requirement not in ("1", "2", "3", "4", "5") or requirement in flow.obeyed:
        return flow
    if requirement in ("4", "5"):  # IC public keys / IC parameters (3.12), unless under way
        kind = "capk" if requirement == "4" else "aid"
        flow = replace(flow, obeyed=flow.obeyed | {requirement})
        if _ic_queued(flow, kind):
            return flow
        return flow.push_back(*ic_params.steps(kind, f"host requirement {requirement}", secondary=True))
    kinds = {"3": "sign_on", "1": "parameter_download", "2": "status_upload"}
    kind = kinds[requirement]
    if any(s.kind == kind for s in flow.queue):
        return replace(flow, obeyed=flow.obeyed | {requirement})
    flow = replace(flow, obeyed=flow.obeyed | {requirement})
    return flow.push_back(Step(kind, cause=f"host requirement {requirement}"))


def on_timeout(state: TerminalState, now: datetime) -> tuple[TerminalState, Outcome]:
    """No reply within the timeout (reversal reason 98)."""
    flow, step = _current(state)
    state, flow = HANDLERS[step.kind].on_timeout(state, flow, step, now, "98")
    return _advance(replace(state, flow=flow), flow, now)


def on_comm_error(state: TerminalState, now: datetime, *, sent: bool) -> tuple[TerminalState, Outcome]:
    """The connection failed. ``sent=False``: the request never left (connect refused), so no
    reversal is needed and the flow ends; ``sent=True``: lost after sending (reason 06)."""
    flow, step = _current(state)
    if sent:
        state, flow = HANDLERS[step.kind].on_timeout(state, flow, step, now, "06")
        return _advance(replace(state, flow=flow), flow, now)
    before = flow.data.get("reversal_before")
    if step.kind == "reversal" and state.reversal is not None and before is not None:
        state = replace(state, reversal=before)
    elif step.kind != "reversal":
        state = replace(state, reversal=before)
    # What building the request did to the log (a refund queued, a send counted) is undone too.
    state = replace(state, txns=flow.data.get("txns_before", state.txns))
    result = flow.result
    if result is None or step.primary:
        result = error_result(
            flow.input.operation,
            "comm",
            "通讯失败，请检查网络",
            "cannot reach the host; check the connection",
        )
    flow = replace(flow, queue=(), result=result)
    return _finish(state, flow)
