"""IC public keys and IC parameters (docs/dialect.md 3.12): the terminal's query (0820, 60.3
``372`` / ``382``), download of one item (0800, ``370`` / ``380``) and end (0800, ``371`` /
``381``); no MAC, like every network-management message (5.3).

* Query: field 62 = ``1`` + the start index; the reply lists what the host has from there
  (status ``0`` none / ``1`` all / ``2`` more follow / ``3`` the last part; at most
  :data:`~posgate.dialect.ic_params.QUERY_PAGE` items).
* Download: field 62 = the item's key (9F06 [+ 9F22]); the reply's 62 is ``1`` + its whole
  parameter list. A key the host does not have: ``25`` (no record on file); 62 unreadable: ``30``.
* End: clears the terminal's ``capk_pending`` / ``aid_pending``.

The header requirement (4 CAPK, 5 AID) asks a terminal to download when a list changed since
its last download (:func:`ic_requirement`; an admin change flags every terminal). While the
terminal is downloading one list, its replies do not ask for that same list again.

The no-CVM check (docs/decisions.md C2): a contactless sale (22 = ``07x``) without a PIN above the
no-CVM limit (DF21) the host has for the card's AID is declined ``55`` before the issuer sees it
(the terminal asks for the PIN and tries again; the card's PIN tries are not counted).
"""

from __future__ import annotations

from posgate.dialect.ic_params import (
    aid_key_tlv,
    download_reply,
    parse_query_request,
    query_reply,
    read_tlv,
)
from posgate.host.context import Context
from posgate.host.pipeline import Participant
from posgate.host.ports import TerminalRecord
from posgate.iso8583 import TLV, CodecError

_FLAG = {"capk": "capk_pending", "aid": "aid_pending"}


def ic_requirement(t: TerminalRecord, downloading: str = "") -> str:
    """The header requirement for a terminal's pending IC downloads: ``4`` CA public keys first,
    then ``5`` IC parameters; ``downloading`` ("capk" / "aid") is left out."""
    if t.capk_pending and downloading != "capk":
        return "4"
    if t.aid_pending and downloading != "aid":
        return "5"
    return "0"


def _settle_requirement(ctx: Context, t: TerminalRecord, kind: str) -> None:
    ctx.requirement = "3" if t.resign_requested else "1" if t.params_pending else ic_requirement(t, kind)


class QueryIcParams(Participant):
    def __init__(self, kind: str) -> None:
        self.kind = kind  # capk | aid

    def prepare(self, ctx: Context) -> str:
        msg, t = ctx.msg, ctx.terminal
        assert msg is not None and t is not None
        try:
            start = parse_query_request(msg.data(62))
        except CodecError as exc:
            return ctx.decline(self.name, "30", f"field {exc.field}: {exc.expected}")
        if self.kind == "capk":
            items = [c.summary_tlv() for c in ctx.store.ic_capks()]
        else:
            items = [aid_key_tlv(a.aid) for a in ctx.store.ic_aids()]
        ctx.reply[62] = query_reply(items, start)
        _settle_requirement(ctx, t, self.kind)
        ctx.response_code = "00"
        return ctx.prepared(self.name, f"{len(items)} {self.kind}s, from {start}")


class DownloadIcParams(Participant):
    def __init__(self, kind: str) -> None:
        self.kind = kind

    def prepare(self, ctx: Context) -> str:
        msg, t = ctx.msg, ctx.terminal
        assert msg is not None and t is not None
        _settle_requirement(ctx, t, self.kind)
        try:
            key = dict(read_tlv(msg.data(62) or b""))
        except CodecError as exc:
            return ctx.decline(self.name, "30", f"field {exc.field}: {exc.expected}")
        rid = key.get("9F06", b"").hex().upper()
        if not rid or (self.kind == "capk" and len(key.get("9F22", b"")) != 1):
            return ctx.decline(self.name, "30", "field 62: 9F06" + (" + 9F22" if self.kind == "capk" else ""))
        if self.kind == "capk":
            index = key["9F22"].hex().upper()
            found = next((c.tlv() for c in ctx.store.ic_capks() if c.key == (rid, index)), None)
            what = f"{rid}/{index}"
        else:
            found = next((a.tlv() for a in ctx.store.ic_aids() if a.aid == rid), None)
            what = rid
        if found is None:
            return ctx.decline(self.name, "25", f"no {self.kind} {what}")
        ctx.reply[62] = download_reply(found)
        ctx.response_code = "00"
        return ctx.prepared(self.name, what)


class EndIcDownload(Participant):
    def __init__(self, kind: str) -> None:
        self.kind = kind

    def prepare(self, ctx: Context) -> str:
        t = ctx.terminal
        assert t is not None
        flag = _FLAG[self.kind]
        if getattr(t, flag):
            ctx.store.update_terminal(t.terminal_id, **{flag: False})
        _settle_requirement(ctx, t, self.kind)
        ctx.response_code = "00"
        return ctx.prepared(self.name)


def card_aid(icc: object) -> str:
    """The AID of a chip request's field 55 (84 dedicated file name, else 4F / 9F06), or ""."""
    if not isinstance(icc, TLV):
        return ""
    for tag in ("84", "4F", "9F06"):
        v = icc.get(tag)
        if isinstance(v, bytes) and v:
            return v.hex().upper()
    return ""


class CheckNoCvmLimit(Participant):
    def prepare(self, ctx: Context) -> str:
        msg = ctx.msg
        assert msg is not None
        entry = msg.text(22)
        if not entry.startswith("07"):
            return ctx.prepared(self.name, "not contactless")
        if entry[2:3] == "1" or 52 in msg:
            return ctx.prepared(self.name, "PIN entered")
        aid = card_aid(msg.get(55))
        params = next((a for a in ctx.store.ic_aids() if a.aid == aid), None) if aid else None
        if params is None:
            return ctx.prepared(self.name, f"no limit known for AID {aid or '-'}")
        if ctx.amount > params.cvm_limit:
            return ctx.decline(self.name, "55", f"no PIN above the no-CVM limit {params.cvm_limit} of {aid}")
        return ctx.prepared(self.name, f"no CVM, limit {params.cvm_limit}")
