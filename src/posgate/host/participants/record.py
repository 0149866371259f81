"""Record the message and its outcome (declines included) as one transaction row, with the
step trace and the reply as sent (so a retransmission gets it again, D8). Runs even after a
decline (``always``).

A gate decline (nothing executed) is stored with status ``rejected``; a later message with the
same TID + batch + STAN + MTI overwrites that row instead of inserting (the key is unique).
Never stores a track, a PIN block or a clear PAN: ``pan_hash``, ``pan_masked`` and the
store-encrypted ``pan_enc`` only. The reply echoes fields 2 and 14, so it is stored sealed by the
store (``seal_message``, docs/decisions.md S1), like ``pan_enc``.
"""

from __future__ import annotations

from posgate.host.context import PREPARED, Context
from posgate.host.participants.authorize import is_fallback
from posgate.host.pipeline import Participant, reply_header
from posgate.host.ports import TxnRecord

# What a retry overwrites in a rejected attempt's row: everything but the message key
# (TID + batch + STAN + MTI), the id and what only later messages change.
_REPLACED = (
    "created_at", "day", "operation", "processing_code", "amount", "currency", "pan_hash", "pan_masked",
    "card_organisation", "entry_mode", "response_code", "auth_code", "rrn", "status", "original_id",
    "request_digest", "reply", "trace", "operator", "source", "pan_enc", "settlement_id", "route", "stand_in",
    "upstream_stan", "upstream_rrn",
)  # fmt: skip


FALLBACK_ENTRY = "80"  # ISO 8583 POS entry mode: chip-to-stripe fallback


def _entry_mode(ctx: Context) -> str | None:
    """Field 22 as sent; a stripe read after a chip failure (60.5 = 2) is kept as ``80`` + the
    PIN digit, the ISO 8583 entry mode for a chip-to-stripe fallback, so that the console and the
    slip can say 降级交易 / Fallback (docs/decisions.md C4)."""
    assert ctx.msg is not None
    f22 = ctx.msg.text(22)
    if f22 and is_fallback(ctx):
        return FALLBACK_ENTRY + f22[2:3]
    return f22 or None


class Record(Participant):
    always = True

    def prepare(self, ctx: Context) -> str:
        msg, t, op = ctx.msg, ctx.terminal, ctx.op
        if not ctx.record or msg is None or t is None or op is None or ctx.replay is not None:
            return ctx.prepared(self.name, "not recorded")
        code = ctx.response_code or "96"
        if ctx.status is not None:
            status = ctx.status
        elif ctx.rejected:
            status = "rejected"
        else:
            status = "approved" if code == "00" else "declined"
        reply = ctx.reply_body
        original = ctx.original
        # Who answered (issue 13): the issuer's result, or the reversal's (ReverseOriginal).
        r = ctx.issuer_result or ctx.extra.get("reversal_result")
        # One record, built once (no dict of fields in between: this runs for every attempt).
        txn = TxnRecord(
            id=None, created_at=ctx.now, day=ctx.day, terminal_id=t.terminal_id, merchant_id=t.merchant_id,
            batch_no=ctx.batch_no, stan=ctx.stan, mti=msg.mti, operation=op.name,
            processing_code=msg.text(3) or None, amount=ctx.amount, currency=msg.text(49) or ctx.env.currency,
            pan_hash=ctx.pan_hash, pan_masked=ctx.pan_masked,
            pan_enc=ctx.store.encrypt_pan(ctx.pan) if ctx.pan is not None and not ctx.rejected else None,
            card_organisation=ctx.card_organisation, entry_mode=_entry_mode(ctx), response_code=code,
            auth_code=ctx.auth_code if code == "00" else None, rrn=ctx.rrn, status=status,
            original_id=original.id if original is not None else None, refunded_amount=0,
            request_digest=ctx.digest,
            reply=None if reply is None else ctx.store.seal_message(reply_header(ctx.header, ctx.requirement) + reply),
            trace=ctx.trace, operator=t.operator, source=ctx.source, settlement_id=ctx.extra.get("settlement_id"),
            route=r.route if r is not None else "issuer", stand_in=r.stand_in if r is not None else False,
            upstream_stan=r.upstream_stan if r is not None else None,
            upstream_rrn=r.upstream_rrn if r is not None else None,
        )  # fmt: skip
        prev = ctx.previous
        if prev is not None and prev.status == "rejected" and prev.id is not None:
            ctx.prepared(self.name, f"replaces rejected attempt #{prev.id}")  # the trace is txn.trace
            ctx.store.update_transaction(prev.id, **{name: getattr(txn, name) for name in _REPLACED})
            ctx.txn_id = prev.id
            return PREPARED
        ctx.prepared(self.name, status)  # before the write, so that the stored trace has it
        ctx.txn_id = ctx.store.insert_transaction(txn)
        return PREPARED
