"""The slips a terminal prints, built from its own records — one place for every shell.

The CLI (``reprint``), the TUI (print after a transaction, reprint, make-up signature) and
their PDFs all build a :class:`~posgate.receipt.Slip` here, so what a slip says about the
signature (已电子签名 / 未签名 / 补签), the time and the card comes from the batch log the same
way whoever prints it. A slip's signature state is the transaction's: ``pending`` (captured,
waiting for upload) and ``uploaded`` are signed, the picture printed when this terminal still
holds it (the JBIG of a pending upload, or a PNG the shell kept), else the mark alone;
``unsigned`` is 未签名; ``""`` (no signature applies) prints no signature area.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from posgate.dialect.fields import SideTotals
from posgate.domain.masking import mask_pan
from posgate.receipt import Copy, SettlementSlip, Slip
from posgate.terminal.state import TerminalState, TxnEntry

SIGNED_STATES = frozenset({"pending", "uploaded"})


def parse_when(entry: TxnEntry, zone: str) -> datetime:
    """The transaction's local time (the terminal's zone), naive, as slips print it."""
    if entry.at:
        try:
            at = datetime.fromisoformat(entry.at)
            return (at.astimezone(ZoneInfo(zone)) if at.tzinfo else at).replace(tzinfo=None)
        except ValueError:
            pass
    now = datetime.now(ZoneInfo(zone))
    try:
        return datetime.strptime(f"{now.year}{entry.date}{entry.time}", "%Y%m%d%H%M%S")
    except ValueError:
        return now.replace(tzinfo=None, microsecond=0)


def signature_picture(state: TerminalState, entry: TxnEntry, kept_png: bytes | None = None) -> bytes | None:
    """What the slip's signature area shows: None (unsigned), PNG bytes, or b"" (signed, the
    picture not on this terminal any more)."""
    if kept_png is not None:
        return kept_png
    if entry.signature not in SIGNED_STATES:
        return None
    jbig = state.signatures.get(entry.stan)
    if not jbig:
        return b""
    try:
        from posgate.signature import jbig_to_png

        return jbig_to_png(jbig)
    except (ImportError, ValueError):  # the picture cannot be drawn: the signed mark still holds
        return b""


NO_CVM_REMARK = "免密免签 No PIN, no signature"


def slip_for(state: TerminalState, entry: TxnEntry, *, signature_png: bytes | None = None, make_up: bool = False,
             reprint: bool = False, copy: Copy = Copy.MERCHANT, merchant_name_en: str = "") -> Slip:  # fmt: skip
    """The sales slip of a transaction of the batch log (current or settled)."""
    return Slip(
        merchant_name=state.merchant_name,
        merchant_name_en=merchant_name_en,
        merchant_id=state.config.merchant_id,
        terminal_id=state.config.terminal_id,
        operator=entry.operator,
        card_number=mask_pan(entry.pan) if entry.pan else "",
        operation=entry.operation,
        batch_no=entry.batch,
        stan=entry.stan,
        when=parse_when(entry, state.config.timezone),
        amount=entry.amount,
        issuer=entry.issuer_bank,
        acquirer=entry.acquirer_bank,
        card_org=entry.card_org,
        entry_mode=entry.entry_mode,
        auth_code=entry.auth_code,
        rrn=entry.rrn,
        currency=state.config.currency,
        original_stan=entry.original_stan,
        original_date=entry.original_date,
        signature_required=entry.signature != "" and not entry.no_cvm,
        remarks=NO_CVM_REMARK if entry.no_cvm else "",
        signature_png=signature_picture(state, entry, signature_png),
        make_up_signature=make_up,
        copy=copy,
        reprint=reprint,
    )


def settlement_slip_from(info: Any, state: TerminalState, operator: str, *, reprint: bool = False,
                         merchant_name_en: str = "") -> SettlementSlip:  # fmt: skip
    """The settlement slip of the core's settlement record (``Result.settlement`` /
    ``state.last_settlement``): totals per side and the 48 result flags."""
    info = dict(info or {})
    totals = info.get("totals") or {}

    def side(name: str) -> SideTotals:
        t = totals.get(name) or {}
        flag = str(info.get(f"{name}_result", "1"))[:1] or "1"
        return SideTotals(int(t.get("debit_amount", 0)), int(t.get("debit_count", 0)), int(t.get("credit_amount", 0)),
                          int(t.get("credit_count", 0)), flag)  # fmt: skip

    when = datetime.now(ZoneInfo(state.config.timezone)).replace(tzinfo=None, microsecond=0)
    if info.get("settled_at"):
        try:
            at = datetime.fromisoformat(str(info["settled_at"]))
            when = (at.astimezone(ZoneInfo(state.config.timezone)) if at.tzinfo else at).replace(tzinfo=None)
        except ValueError:
            pass
    return SettlementSlip(
        merchant_name=str(info.get("merchant_name") or state.merchant_name),
        merchant_id=str(info.get("merchant_id") or state.config.merchant_id),
        terminal_id=str(info.get("terminal_id") or state.config.terminal_id),
        operator=operator,
        batch_no=str(info.get("settled_batch") or state.batch),
        when=when,
        domestic=side("domestic"),
        foreign=side("foreign"),
        merchant_name_en=merchant_name_en,
        currency=state.config.currency,
        reprint=reprint,
    )
