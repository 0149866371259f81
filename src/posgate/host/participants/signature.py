"""E-signature upload (3.13, D12, D13): 0820 with 60 = 07 + batch + 800, field 62 the JBIG1
image (≤ 999 bytes), 55 the receipt TLV, 11 the *original* transaction's STAN, 37 its RRN.

The image and the TLV are stored with :meth:`insert_signature` and the original is marked
``signed``. ``25`` when no approved transaction of this terminal matches (batch + STAN, and
the RRN when sent). A second upload for a transaction already signed is answered ``00``
without storing the image again (a retry after a lost reply).
"""

from __future__ import annotations

from posgate.host.context import Context
from posgate.host.pipeline import Participant
from posgate.host.ports import SignatureRecord

SIGNABLE = frozenset({"sale", "preauth", "completion", "void", "refund", "completion_void", "preauth_void",
                      "completion_advice", "offline_settlement", "settlement_adjust", "tip_adjust"})  # fmt: skip


class StoreSignature(Participant):
    def prepare(self, ctx: Context) -> str:
        msg, t = ctx.msg, ctx.terminal
        assert msg is not None and t is not None
        rrn = msg.text(37)
        original = None
        for r in ctx.store.find_by_stan(t.terminal_id, ctx.batch_no, ctx.stan):
            if r.operation in SIGNABLE and r.response_code == "00" and (not rrn or r.rrn == rrn):
                original = r
                break
        if original is None or original.id is None:
            return ctx.decline(self.name, "25", "no approved transaction with that batch and STAN")
        ctx.original = original
        if original.signed:
            ctx.response_code = "00"
            return ctx.prepared(self.name, f"#{original.id} already signed")
        jbig = msg.data(62)
        tlv = msg.data(55)
        ctx.store.insert_signature(SignatureRecord(
            transaction_id=original.id, at=ctx.now, source="terminal", jbig=jbig, png=None, width=None,
            height=None, receipt_tlv=tlv,
        ))  # fmt: skip
        ctx.store.update_transaction(original.id, signed=True)
        ctx.response_code = "00"
        return ctx.prepared(self.name, f"#{original.id} signed ({len(jbig or b'')} bytes JBIG)")
