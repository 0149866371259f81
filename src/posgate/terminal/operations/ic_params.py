"""IC public keys (CAPK, 60.3 372/370/371) and IC parameters (AID, 382/380/381) download
(docs/dialect.md 3.12). No MAC, like every network-management message.

One list is fetched in three kinds of steps: the query (0820, 62 = ``1`` + start index; again
from the next index while the host answers ``2``, more follow), one download per item (0800,
62 = its key) and the end (0800). The items come back in the flow's data; the end step writes
the whole list into ``state.ic`` (it replaces the old list: an item the host removed is gone)
before its message leaves, so a lost end reply loses nothing: the host keeps asking (header
requirement 4 / 5) until an end reaches it.

Started by the cashier (``Input("ic_download")``: both lists), by the host's header
requirement 4 (CAPK) or 5 (AID), or at the first sign-on while nothing is loaded (when the
terminal's ``config.ic_params`` is on). The contactless no-CVM limit (DF21) of the loaded AIDs
is what :func:`no_cvm_limit` reads for a tap.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from posgate.dialect import ic_params as icp
from posgate.dialect.fields import Field60
from posgate.iso8583 import CodecError, Message
from posgate.terminal.operations.base import (
    Card,
    Flow,
    Step,
    base_fields,
    check_reply,
    code_result,
    error_result,
    event,
    iso,
)
from posgate.terminal.state import TerminalState, next_stan

KINDS = ("capk", "aid")
NMIC = {**icp.CAPK_CODES, **icp.AID_CODES}
MTI = {"query": "0820", "download": "0800", "end": "0800"}
ZH = {"capk": "IC卡公钥下载", "aid": "IC卡参数下载"}
EN = {"capk": "IC public key download", "aid": "IC parameter download"}


def steps(kind: str, cause: str, *, primary: bool = False, secondary: bool = False) -> tuple[Step, ...]:
    """The first step of one list's download (the rest is queued as the replies come)."""
    return (Step(f"{kind}_query", cause=cause, data=0, primary=primary, secondary=secondary),)


def loaded_aids(state: TerminalState) -> list[icp.AidParams]:
    return [icp.AidParams(**d) for d in state.ic.get("aids", ())]


def loaded_capks(state: TerminalState) -> list[icp.Capk]:
    return [icp.Capk(**d) for d in state.ic.get("capks", ())]


def no_cvm_limit(state: TerminalState, aid: str) -> int | None:
    """The contactless CVM limit (DF21, fen) of ``aid`` as downloaded; with no such AID, that of
    the UnionPay debit AID if loaded; None when the terminal has no IC parameters."""
    aids = {a.aid: a for a in loaded_aids(state)}
    found = aids.get(aid.upper()) or aids.get(icp.UNIONPAY_AIDS[0])
    return None if found is None else found.cvm_limit


def card_aid(card: Card) -> str:
    """The AID the card was read with (field 55 tag 84), or ""."""
    v = card.icc.get("84") if card.icc is not None else None
    return v.hex().upper() if isinstance(v, bytes) else ""


def contactless_cvm(state: TerminalState, card: Card | None, amount: int) -> str:
    """The cardholder verification a contactless (qPBOC) sale needs (docs/decisions.md C2):
    ``"none"`` at or under the no-CVM limit of the card's AID as downloaded (免密免签: no PIN, no
    signature); ``"pin"`` above it; ``""`` when it is no tap or no IC parameters are loaded (the
    host, which has the limits, decides: ``55`` for a tap without PIN above its limit)."""
    if card is None or card.entry != "tap":
        return ""
    limit = no_cvm_limit(state, card_aid(card))
    if limit is None:
        return ""
    return "none" if amount <= limit else "pin"


def _split(step: Step) -> tuple[str, str]:
    kind, _, part = step.kind.partition("_")
    return kind, part


def build(state: TerminalState, flow: Flow, step: Step, now: datetime) -> tuple[TerminalState, Flow, Any]:
    kind, part = _split(step)
    state, stan = next_stan(state)
    f = base_fields(state, stan)
    f[60] = Field60("00", state.batch, NMIC[step.kind]).format()
    if part == "query":
        f[62] = icp.query_request(int(step.data or 0))
    elif part == "download":
        f[62] = icp.capk_key_tlv(*step.data) if kind == "capk" else icp.aid_key_tlv(step.data)
    else:  # end: what was downloaded becomes the terminal's list before the end message leaves
        got = list(flow.data.get(f"{kind}_got", ()))
        state = replace(state, ic={**state.ic, f"{kind}s": got, f"{kind}s_at": iso(state, now)})
        state = event(state, now, "parameters", step.cause or "manual", "ok", f"{kind}: {len(got)}")
    return state, flow, (Message(MTI[part], f), False, "60")


def _fail(flow: Flow, step: Step, kind: str, result_code: str, zh: str, en: str) -> Flow:
    """Stop this list's download: its remaining steps leave the queue."""
    queue = tuple(s for s in flow.queue if not s.kind.startswith(kind + "_"))
    flow = replace(flow, queue=queue)
    if step.primary or flow.input.operation == "ic_download":
        return replace(flow, queue=(), result=error_result("ic_download", result_code, zh, en))
    return flow.note(f"{ZH[kind]}: {zh} / {EN[kind]}: {en}")


def on_reply(
    state: TerminalState, flow: Flow, step: Step, reply: Message, now: datetime
) -> tuple[TerminalState, Flow]:
    assert flow.request is not None
    kind, part = _split(step)
    problem = check_reply(state, flow.request, reply, mac=False)
    if problem:
        return state, _fail(flow, step, kind, "mismatch", "应答不符", f"the reply does not match ({problem})")
    code = reply.text(39)
    if part == "download" and code == "25":
        # The host no longer has it (removed since the query): skipped, the rest goes on.
        return state, flow.note(f"{ZH[kind]}: {step.data} 已不存在 / no longer on the host")
    if code != "00":
        r = code_result("ic_download", code)
        return state, _fail(flow, step, kind, "refused", r.message_zh, r.message_en)
    try:
        if part == "query":
            return state, _on_query(flow, step, kind, reply)
        if part == "download":
            raw = icp.parse_download_reply(reply.data(62))
            item = icp.Capk.from_tlv(raw) if kind == "capk" else icp.AidParams.from_tlv(raw)
            return state, flow.with_data(**{f"{kind}_got": (*flow.data.get(f"{kind}_got", ()), item.as_dict())})
    except CodecError as e:
        return state, _fail(flow, step, kind, "mismatch", "参数格式错", f"field 62 could not be read: {e}")
    # end
    count = len(state.ic.get(f"{kind}s", ()))
    if kind == "aid" and (step.primary or flow.input.operation == "ic_download"):
        capks = len(state.ic.get("capks", ()))
        result = replace(code_result("ic_download", "00", stan=flow.request.text(11), batch=state.batch),
                         message_zh=f"IC卡参数下载成功：公钥 {capks} 个，AID {count} 个",
                         message_en=f"IC data downloaded: {capks} CA public keys, {count} AIDs",
                         extra={"capks": capks, "aids": count})  # fmt: skip
        return state, replace(flow, result=result)
    return state, flow.note(f"{ZH[kind]}: {count}")


def _on_query(flow: Flow, step: Step, kind: str, reply: Message) -> Flow:
    status, items = icp.parse_query_reply(reply.data(62))
    keys: list[Any] = []
    for item in items:
        d = dict(item)
        if kind == "capk":
            if "9F22" not in d:
                raise CodecError("62.9F22", "the key index of each CA public key")
            keys.append((d["9F06"].hex().upper(), d["9F22"].hex().upper()))
        else:
            keys.append(d["9F06"].hex().upper())
    start = int(step.data or 0)
    found = (*flow.data.get(f"{kind}_keys", ()), *keys)
    if status == icp.MORE and items and start + len(items) <= icp.QUERY_MAX_START:
        return flow.with_data(**{f"{kind}_keys": found}).push_front(replace(step, data=start + len(items)))
    downloads = tuple(Step(f"{kind}_download", data=k, cause=step.cause, secondary=step.secondary) for k in found)
    end = Step(f"{kind}_end", cause=step.cause, primary=step.primary, secondary=step.secondary)
    return flow.push_front(*downloads, end).with_data(**{f"{kind}_keys": (), f"{kind}_got": ()})


def on_timeout(
    state: TerminalState, flow: Flow, step: Step, now: datetime, reason: str
) -> tuple[TerminalState, Flow]:
    kind, _ = _split(step)
    return state, _fail(flow, step, kind, "timeout", "超时", "no reply")
