"""Render a CUP message for people and logs: every field with its name and sub-fields, masked.

What is never shown: the PIN block (52), key blocks (62 of an 0810), track discretionary data
(35/36 beyond the masked PAN), PAN digits beyond first 6 / last 4 (2, 35, 36, 55 tags 5A/57),
the expiry date. A payments engineer still sees enough to read a trace: every code, amount,
STAN, batch, RRN, bitmap, lengths.
"""

from __future__ import annotations

from typing import Any

from posgate.dialect.cup import FIELDS
from posgate.dialect.fields import (
    Balance,
    BatchUploadEntries,
    Field44,
    Field60,
    Field61,
    Field63,
    SettlementTotals,
    batch_end_count,
    parse_parameters,
    parse_terminal_info,
)
from posgate.dialect.operations import identify
from posgate.dialect.profiles import BASELINE, PROFILES, Profile
from posgate.domain.masking import mask_pan, mask_track
from posgate.iso8583 import TLV, CodecError, Message, Sensitivity

_TLV_PAN_TAGS = {"5A": "pan", "57": "track"}


def _masked(number: int, value: Any) -> str:
    spec = FIELDS[number]
    if spec.sensitivity is Sensitivity.PAN:
        return mask_pan(value) if number == 2 else "****"
    if spec.sensitivity is Sensitivity.TRACK:
        return mask_track(value)
    if spec.sensitivity is Sensitivity.PIN:
        return "[PIN block, 8 bytes]"
    if isinstance(value, bytes):
        return value.hex().upper()
    if isinstance(value, TLV):
        return value.raw.hex().upper()
    return str(value)


def _tlv_rows(tlv: TLV, path: str) -> list[dict[str, str]]:
    rows = []
    for tag, value in tlv.items:
        p = f"{path}.{tag}"
        if isinstance(value, TLV):
            rows.append({"path": p, "name": "constructed", "value": f"{len(value)} items"})
            rows.extend(_tlv_rows(value, p))
        elif tag == "5A":
            rows.append({"path": p, "name": "PAN", "value": mask_pan(value.hex().upper().rstrip("F"))})
        elif tag == "57":
            rows.append({"path": p, "name": "track 2 equivalent", "value": mask_track(value.hex().upper().replace("D", "=").rstrip("F"))})
        else:
            rows.append({"path": p, "name": "", "value": value.hex().upper()})
    return rows


def _sub_rows(msg: Message, number: int, value: Any, profile: Profile) -> list[dict[str, str]]:
    mti = msg.mti
    f60 = msg.text(60)
    nmic = f60[8:11]
    rows: list[dict[str, str]] = []

    def add(path: str, name: str, v: object) -> None:
        rows.append({"path": path, "name": name, "value": str(v)})

    if number == 60:
        f = Field60.parse(value, profile.f60_private)
        add("60.1", "type code", f.type_code)
        add("60.2", "batch number", f.batch_no)
        add("60.3", "network management code", f.nmic)
        for i, (name, v) in enumerate(
            (("read capability", f.read_capability), ("chip condition", f.chip_condition),
             ("partial approval", f.partial_approval), ("account type", f.account_type)), start=4):  # fmt: skip
            if v:
                add(f"60.{i}", name, v)
        if f.private:
            add("60.4+", f"private digits ({profile.name} profile)", f.private)
    elif number == 61:
        g = Field61.parse(value)
        add("61.1", "original batch", g.orig_batch_no)
        add("61.2", "original STAN", g.orig_stan)
        if g.orig_date:
            add("61.3", "original date", g.orig_date)
        if g.auth_method:
            add("61.4", "authorisation method", g.auth_method)
        if g.auth_institution:
            add("61.5", "authorising institution", g.auth_institution)
    elif number == 48 and mti in ("0500", "0510"):
        t = SettlementTotals.parse(value)
        for side, s in (("domestic", t.domestic), ("foreign", t.foreign)):
            add(f"48.{side}", "debit amount/count", f"{s.debit_amount}/{s.debit_count}")
            add(f"48.{side}", "credit amount/count", f"{s.credit_amount}/{s.credit_count}")
            add(f"48.{side}", "settle flag", s.flag)
    elif number == 48 and mti in ("0320", "0330") and nmic in ("207", "202"):
        add("48", "transactions uploaded", batch_end_count(value))
    elif number == 48 and mti == "0320" and nmic == "201":
        for i, e in enumerate(BatchUploadEntries.parse(value).entries, start=1):
            add(f"48.{i}", "foreign" if e.foreign else "CUP", f"STAN {e.stan} PAN {mask_pan(e.pan)} amount {e.amount}")
    elif number == 54:
        add("54", "balance (fen)", Balance.parse(value).amount)
    elif number == 44:
        f44 = Field44.parse(value)
        add("44.1", "issuing bank", f44.issuer_bank)
        add("44.2", "acquiring bank", f44.acquirer_bank)
    elif number == 63:
        f63 = Field63.parse(value)
        add("63.1", "operator / card organisation", f63.code)
        for name, v in (("issuer info", f63.issuer_info), ("CUP info", f63.cup_info), ("acquirer info", f63.acquirer_info)):
            if v:
                add("63.2", name, v)
    elif number == 55 and isinstance(value, TLV):
        rows.extend(_tlv_rows(value, "55"))
    elif number == 62:
        if mti == "0800":
            try:
                add("62", "device serial", parse_terminal_info(value))
            except CodecError:
                add("62", "terminal information", f"{len(value)} bytes")
        elif mti == "0810" and nmic == "360":
            for tag, param in parse_parameters(value).items():
                add(f"62.{tag}", "parameter", param.decode("gbk", "replace"))
        elif mti == "0810":
            add("62", "working keys (encrypted, hidden)", f"{len(value)} bytes")
        elif mti == "0820" and nmic == "800":
            add("62", "JBIG signature image", f"{len(value)} bytes")
    return rows


def describe_rows(msg: Message, profile: Profile | None = None) -> list[dict[str, str]]:
    """One dict per field and sub-field: ``path``, ``name``, ``value`` (masked). ``profile``:
    the dialect profile the message was decoded with (its field names, 60 tail, code aliases)."""
    profile = profile or PROFILES[BASELINE]
    op = identify(msg, profile.aliases)
    rows = [{"path": "mti", "name": "message type" + (f" ({op.en} / {op.zh})" if op else ""), "value": msg.mti}]
    for number in msg:
        value = msg[number]
        spec = profile.codec.fields[number]
        shown = _masked(number, value)
        if number == 62 and msg.mti == "0810":
            shown = f"[{len(value)} bytes hidden]"
        rows.append({"path": str(number), "name": f"{spec.name} ({spec.zh}) {spec.notation}", "value": shown})
        try:
            rows.extend(_sub_rows(msg, number, value, profile))
        except CodecError as e:
            rows.append({"path": e.field, "name": "sub-field error", "value": e.expected})
    return rows


def describe(msg: Message) -> str:
    """A one-field-per-line rendering for people (and logs)."""
    rows = describe_rows(msg)
    width = max(len(r["path"]) for r in rows)
    return "\n".join(f"{r['path']:>{width}}  {r['name']:<60}  {r['value']}" for r in rows)


def describe_short(msg: Message) -> str:
    """One line for a log record: MTI, operation, STAN, TID, amount, response code — masked."""
    op = identify(msg)
    parts = [msg.mti, op.name if op else "?"]
    for number, label in ((11, "stan"), (41, "tid"), (4, "amount"), (39, "rc")):
        if number in msg:
            parts.append(f"{label}={msg.text(number)}")
    if 2 in msg:
        parts.append(f"pan={mask_pan(msg.text(2))}")
    return " ".join(parts)
