"""The card network's answer to one host-to-host request (sans-IO: no sockets, no clock).

Theory of operation
-------------------
:func:`answer` takes a decoded request, the network's store (its own database: the issuers'
cards, the ``network_transactions`` records) and the issuer behind it (the built-in issuer's
logic: cards, balances, PIN, chip cryptograms, payment codes), and returns the reply.

* 0800: sign-on (70 = 001) answers the zone PIN key in 48 (under the zone master key both
  sides hold; the server adds the connection's MAC key after it), sign-off (002) and echo
  (301) are acknowledged. MAC checks and key changes (101) are the server's, per connection.
* 0100/0200 (authorisations), 0220 (advices): kind from MTI + 3 + 25 (``KINDS``); a repeat
  (the same acquirer, STAN, RRN and MTI; 0x21 repeats included) is answered as the first
  time, never executed twice. Advices (the money moved already) are posted as forced debits.
* 0420/0421 (reversals): the original is found by RRN + original STAN (field 90) of this
  acquirer and undone with the inverse of what it did, once. A reversal of something the
  network never saw is recorded and acknowledged; should the original arrive later it is
  declined ``12`` without being executed (the acquirer had given up on it).

Every financial message answered is one row of ``network_transactions`` (the clearing
contract); repeats add none.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from posgate.dialect import network as h2h
from posgate.dialect.qr import is_qr_entry
from posgate.domain.masking import mask_pan
from posgate.host.context import zone
from posgate.host.ports import Issuer, IssuerRequest, IssuerResult
from posgate.iso8583 import TLV, Message

INVERSE = {
    "debit": "reverse_debit", "force_debit": "reverse_debit", "confirm_debit": "reverse_debit", "credit": "reverse_credit",
    "hold": "reverse_hold", "release_hold": "reverse_release", "capture_hold": "reverse_capture",
}  # fmt: skip


class RecordStore(Protocol):
    """What :func:`answer` reads and writes besides the issuer's cards."""

    def find(self, acquirer_id: str, rrn: str, stan: str, mti: str) -> dict[str, Any] | None: ...
    def find_original(self, acquirer_id: str, rrn: str, stan: str) -> dict[str, Any] | None: ...
    def reversal_of(self, acquirer_id: str, rrn: str, stan: str) -> dict[str, Any] | None: ...
    def insert(self, row: dict[str, Any]) -> int: ...
    def mark_reversed(self, row_id: int) -> None: ...
    def pan_token(self, pan: str) -> str: ...
    def card_kind(self, pan: str) -> str: ...


def _base(mti: str) -> str:
    """0221 → 0220: a repeat is the same message."""
    return mti[:3] + "0"


def answer(msg: Message, records: RecordStore, issuer: Issuer, now: datetime, *, network_id: str,
           zpk_under_zmk: Callable[[], str], tz: str = "Asia/Shanghai") -> Message:  # fmt: skip
    """The network's reply to ``msg`` (never raises for a well-formed message)."""
    mti = msg.mti
    if mti == "0800":
        reply = {7: msg.text(7) or now.strftime("%m%d%H%M%S"), 11: msg.text(11) or "000000", 39: "00",
                 70: msg.text(70) or h2h.ECHO}  # fmt: skip
        if msg.text(70) == h2h.SIGN_ON:
            reply[48] = zpk_under_zmk()  # the server appends the connection's MAC key (posgate.network.keys)
        return Message("0810", reply)
    if _base(mti) not in ("0100", "0200", "0220", "0420"):
        return Message(h2h.reply_mti(mti) if mti[2] in "0123456" else "0810", {39: "30", 11: msg.text(11) or "000000"})
    local = now.astimezone(zone(tz))
    business_date = local.strftime("%Y%m%d")
    acquirer, rrn, stan = msg.text(32), msg.text(37), msg.text(11)
    reply_fields: dict[int, Any] = {n: msg[n] for n in (3, 4, 7, 11, 32, 37, 41, 42, 49) if n in msg}
    reply_fields[15] = local.strftime("%m%d")
    reply_fields[100] = network_id
    seen = records.find(acquirer, rrn, stan, _base(mti))
    if seen is not None:  # a repeat: the same answer, nothing executed again
        return _reply(mti, reply_fields, seen["response_code"], seen.get("auth_code"), None)
    pan = msg.text(2)
    row: dict[str, Any] = {
        "business_date": business_date, "acquirer_id": acquirer, "forwarding_id": msg.text(33) or None,
        "rrn": rrn, "stan": stan, "terminal_id": msg.text(41), "merchant_id": msg.text(42), "mti": _base(mti),
        "processing_code": msg.text(3), "amount_cents": int(msg.text(4) or "0"), "currency": msg.text(49) or "156",
        "pan_masked": mask_pan(pan) if pan else "", "pan_token": records.pan_token(pan) if pan else "",
        "card_kind": "qr" if is_qr_entry(msg.text(22)) else (records.card_kind(pan) if pan else "debit"),
        "transmission_time": msg.text(7), "original_stan": None, "original_rrn": None,
        "stand_in": msg.text(60) == h2h.REASON_STAND_IN, "reversed": False, "created_at": now,
    }  # fmt: skip
    if _base(mti) == "0420":
        return _reverse(msg, row, reply_fields, records, issuer, now, mti)
    kind = h2h.kind_of(mti, msg.text(3), msg.text(25))
    row["kind"] = "advice" if _base(mti) == "0220" else "authorisation"
    if kind is None or not pan:
        row.update(response_code="30", auth_code=None)
        records.insert(row)
        return _reply(mti, reply_fields, "30", None, None)
    if records.reversal_of(acquirer, rrn, stan) is not None:
        # The acquirer reversed this before it reached us (it timed out): never execute it now.
        row.update(response_code="12", auth_code=None)
        records.insert(row)
        return _reply(mti, reply_fields, "12", None, None)
    icc = msg.get(55)
    request = IssuerRequest(
        kind=kind, pan=pan, expiry=msg.text(14) or None, amount=row["amount_cents"], pin_block=msg.data(52),
        reference=rrn, hold_amount=int(msg.text(48) or "0") if kind == "capture_hold" else 0,
        icc=icc.raw if isinstance(icc, TLV) else None, pan_seq=msg.text(23), terminal_id=row["terminal_id"],
        merchant_id=row["merchant_id"], mcc=msg.text(18), entry_mode=msg.text(22),
    )  # fmt: skip
    result = issuer.authorize(request, now)
    code = result.response_code
    row.update(response_code=code, auth_code=result.auth_code if code == "00" else None)
    records.insert(row)
    return _reply(mti, reply_fields, code, result.auth_code if code == "00" else None, result)


def _reverse(msg: Message, row: dict[str, Any], reply_fields: dict[int, Any], records: RecordStore, issuer: Issuer,
             now: datetime, mti: str) -> Message:  # fmt: skip
    o_mti, o_stan, _o_time, _o_acq = h2h.parse_original_data(msg.text(90) or "0" * 42)
    row.update(kind="reversal", original_stan=o_stan, original_rrn=row["rrn"], auth_code=None)
    original = records.find_original(row["acquirer_id"], row["rrn"], o_stan)
    if original is None:
        row.update(response_code="00")  # recorded: the original, should it come, is declined 12
        records.insert(row)
        return _reply(mti, reply_fields, "00", None, None)
    if original["reversed"] or original["response_code"] != "00":
        row.update(response_code="00")  # nothing (more) to undo
        records.insert(row)
        return _reply(mti, reply_fields, "00", None, None)
    kind = h2h.kind_of(o_mti, msg.text(3), msg.text(25))
    inverse = INVERSE.get(kind or "")
    if inverse is None or original["pan_token"] != row["pan_token"]:
        row.update(response_code="30")
        records.insert(row)
        return _reply(mti, reply_fields, "30", None, None)
    result = issuer.authorize(IssuerRequest(kind=inverse, pan=msg.text(2), expiry=None, amount=int(original["amount_cents"]),
                                            reference=row["rrn"], hold_amount=int(msg.text(48) or "0")), now)  # fmt: skip
    row.update(response_code=result.response_code, amount_cents=int(original["amount_cents"]))
    if result.response_code == "00":
        records.mark_reversed(int(original["id"]))
    records.insert(row)
    return _reply(mti, reply_fields, result.response_code, None, None)


def _reply(mti: str, fields: dict[int, Any], code: str, auth_code: str | None, result: IssuerResult | None) -> Message:
    out = dict(fields)
    out[39] = code
    if auth_code:
        out[38] = auth_code
    if result is not None:
        if result.balance is not None:
            # 54 as the CUP dialect writes it: account type, amount type, currency, sign, amount.
            out[54] = f"1002156{'C' if result.balance >= 0 else 'D'}{abs(result.balance):012d}"
        if result.icc is not None:
            out[55] = TLV.decode(result.icc)
        if result.organisation:
            out[63] = result.organisation
        if result.issuer_bank:
            out[44] = result.issuer_bank[:25]
    return Message(h2h.reply_mti(mti), dict(sorted(out.items())))


def result_of(reply: Message, route: str, stan: str, rrn: str) -> IssuerResult:
    """The acquirer's side: an :class:`IssuerResult` from the network's reply."""
    balance = None
    f54 = reply.text(54)
    if len(f54) >= 20 and f54[8:20].isdigit():
        balance = int(f54[8:20]) * (-1 if f54[7] == "D" else 1)
    icc = reply.get(55)
    return IssuerResult(
        response_code=reply.text(39) or "96", auth_code=reply.text(38).strip() or None, balance=balance,
        organisation=reply.text(63) or "CUP", issuer_bank=reply.text(44), icc=icc.raw if isinstance(icc, TLV) else None,
        route=route, upstream_stan=stan, upstream_rrn=rrn,
    )  # fmt: skip
