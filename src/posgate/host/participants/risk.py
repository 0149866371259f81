"""Fraud rules (盗刷 controls) from ``store.risk_rules()`` (enabled rules only), every hit
recorded with ``record_risk_hit``; the rule's response code is the decline.

Rule kinds and params:

* ``card_velocity`` ``{"count": N, "minutes": M}`` — this would be the card's N+1-th approved
  debit within M minutes (typically ``65``);
* ``card_amount`` ``{"max_amount": fen, "minutes": M}`` — the card's approved debits within M
  minutes plus this amount exceed the limit; without ``minutes`` a per-transaction limit
  (typically ``61``);
* ``merchant_amount`` ``{"max_amount": fen}`` — the merchant's approved debits today plus this
  amount exceed the limit (typically ``61``).

Any rule may carry ``"merchant_id"`` to apply to one merchant only.
"""

from __future__ import annotations

from datetime import timedelta

from posgate.host.context import Context
from posgate.host.pipeline import Participant


class CheckRisk(Participant):
    def prepare(self, ctx: Context) -> str:
        t = ctx.terminal
        assert t is not None
        rules = ctx.store.risk_rules()
        if not rules:
            return ctx.prepared(self.name, "no rules")
        amount = ctx.amount
        for rule in rules:
            p = rule.params
            scope = p.get("merchant_id")
            if scope and scope != t.merchant_id:
                continue
            detail = None
            if rule.kind == "card_velocity" and ctx.pan_hash:
                since = ctx.now - timedelta(minutes=int(p.get("minutes", 60)))
                count, _ = ctx.store.card_activity(ctx.pan_hash, since)
                if count + 1 > int(p["count"]):
                    detail = f"card: {count + 1} debits within {p.get('minutes', 60)} min (max {p['count']})"
            elif rule.kind == "card_amount" and ctx.pan_hash:
                limit = int(p["max_amount"])
                if "minutes" in p:
                    _, total = ctx.store.card_activity(ctx.pan_hash, ctx.now - timedelta(minutes=int(p["minutes"])))
                    if total + amount > limit:
                        detail = f"card: {total + amount} fen within {p['minutes']} min (max {limit})"
                elif amount > limit:
                    detail = f"card: {amount} fen in one transaction (max {limit})"
            elif rule.kind == "merchant_amount":
                limit = int(p["max_amount"])
                total = ctx.store.merchant_activity(t.merchant_id, ctx.day)
                if total + amount > limit:
                    detail = f"merchant: {total + amount} fen today (max {limit})"
            if detail is not None:
                ctx.store.record_risk_hit(rule.id, ctx.now, t.terminal_id, t.merchant_id, ctx.pan_masked, amount,
                                          f"{rule.kind}: {detail}")  # fmt: skip
                return ctx.decline(self.name, rule.response_code, f"rule {rule.id} {rule.kind}")
        return ctx.prepared(self.name)
