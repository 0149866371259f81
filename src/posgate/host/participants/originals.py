"""Finding the original of a void, refund, completion, adjustment...: ``25`` when there is no
approved original to act on, ``12`` when it exists but can no longer be acted on (already
voided, reversed, completed, or annulled by a make-up entry), ``64`` when the amount does not fit it.

Also :class:`MarkOriginal`, which writes the original's new status once the request is
approved (same unit of work as the request's own record).
"""

from __future__ import annotations

from collections.abc import Collection

from posgate.domain.masking import mask_pan
from posgate.host.context import Context
from posgate.host.pipeline import Participant
from posgate.host.ports import TxnRecord


def on_terminal(ctx: Context, batch_no: str, stan: str, operations: Collection[str]) -> TxnRecord | None:
    """The processed message on this terminal with that batch + STAN and one of ``operations``."""
    t = ctx.terminal
    assert t is not None
    for r in ctx.store.find_by_stan(t.terminal_id, batch_no, stan):
        if r.mti != "0400" and r.status != "rejected" and r.operation in operations:
            return r
    return None


def mmdd(day: str) -> str:
    """``2024-05-01`` → ``0501`` (61.3)."""
    return day[5:7] + day[8:10]


def adopt_card(ctx: Context, original: TxnRecord) -> bool:
    """Take the card from the original when the request has none; False if the request's card
    is not the original's."""
    if ctx.pan is not None:
        return ctx.pan_hash == original.pan_hash
    if original.pan_enc is not None:
        ctx.pan = ctx.store.decrypt_pan(original.pan_enc)
        ctx.pan_masked = mask_pan(ctx.pan)
    ctx.pan_hash = original.pan_hash
    ctx.pan_masked = ctx.pan_masked or original.pan_masked
    return True


def found(ctx: Context, who: str, original: TxnRecord) -> str:
    if original.id is not None and ctx.store.is_annulled(original.id):
        # Annulled by an approved make-up entry (补登, a new ``annulment`` row in the console's
        # ledger; the original itself is never changed): nothing left to void, refund, complete.
        return ctx.decline(who, "12", f"original #{original.id} was annulled (make-up entry)")
    if not adopt_card(ctx, original):
        return ctx.decline(who, "25", f"card is not the original's (#{original.id})")
    ctx.original = original
    ctx.card_organisation = original.card_organisation
    return ctx.prepared(who, f"original #{original.id}")


class MarkOriginal(Participant):
    """After approval: set the original's status (``voided``, ``completed``...)."""

    def __init__(self, status: str) -> None:
        self.status = status

    def prepare(self, ctx: Context) -> str:
        o = ctx.original
        if o is not None and o.id is not None and ctx.approved:
            ctx.store.update_transaction(o.id, status=self.status)
            return ctx.prepared(self.name, f"#{o.id} {self.status}")
        return ctx.prepared(self.name)
