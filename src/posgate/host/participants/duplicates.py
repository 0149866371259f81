"""D8 duplicates and STAN reuse, for the operations the host records.

Rules, in order, over the records with this TID + batch (60.2) + STAN:

* same MTI, processed before (status not ``rejected``) and the same request digest → a
  retransmission: the stored reply is sent again, nothing is re-executed and nothing is
  written (vote DONE). The digest is the sha256 of the MAC block (MTI..field 63,
  ``Message.mac_block()``): D8's "identical content" is the content the MAC covers, not the
  MAC itself, so an advice re-sent after a make-up sign-on (same content, a MAC under the new
  MAK) is still a retransmission. When the request's MAC verifies under the current MAK, the
  stored reply's field 64 is recomputed under that MAK (the stored one may be under an older
  key); its content is what was answered the first time;
* same MTI, processed, different content → ``94``, except for a 0400: a repeated reversal
  is answered by the reversal group (D9: same reply, executed once);
* a 0400 already on file for this STAN and the request is its original (0100/0200) → the
  original arrived after its reversal (D9): declined ``12``, never approved;
* another processed message (other MTI) already uses the STAN, and this is not a 0400 → ``94``.

Runs before the sign-on and MAC checks on purpose: a byte-identical retransmission gets the
reply it already had (replaying it reveals nothing new and changes nothing), even if the
terminal's keys changed meanwhile. Its ``94`` and ``12`` are MAC'd when the request's MAC
verifies under the terminal's current MAK (reply.py, R1): a terminal then knows the decline
is authentic and that nothing was executed, so it does not reverse (a reversal of a ``94``
would find the *other* message that holds the STAN).
"""

from __future__ import annotations

from collections.abc import Callable
from hashlib import sha256

from posgate.host.context import Context
from posgate.host.participants.mac import mac_function, request_mac_verifies
from posgate.host.pipeline import Participant


class CheckDuplicate(Participant):
    def prepare(self, ctx: Context) -> str:
        msg, t = ctx.msg, ctx.terminal
        assert msg is not None and t is not None
        if not ctx.record:
            return ctx.prepared(self.name, "not a recorded operation")
        ctx.digest = sha256(msg.mac_block() if msg.raw is not None else ctx.body).hexdigest()
        rows = ctx.store.find_by_stan(t.terminal_id, ctx.batch_no, ctx.stan)
        ctx.siblings = rows
        if not rows:
            return ctx.prepared(self.name)
        mti = msg.mti
        for r in rows:
            if r.mti == mti:
                ctx.previous = r
        prev = ctx.previous
        if prev is not None and prev.status != "rejected":
            if prev.request_digest == ctx.digest and prev.reply:
                stored = ctx.store.open_message(prev.reply)  # sealed at rest (decisions.md S1)
                ctx.replay = stored
                if len(stored) > 16 and request_mac_verifies(ctx):
                    ctx.replay = stored[:6] + remac(stored[6:], mac_function(t))
                ctx.response_code = prev.response_code
                ctx.record = False
                return ctx.done(self.name, f"retransmission of #{prev.id}, stored reply sent")
            if mti != "0400":
                ctx.record = False  # the key is taken: the attempt goes to the audit log
                ctx.store.audit(ctx.now, "host", "duplicate_stan", "terminal", t.terminal_id, t.merchant_id,
                                detail=f"batch {ctx.batch_no} STAN {ctx.stan} MTI {mti}: different content")  # fmt: skip
                ctx.mac_ok = request_mac_verifies(ctx)
                return ctx.decline(self.name, "94", f"STAN reused with different content (#{prev.id})")
        if mti == "0400":
            return ctx.prepared(self.name, "reversal")
        for r in rows:
            if r.mti == mti or r.status == "rejected":
                continue
            ctx.mac_ok = request_mac_verifies(ctx)
            if r.mti == "0400":
                return ctx.decline(self.name, "12", f"reversed before it arrived (D9, #{r.id})")
            return ctx.decline(self.name, "94", f"STAN already used by {r.mti} #{r.id}")
        return ctx.prepared(self.name)


def remac(body: bytes, mac: Callable[[bytes], bytes]) -> bytes:
    """``body`` (a reply: 2-byte MTI, 8-byte primary bitmap, fields) with field 64 set to
    ``mac`` of its MAC block: replaced when present, added (bit 64 set) when not."""
    if body[9] & 0x01:
        mab = body[:-8]
    else:
        mab = body[:9] + bytes((body[9] | 0x01,)) + body[10:]
    return mab + mac(mab)
