"""The terminal page's dialect-profile select: acquirer roles only, a reason required, audited,
unknown names refused with nothing changed — and in a real browser."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from posgate.store import schema as s

from .helpers import Env, Live, browser_login, csrf_of, login


def _dialect(env: Env, tid: str) -> str:
    with env.db.engine.connect() as conn:
        return str(
            conn.execute(select(s.terminals.c.dialect).where(s.terminals.c.terminal_id == tid)).scalar_one()
        )


def _audits(env: Env) -> list[Any]:
    with env.db.engine.connect() as conn:
        return list(conn.execute(select(s.audit_log).where(s.audit_log.c.action == "terminal.set_profile")))


def test_support_sets_a_profile_with_a_reason_and_it_is_audited(env: Env) -> None:
    c = login(env.client(), "support")
    page = c.get("/terminals/10000001").text
    assert 'data-testid="profile-select"' in page and "gz-bill" in page
    csrf = csrf_of(c, "/terminals/10000001")

    def post(**f: str) -> Any:
        return c.post("/terminals/10000001/profile", data={"csrf_token": csrf, **f}, follow_redirects=False)

    assert post(profile="gz-bill", reason="").status_code == 303 and _dialect(env, "10000001") == "cup"
    assert post(profile="nope", reason="ticket 7").status_code == 303 and _dialect(env, "10000001") == "cup"
    assert not _audits(env)
    assert post(profile="gz-bill", reason="贵州缴费机型, ticket 8").status_code == 303
    assert _dialect(env, "10000001") == "gz-bill"
    (a,) = _audits(env)
    assert a.actor == "support" and a.object_id == "10000001" and "ticket 8" in (a.detail or "")
    assert "gz-bill" in str(a.after) and "cup" in str(a.before)
    assert 'data-testid="dialect">gz-bill' in c.get("/terminals/10000001").text


@pytest.mark.parametrize("user", ["mart-admin", "mart-clerk"])
def test_merchant_roles_cannot_set_a_profile(env: Env, user: str) -> None:
    c = login(env.client(), user)
    assert 'data-testid="profile-select"' not in c.get("/terminals/10000001").text
    csrf = csrf_of(c, "/password")
    r = c.post("/terminals/10000001/profile", data={"csrf_token": csrf, "profile": "gz-bill", "reason": "x"},
               follow_redirects=False)  # fmt: skip
    assert r.status_code == 403 and _dialect(env, "10000001") == "cup" and not _audits(env)


@pytest.mark.browser
def test_profile_select_in_the_browser(live: Live, page: Any) -> None:
    browser_login(page, live.url, "admin")
    page.goto(f"{live.url}/terminals/10000002")
    page.select_option("[data-testid=profile-select]", "x919")
    page.fill("[data-testid=profile-reason]", "终端固件使用 X9.19 MAC")
    page.click("[data-testid=set-profile]")
    page.wait_for_url(f"{live.url}/terminals/10000002")
    assert page.locator("[data-testid=dialect]").inner_text().startswith("x919")
    with live.env.db.engine.connect() as conn:
        row = conn.execute(
            select(s.terminals.c.dialect).where(s.terminals.c.terminal_id == "10000002")
        ).scalar_one()
    assert row == "x919"
