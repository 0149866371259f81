"""Notices: what wants a person's attention, counted for the header's bell and the notices page.

A notice comes from a *provider*: a function ``(conn, principal, settings) -> Notice | None``
(None or a zero count: nothing to say). :data:`PROVIDERS` holds the built-in ones — slips left
unsigned past ``unsigned_after_minutes``, terminals not signed on today, merchants one day from
suspension (the lapse sweep's own rule, :func:`posgate.store.admin.lapse_warnings`) — and
:func:`register` adds another part's. :func:`count_provider` turns a plain counter such as the
payouts part's ``count_failed_payouts(conn, merchant_id=None)`` into a provider, and
:func:`register_failed_payouts` does just that for it::

    notices.register_failed_payouts(count_failed_payouts)

Merchant roles see their own merchant's notices; the acquirer's staff see everybody's.
A provider that fails is skipped (logged), so one broken part never takes the console down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, func, or_, select

from posgate.console.auth import Principal
from posgate.console.fmt import today, utcnow
from posgate.console.ledger import scope, unsigned_clause
from posgate.store.admin import lapse_warnings
from posgate.store.schema import merchants, terminals, transactions

log = logging.getLogger(__name__)


def _(msgid: str) -> str:
    """Marks a message id for the catalogue; the page translates it (with ``{n}``)."""
    return msgid


UNSIGNED = _("{n} slips unsigned for more than {hours} hours")
NOT_SIGNED_ON = _("{n} terminals have not signed on today")
LAPSING = _("{n} merchants will be suspended tomorrow unless a terminal signs on today")
FAILED_PAYOUTS = _("{n} payouts failed")


@dataclass(frozen=True)
class Notice:
    key: str  # unsigned | not_signed_on | lapsing | failed_payouts | another part's key
    count: int
    message: str  # an English msgid with {n} (and the fields in ``fields``)
    href: str  # where to act on it
    fields: dict[str, Any] = field(default_factory=dict)
    items: tuple[str, ...] = ()  # what the count is made of (terminal ids, merchant ids), when short


Provider = Callable[[Connection, Principal, Any], "Notice | None"]


def merchant_scope(p: Principal) -> str | None:
    """The merchant a provider counts for: the user's own, or None (all) for the acquirer's staff."""
    return None if p.is_acquirer else (p.merchant_id or "-")


def unsigned_overdue(conn: Connection, p: Principal, settings: Any) -> Notice:
    minutes = int(settings.unsigned_after_minutes)
    T = transactions.c  # noqa: N806
    n = conn.execute(select(func.count()).select_from(transactions).where(
        unsigned_clause(), scope(T.merchant_id, p), T.created_at <= utcnow() - timedelta(minutes=minutes))).scalar_one()  # fmt: skip
    return Notice("unsigned", int(n), UNSIGNED, "/unsigned", {"hours": f"{minutes / 60:g}"})


def terminals_not_signed_on(conn: Connection, p: Principal, settings: Any) -> Notice:
    """Active terminals of active merchants that have not signed on today (or signed off since)."""
    day = today(settings.timezone)
    tc, mc = terminals.c, merchants.c
    ids = [r[0] for r in conn.execute(
        select(tc.terminal_id).join_from(terminals, merchants, tc.merchant_pk == mc.id)
        .where(scope(mc.merchant_id, p), tc.status == "active", mc.status == "active",
               or_(tc.signed_on_day.is_(None), tc.signed_on_day != day, tc.signed_off.is_(True)))
        .order_by(tc.terminal_id))]  # fmt: skip
    return Notice("not_signed_on", len(ids), NOT_SIGNED_ON, "/terminals", items=tuple(ids[:20]))


def lapsing_merchants(conn: Connection, p: Principal, settings: Any) -> Notice:
    mid = merchant_scope(p)
    warnings = lapse_warnings(conn, None if mid is None else [mid])
    return Notice("lapsing", len(warnings), LAPSING, "/terminals", items=tuple(w.merchant_id for w in warnings))


def count_provider(key: str, message: str, href: str, count: Callable[[Connection, str | None], int]) -> Provider:
    """A provider from a counter ``count(conn, merchant_id_or_None) -> int``."""

    def provide(conn: Connection, p: Principal, settings: Any) -> Notice:
        return Notice(key, int(count(conn, merchant_scope(p))), message, href)

    provide.__name__ = f"count_{key}"
    return provide


PROVIDERS: list[Provider] = [unsigned_overdue, terminals_not_signed_on, lapsing_merchants]


def register(provider: Provider) -> None:
    """Add a provider (once: the same function, or another of the same name, changes nothing)."""
    name = getattr(provider, "__name__", None)
    if provider not in PROVIDERS and not any(getattr(q, "__name__", None) == name for q in PROVIDERS):
        PROVIDERS.append(provider)


def register_failed_payouts(count_failed_payouts: Callable[..., int]) -> None:
    """The payouts part's counter ``count_failed_payouts(conn, merchant_id=None) -> int`` as the
    "failed payouts" notice, linking to ``/payouts`` (one call where the application is built)."""
    register(count_provider("failed_payouts", FAILED_PAYOUTS, "/payouts",
                            lambda conn, mid: count_failed_payouts(conn, merchant_id=mid)))  # fmt: skip


def collect(conn: Connection, p: Principal, settings: Any, providers: list[Provider] | None = None) -> list[Notice]:
    """Every provider's notice with a count above zero, in the providers' order."""
    out: list[Notice] = []
    for provide in PROVIDERS if providers is None else providers:
        try:
            n = provide(conn, p, settings)
        except Exception:  # noqa: BLE001 - one part's failure must not hide the others' notices
            log.exception("notice provider %s failed", getattr(provide, "__name__", provide))
            continue
        if n is not None and n.count > 0:
            out.append(n)
    return out


def total(state: Any, p: Principal) -> int:
    """The bell's number: the sum of all counts for this user."""
    with state.db.read() as conn:
        return sum(n.count for n in collect(conn, p, state.settings))
