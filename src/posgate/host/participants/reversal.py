"""Reversal (8, D9): undo an approved original exactly once.

Matching: TID + MID (the gate) + batch (60.2) + STAN (11) — the records CheckDuplicate already
loaded — and the amount must equal (``64`` otherwise, nothing reversed).

* original approved → the issuer undoes it (sale/completion advice: ``reverse_debit``;
  completion: ``reverse_capture``, the pre-auth is ``approved`` again; pre-auth:
  ``release_hold``; pre-auth void: ``reverse_release``, the pre-auth is ``approved`` again;
  void / completion void: ``reverse_credit``, the sale / completion is ``approved`` again);
  the original becomes ``reversed``; ``00``;
* original a QR sale still ``pending`` (09, Q2) → becomes ``reversed`` (never approved by a
  later query), ``00``, nothing to undo;
* original declined, or voided already (the void gave the money back) → ``00``, nothing to undo;
* original reversed already, or a 0400 with this STAN already processed → the same response
  code again, nothing re-executed, nothing written (a byte-identical one gets the stored
  reply from CheckDuplicate);
* original refunded / adjusted / completed meanwhile → ``12`` (undoing it would pay twice);
* original never seen → ``00``, and the 0400 is recorded so that the original, should it
  arrive later, is declined ``12`` and never approved (duplicates.py).
"""

from __future__ import annotations

from posgate.domain.masking import mask_pan
from posgate.host.context import Context
from posgate.host.pipeline import Participant
from posgate.host.ports import IssuerRequest, TxnRecord

# original operation → (issuer kind, status to give back to the original's own original)
UNDO = {
    "sale": ("reverse_debit", None),
    "completion_advice": ("reverse_debit", None),
    "completion": ("reverse_capture", "approved"),
    "preauth": ("reverse_hold", None),
    "preauth_void": ("reverse_release", "approved"),
    "void": ("reverse_credit", "approved"),
    "completion_void": ("reverse_credit", "approved"),
    "balance": (None, None),
}


class ReverseOriginal(Participant):
    def prepare(self, ctx: Context) -> str:
        prev = ctx.previous
        if prev is not None and prev.status != "rejected":
            ctx.response_code = prev.response_code
            ctx.record = False
            return ctx.done(self.name, f"repeated reversal, answered as #{prev.id}")
        original = None
        for r in ctx.siblings:
            if r.mti != "0400" and r.status != "rejected":
                original = r
                break
        if original is None:
            ctx.response_code = "00"
            return ctx.prepared(self.name, "original never seen: recorded so it can never be approved (D9)")
        ctx.original = original
        ctx.pan_hash, ctx.pan_masked = original.pan_hash, original.pan_masked
        ctx.card_organisation = original.card_organisation
        if original.amount != ctx.amount:
            ctx.rejected = True  # nothing reversed: a corrected 0400 with this STAN is processed afresh
            return ctx.decline(self.name, "64", f"amount differs from #{original.id}")
        if original.status == "pending" and original.id is not None:
            # A QR sale still waiting for the password (Q2): nothing was taken yet; cancelled
            # here so that a later query can never approve it.
            ctx.store.update_transaction(original.id, status="reversed")
            ctx.response_code = "00"
            return ctx.prepared(self.name, f"#{original.id} pending: cancelled")
        if original.response_code != "00" or original.status == "voided":
            ctx.response_code = "00"
            return ctx.prepared(self.name, f"#{original.id} is {original.status}: nothing to undo")
        if original.status == "reversed":
            ctx.response_code = "00"
            return ctx.prepared(self.name, f"#{original.id} already reversed")
        if original.status != "approved":
            return ctx.decline(self.name, "12", f"#{original.id} is {original.status}: cannot be reversed")
        kind, restore = UNDO.get(original.operation, ("reverse_debit", None))
        if kind is not None:
            if original.pan_enc is None:
                return ctx.decline(self.name, "96", f"#{original.id} has no card to reverse against")
            pan = ctx.store.decrypt_pan(original.pan_enc)
            ctx.pan_masked = mask_pan(pan)
            hold = 0
            grand = None
            if original.original_id is not None and restore is not None:
                grand = _by_id(ctx, original.original_id)
            if original.operation == "completion" and grand is not None:
                hold = grand.amount
            t = ctx.terminal
            res = ctx.issuer.authorize(IssuerRequest(kind=kind, pan=pan, expiry=None, amount=original.amount,
                                                     reference=original.rrn or "", hold_amount=hold,
                                                     terminal_id=t.terminal_id if t else "",
                                                     merchant_id=t.merchant_id if t else "", stan=ctx.stan,
                                                     original_upstream_stan=original.upstream_stan or "",
                                                     original_route=original.route),
                                       ctx.now)  # fmt: skip
            ctx.extra["reversal_result"] = res
            if res.response_code != "00":
                return ctx.decline(self.name, res.response_code, f"issuer refused {kind}")
            if grand is not None and grand.id is not None:
                ctx.store.update_transaction(grand.id, status=restore)
        assert original.id is not None
        ctx.store.update_transaction(original.id, status="reversed")
        ctx.response_code = "00"
        return ctx.prepared(self.name, f"#{original.id} reversed")


def _by_id(ctx: Context, txn_id: int) -> TxnRecord | None:
    """The original's own original (a void's sale, a completion's pre-auth)."""
    return ctx.store.transaction(txn_id)
