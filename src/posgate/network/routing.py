"""Routing by BIN range and the stand-in (STIP) decision, sans-IO.

A route sends a PAN whose first ``len(bin_low)`` digits lie in ``[bin_low, bin_high]`` to its
``target``: ``"issuer"`` (the built-in issuer) or an upstream link's name. The highest
``priority`` wins; among equals, the longest (most specific) range, then the lowest id. No
route matches → the built-in issuer, so a host without routes works as it always did.

Stand-in: while a link is unreachable the acquirer may approve a *debit* (sale) itself, within
the limits of the card kind (and merchant): ``max_amount`` per transaction and ``daily_max``
for the card's approved debits of the last 24 hours, this one included. Risk rules have run
already (``CheckRisk`` precedes the issuer in the pipeline). Anything else declines ``92``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

BUILTIN = "issuer"
CARD_KINDS = ("debit", "credit", "foreign", "qr")
UNREACHABLE = "92"  # 发卡方线路异常: issuer or institution not reachable


class RouteError(ValueError):
    """A route that cannot be added (bad range, unknown kind...); nothing was changed."""


@dataclass(frozen=True, slots=True)
class Route:
    id: int
    bin_low: str
    bin_high: str
    target: str
    card_kind: str = "debit"
    priority: int = 0

    def matches(self, pan: str) -> bool:
        head = pan[: len(self.bin_low)]
        return len(head) == len(self.bin_low) and self.bin_low <= head <= self.bin_high


def check_route(bin_low: str, bin_high: str | None, target: str, card_kind: str) -> tuple[str, str]:
    """Validate a new route's values; returns (bin_low, bin_high). ``bin_high`` None: a prefix."""
    high = bin_low if bin_high in (None, "") else str(bin_high)
    if not (bin_low.isascii() and bin_low.isdigit() and 1 <= len(bin_low) <= 19):
        raise RouteError("the BIN range's low end must be 1 to 19 digits")
    if not (high.isascii() and high.isdigit()) or len(high) != len(bin_low):
        raise RouteError("the BIN range's two ends must be digits of the same length")
    if high < bin_low:
        raise RouteError("the BIN range's high end is below its low end")
    if not target or len(target) > 32 or not all(ch.isalnum() or ch in "-_" for ch in target):
        raise RouteError("the target is 'issuer' or a link name (letters, digits, - and _)")
    if card_kind not in CARD_KINDS:
        raise RouteError(f"the card kind is one of {', '.join(CARD_KINDS)}")
    return bin_low, high


class RouteTable:
    def __init__(self, routes: Iterable[Route] = ()) -> None:
        self.routes: tuple[Route, ...] = tuple(
            sorted(routes, key=lambda r: (-r.priority, -len(r.bin_low), int(r.bin_high) - int(r.bin_low), r.id))
        )

    def route(self, pan: str) -> Route | None:
        for r in self.routes:
            if r.matches(pan):
                return r
        return None


@dataclass(frozen=True, slots=True)
class StandInLimit:
    card_kind: str
    merchant_id: str | None
    max_amount: int
    daily_max: int | None = None


def stand_in(kind: str, amount: int, card_kind: str, merchant_id: str, limits: Sequence[StandInLimit],
             card_total_24h: int) -> tuple[bool, str]:  # fmt: skip
    """May the acquirer approve this request itself? (approved, why) — the why goes in the trace."""
    if kind != "debit":
        return False, f"no stand-in for {kind}"
    own = [lim for lim in limits if lim.card_kind == card_kind and lim.merchant_id == merchant_id]
    rule = own[0] if own else next((lim for lim in limits if lim.card_kind == card_kind and not lim.merchant_id), None)
    if rule is None:
        return False, f"no stand-in limit for {card_kind} cards"
    if amount > rule.max_amount:
        return False, f"{amount} fen over the stand-in limit {rule.max_amount}"
    if rule.daily_max is not None and card_total_24h + amount > rule.daily_max:
        return False, f"the card's 24 h total {card_total_24h + amount} fen over {rule.daily_max}"
    return True, f"stand-in within {rule.max_amount} fen"
