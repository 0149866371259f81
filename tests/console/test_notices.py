"""Notices (issue 11): counts in the header's bell and on /notices, scoped to the user's merchant.

Seed (tests/console/helpers.py): Demo Mart has one slip unsigned for three days and terminal
10000002 not signed on today; Demo Bistro has the SM4 terminal 40000001 not signed on today.
"""

from __future__ import annotations

import re
from typing import Any

from posgate.console import notices
from posgate.console.notices import FAILED_PAYOUTS, Notice, count_provider

from .helpers import BISTRO, MART, Env, login
from .test_lapse import _days_ago, _last_sign_on


def _counts(env: Env, user: str, lang: str = "zh_CN") -> tuple[dict[str, int], int, str]:
    c = login(env.client(), user)
    c.get(f"/lang/{lang}")
    html = c.get("/notices").text
    found = {m.group(1): int(m.group(2)) for m in re.finditer(
        r'data-notice="(\w+)"><span class="notice-count" data-testid="notice-count">(\d+)</span>', html)}  # fmt: skip
    bell = re.search(r'data-testid="bell-count">(\d+)<', html)
    return found, int(bell.group(1)) if bell else 0, html


def test_counts_per_role(env: Env) -> None:
    mart, bell, html = _counts(env, "mart-clerk")
    assert mart == {"unsigned": 1, "not_signed_on": 1} and bell == 2
    assert "1 张签购单超过 24 小时未签名" in html and "10000002" in html and "40000001" not in html
    bistro, bell, html = _counts(env, "bistro-admin")
    assert bistro == {"not_signed_on": 1} and bell == 1 and "40000001" in html
    everyone, bell, _html = _counts(env, "support")
    assert everyone == {"unsigned": 1, "not_signed_on": 2} and bell == 3
    _found, _bell, html = _counts(env, "admin", "en")
    assert "2 terminals have not signed on today" in html


def test_nothing_to_say(env: Env) -> None:
    env.app.state.console.settings.unsigned_after_minutes = 10 * 24 * 60
    from sqlalchemy import update

    from posgate.console.fmt import today
    from posgate.store import schema as s

    with env.db.engine.begin() as conn:
        conn.execute(update(s.terminals).values(signed_on_day=today("Asia/Shanghai"), signed_off=False))
    found, bell, html = _counts(env, "mart-clerk")
    assert found == {} and bell == 0 and 'data-testid="no-notices"' in html and 'data-testid="bell-count"' not in html


def test_merchant_one_day_from_suspension(env: Env) -> None:
    _last_sign_on(env, BISTRO, _days_ago(3))  # the sweep's rule: lapses tomorrow
    bistro, _bell, html = _counts(env, "bistro-admin")
    assert bistro["lapsing"] == 1 and BISTRO in html and "明天将被暂停" in html
    mart, _bell, _html = _counts(env, "mart-admin")
    assert "lapsing" not in mart
    assert _counts(env, "support")[0]["lapsing"] == 1


def _unwire_failed_payouts() -> list[Any]:
    """Take the application's own failed-payouts counter (``create_app`` wires the payouts'
    ``count_failed_payouts``) out of the list, so that a test can register its stand-in."""
    wired = [q for q in notices.PROVIDERS if getattr(q, "__name__", None) == "count_failed_payouts"]
    for q in wired:
        notices.PROVIDERS.remove(q)
    return wired


def test_the_application_wires_the_payouts_counter_once(env: Env) -> None:
    names = [getattr(q, "__name__", None) for q in notices.PROVIDERS]
    assert names.count("count_failed_payouts") == 1


def test_a_registered_count_provider_and_a_failing_one(env: Env) -> None:
    asked: list[str | None] = []

    def failed_payouts(conn: Any, merchant_id: str | None) -> int:  # what the payouts part exposes
        asked.append(merchant_id)
        return 2 if merchant_id in (MART, None) else 0

    def broken(conn: Any, p: Any, settings: Any) -> Notice:
        raise RuntimeError("a part that is not ready")

    provider = count_provider("failed_payouts", FAILED_PAYOUTS, "/payouts", failed_payouts)
    wired = _unwire_failed_payouts()  # the application's own counter makes way for this one
    notices.register(provider)
    notices.register(provider)  # once only
    notices.register(broken)
    try:
        assert notices.PROVIDERS.count(provider) == 1
        mart, bell, html = _counts(env, "mart-admin")
        assert mart["failed_payouts"] == 2 and bell == 4 and "2 笔出款失败" in html and 'href="/payouts"' in html
        assert "failed_payouts" not in _counts(env, "bistro-admin")[0]
        assert _counts(env, "support")[0]["failed_payouts"] == 2
        assert set(asked) == {MART, BISTRO, None}  # each user counted for their own merchant, staff for all
    finally:
        notices.PROVIDERS.remove(provider)
        notices.PROVIDERS.remove(broken)
        notices.PROVIDERS.extend(wired)


def test_payouts_link_only_when_the_page_exists(env: Env) -> None:
    c = login(env.client(), "mart-admin")
    assert 'href="/payouts"' not in c.get("/").text

    @env.app.get("/payouts")
    def payouts() -> dict[str, str]:  # stands in for the payouts part's page
        return {}

    html = c.get("/").text
    assert 'data-testid="payouts-link"' in html and 'href="/payouts"' in html
    assert 'href="/payouts"' not in login(env.client(), "mart-clerk").get("/").text  # clerks see no money pages


def test_api_notices(env: Env) -> None:
    from .helpers import api_token

    c = env.client()
    items = c.get("/api/v1/notices", headers=api_token(c, "mart-clerk")).json()
    assert [(i["key"], i["count"], i["href"]) for i in items] == [("unsigned", 1, "/unsigned"), ("not_signed_on", 1, "/terminals")]
    assert items[1]["message"] == "1 terminals have not signed on today" and items[1]["items"] == ["10000002"]
    staff = c.get("/api/v1/notices", headers={**api_token(c, "support"), "Accept-Language": "zh-CN"}).json()
    assert staff[1]["message"] == "2 台终端今天尚未签到"
    assert c.get("/api/v1/notices").status_code == 401


def test_register_failed_payouts_once(env: Env) -> None:
    def count_failed_payouts(session: Any, merchant_id: str | None = None) -> int:  # the payouts part's signature
        return 1 if merchant_id == BISTRO else 0

    wired = _unwire_failed_payouts()
    before = list(notices.PROVIDERS)
    try:
        notices.register_failed_payouts(count_failed_payouts)
        notices.register_failed_payouts(count_failed_payouts)  # wired twice by mistake: still one line
        assert len(notices.PROVIDERS) == len(before) + 1
        assert _counts(env, "bistro-admin")[0]["failed_payouts"] == 1
        assert "failed_payouts" not in _counts(env, "mart-admin")[0]
    finally:
        notices.PROVIDERS[:] = before + wired
