"""D6 sign-on lapse: a merchant none of whose terminals signed on for ``env.lapse_days``
consecutive calendar days is suspended (``suspended_by = "system:D6"``, audited) until the
acquirer reinstates it.

"Consecutive days without a sign-on" counts whole calendar days strictly between the last
sign-on day and today: last sign-on on the 1st, none on the 2nd, 3rd, 4th → on the 5th the
merchant has lapsed (3 days), on the 4th it has not yet (the 4th is not over) but will the next
day unless a terminal signs on today: the day of the warning.

One rule, three callers: the host's gate (``CheckMerchantActive``, at a terminal's first
message of the day), the daily sweep (:func:`sweep`: ``posgate serve`` at start and at every
local midnight, ``posgate admin sweep`` for cron), and the console's notice. All of them go
through :func:`lapse_state`. A reinstatement (:func:`reinstate_merchant`, the only one: the
console and ``posgate admin merchant reinstate`` both reach it through
``posgate.store.admin.reinstate_merchant``) writes a register entry so that the days count from
the reinstatement.

Pure: the store and ``now`` are given; no clock is read here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal

from posgate.host.context import zone
from posgate.host.ports import HostStore, MerchantRecord, SignOnEntry

ACTOR = "system:D6"

LapseState = Literal["ok", "warn", "lapsed"]


def days_without_sign_on(last_day: str | None, today: str) -> int | None:
    """Whole days strictly between the last sign-on day and today (None: never signed on)."""
    if last_day is None:
        return None
    return (date.fromisoformat(today) - date.fromisoformat(last_day)).days - 1


def lapse_state(last_day: str | None, today: str, lapse_days: int) -> LapseState:
    """``lapsed``: suspend now; ``warn``: today is the last day a sign-on prevents the lapse."""
    gap = days_without_sign_on(last_day, today)
    if gap is None:
        return "ok"  # a merchant that never signed on has nothing to lapse from
    if gap >= lapse_days:
        return "lapsed"
    if gap == lapse_days - 1:
        return "warn"
    return "ok"


def lapsed(last_day: str | None, today: str, lapse_days: int) -> bool:
    return lapse_state(last_day, today, lapse_days) == "lapsed"


def lapse_day(last_day: str, lapse_days: int) -> str:
    """The local day on which a merchant whose last sign-on was ``last_day`` lapses."""
    return (date.fromisoformat(last_day) + timedelta(days=lapse_days + 1)).isoformat()


def local_day(now: datetime, timezone: str) -> str:
    return now.astimezone(zone(timezone)).date().isoformat()


def seconds_to_next_day(now: datetime, timezone: str) -> float:
    """Seconds from ``now`` to the next local midnight in ``timezone`` (when the next sweep is due)."""
    tz = zone(timezone)
    local = now.astimezone(tz)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tz)
    return max(0.0, (midnight - local).total_seconds())


def suspend_for_lapse(store: HostStore, merchant: MerchantRecord, last_day: str | None, now: datetime,
                      lapse_days: int) -> None:  # fmt: skip
    reason = f"no terminal signed on for {lapse_days} consecutive days (last sign-on {last_day})"
    store.update_merchant(merchant.merchant_id, status="suspended", suspended_reason=reason, suspended_at=now,
                          suspended_by=ACTOR)  # fmt: skip
    store.audit(now, ACTOR, "merchant.suspend", "merchant", merchant.merchant_id, merchant.merchant_id,
                before={"status": merchant.status}, after={"status": "suspended"}, detail=reason)  # fmt: skip


def reinstate_merchant(store: HostStore, merchant_id: str, actor: str, reason: str, now: datetime,
                       timezone: str) -> None:  # fmt: skip
    """Lift a suspension: status active, audited, and a register entry of kind ``reinstated``
    so that D6 counts the days without a sign-on from today, not from before the suspension
    (otherwise the merchant would lapse again at its first sign-on)."""
    m = store.merchant(merchant_id)
    if m is None:
        raise KeyError("no such merchant")
    store.update_merchant(merchant_id, status="active", suspended_reason=None, suspended_at=None, suspended_by=None)
    store.audit(now, actor, "merchant.reinstate", "merchant", merchant_id, merchant_id,
                before={"status": m.status}, after={"status": "active"}, detail=reason)  # fmt: skip
    store.record_sign_on(SignOnEntry(at=now, day=local_day(now, timezone), terminal_id="", merchant_id=merchant_id,
                                     kind="reinstated", cause="reinstated", operator=None, device_serial=None,
                                     key_scheme=None, batch_no=None, stan=None, response_code="00",
                                     detail=reason))  # fmt: skip


@dataclass(frozen=True)
class LapseWarning:
    merchant_id: str
    last_day: str  # last sign-on (or reinstatement) day
    lapse_day: str  # the day it lapses unless a terminal signs on before


@dataclass
class SweepResult:
    day: str
    suspended: list[str] = field(default_factory=list)
    warned: list[LapseWarning] = field(default_factory=list)


def sweep(store: HostStore, merchant_ids: Iterable[str], now: datetime, timezone: str, lapse_days: int) -> SweepResult:
    """The daily sweep: suspend every active merchant of ``merchant_ids`` that has lapsed
    today, and list those that lapse tomorrow unless a terminal signs on today (the warning).

    Idempotent: a second run on the same day suspends nothing more (the merchants suspended by
    the first are no longer active) and lists the same warnings. The shell lists the merchants
    (the store has no "all merchants" port)."""
    today = local_day(now, timezone)
    out = SweepResult(today)
    for mid in merchant_ids:
        m = store.merchant(mid)
        if m is None or m.status != "active":
            continue
        last = store.merchant_last_sign_on_day(mid)
        state = lapse_state(last, today, lapse_days)
        if state == "lapsed":
            suspend_for_lapse(store, m, last, now, lapse_days)
            out.suspended.append(mid)
        elif state == "warn":
            assert last is not None
            out.warned.append(LapseWarning(mid, last, lapse_day(last, lapse_days)))
    return out
