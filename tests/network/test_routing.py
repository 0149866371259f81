"""The routing table and the stand-in decision (sans-IO)."""

from __future__ import annotations

import pytest

from posgate.network.routing import Route, RouteError, RouteTable, StandInLimit, check_route, stand_in


def test_priority_then_the_narrowest_range_wins():
    t = RouteTable([Route(1, "62", "62", "wide"), Route(2, "621214", "621214", "narrow"),
                    Route(3, "620000", "629999", "range"), Route(4, "4", "4", "visa", "foreign", priority=-1),
                    Route(5, "6217", "6217", "pinned", priority=9)])  # fmt: skip
    assert t.route("6212142000000000012").target == "narrow"
    assert t.route("6225880000000000010").target == "range"
    assert t.route("6217000000000000020").target == "pinned"
    assert t.route("6011000000000004") is None
    assert t.route("4761730000000011").target == "visa"
    assert RouteTable().route("6212142000000000012") is None


def test_a_short_pan_does_not_match_a_longer_range():
    assert not Route(1, "62121420000", "62121420000", "x").matches("6212")


@pytest.mark.parametrize(("low", "high", "target", "kind"), [
    ("", None, "x", "debit"), ("62a", None, "x", "debit"), ("62", "6", "x", "debit"), ("63", "62", "x", "debit"),
    ("62", None, "", "debit"), ("62", None, "a b", "debit"), ("62", None, "x", "gold"),
])
def test_bad_routes_are_refused(low, high, target, kind):
    with pytest.raises(RouteError):
        check_route(low, high, target, kind)


def test_stand_in_limits_per_kind_merchant_and_card_day():
    limits = [StandInLimit("debit", None, 10_000, 15_000), StandInLimit("debit", "898100012340002", 1_000)]
    assert stand_in("debit", 10_000, "debit", "898100012340001", limits, 0)[0]
    assert not stand_in("debit", 10_001, "debit", "898100012340001", limits, 0)[0]
    assert not stand_in("debit", 6_000, "debit", "898100012340001", limits, 10_000)[0]  # 24 h total
    assert not stand_in("debit", 2_000, "debit", "898100012340002", limits, 0)[0]  # the merchant's own limit
    assert not stand_in("debit", 100, "credit", "898100012340001", limits, 0)[0]  # no limit for the kind
    assert not stand_in("hold", 100, "debit", "898100012340001", limits, 0)[0]  # sales only
