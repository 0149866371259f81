"""D6 sign-on lapse: a merchant none of whose terminals signed on for ``env.lapse_days``
consecutive calendar days is suspended (``suspended_by = "system:D6"``, audited) until the
acquirer reinstates it.

"Consecutive days without a sign-on" counts whole calendar days strictly between the last
sign-on day and today: last sign-on on the 1st, none on the 2nd, 3rd, 4th → on the 5th the
merchant has lapsed (3 days), on the 4th it has not yet (the 4th is not over). A merchant that
never signed on has nothing to lapse from.
"""

from __future__ import annotations

from datetime import date, datetime

from posgate.host.context import zone
from posgate.host.ports import Env, HostStore, MerchantRecord, SignOnEntry

ACTOR = "system:D6"


def lapsed(last_day: str | None, today: str, lapse_days: int) -> bool:
    if last_day is None:
        return False
    gap = (date.fromisoformat(today) - date.fromisoformat(last_day)).days - 1
    return gap >= lapse_days


def suspend_for_lapse(store: HostStore, merchant: MerchantRecord, last_day: str | None, now: datetime,
                      lapse_days: int) -> None:  # fmt: skip
    reason = f"no terminal signed on for {lapse_days} consecutive days (last sign-on {last_day})"
    store.update_merchant(merchant.merchant_id, status="suspended", suspended_reason=reason, suspended_at=now,
                          suspended_by=ACTOR)  # fmt: skip
    store.audit(now, ACTOR, "merchant.suspend", "merchant", merchant.merchant_id, merchant.merchant_id,
                before={"status": merchant.status}, after={"status": "suspended"}, detail=reason)  # fmt: skip


def reinstate_merchant(store: HostStore, merchant_id: str, actor: str, reason: str, env: Env) -> None:
    """Lift a suspension (console or CLI): status active, audited, and a register entry of kind
    ``reinstated`` so that D6 counts the days without a sign-on from today, not from before the
    suspension (otherwise the merchant would lapse again at its first sign-on)."""
    now = env.now()
    today = now.astimezone(zone(env.timezone)).date().isoformat()
    m = store.merchant(merchant_id)
    if m is None:
        raise KeyError("no such merchant")
    store.update_merchant(merchant_id, status="active", suspended_reason=None, suspended_at=None, suspended_by=None)
    store.audit(now, actor, "merchant.reinstate", "merchant", merchant_id, merchant_id,
                before={"status": m.status}, after={"status": "active"}, detail=reason)  # fmt: skip
    store.record_sign_on(SignOnEntry(at=now, day=today, terminal_id="", merchant_id=merchant_id, kind="reinstated",
                                     cause="reinstated", operator=None, device_serial=None, key_scheme=None,
                                     batch_no=None, stan=None, response_code="00", detail=reason))  # fmt: skip


def sweep_lapsed_merchants(store: HostStore, env: Env, merchant_ids: list[str]) -> list[str]:
    """Suspend every active merchant of ``merchant_ids`` that has lapsed; returns those suspended.

    For a periodic job (the shell lists the merchants; the store has no "all merchants" port)."""
    now = env.now()
    today = now.astimezone(zone(env.timezone)).date().isoformat()
    out = []
    for mid in merchant_ids:
        m = store.merchant(mid)
        if m is None or m.status != "active":
            continue
        last = store.merchant_last_sign_on_day(mid)
        if lapsed(last, today, env.lapse_days):
            suspend_for_lapse(store, m, last, now, env.lapse_days)
            out.append(mid)
    return out
