"""The clearing pages in a real headless Chromium: the support desk proposes, a second person
approves, the ledger gets the adjustment and the merchant's statement counts it; nobody
approves their own proposal; merchants do not see the pages."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from clearing.seed import MART, import_day
from posgate.console.fmt import today, yuan
from posgate.console.settlement import statement
from posgate.store import clearing_schema as cs

from .helpers import TZ, Env, Live, browser_login, csrf_of, login, txn_row

pytestmark = pytest.mark.browser


def _diff_id(env: Env, kind: str) -> int:
    with env.db.engine.connect() as conn:
        return int(
            conn.execute(
                select(cs.clearing_differences.c.id).where(cs.clearing_differences.c.kind == kind)
            ).scalar_one()
        )


def test_propose_and_approve_in_the_browser(live: Live, page: Any, browser: Any) -> None:
    env = live.env
    import_day(env.db)
    diff = _diff_id(env, "amount_mismatch")
    with env.db.engine.connect() as conn:
        before = statement(conn, MART, today(TZ), TZ)["gross"]

    browser_login(page, live.url, "support")  # zh-CN
    page.goto(f"{live.url}/clearing")
    files = page.locator("[data-testid=clearing-files] tbody tr")
    assert files.count() == 1
    assert files.locator("[data-outcome=matched]").inner_text() == "2"
    assert files.locator("[data-outcome=missing_theirs]").inner_text() == "1"
    page.select_option("select[name=kind]", "amount_mismatch")
    page.click("[data-testid=clearing-filter] button")
    rows = page.locator("[data-testid=clearing-differences] tbody tr")
    assert rows.count() == 1 and "金额不符" in rows.inner_text() and "+5.00" in rows.inner_text()
    rows.locator("a").click()
    page.wait_for_url(f"{live.url}/clearing/differences/{diff}")
    assert "补登调整" in page.locator("[data-testid=diff-effect]").inner_text()
    page.fill("textarea[name=note]", "签购单金额为 55.00")
    page.click("[data-testid=propose]")
    page.wait_for_url(f"{live.url}/clearing/differences/{diff}")
    assert "须由另一人批准" in page.locator("[data-testid=flash]").inner_text()
    assert page.locator("[data-testid=approve]").count() == 0  # not for the maker
    assert "不能批准自己" in page.locator("[data-testid=await-second]").inner_text()

    ctx = browser.new_context(viewport={"width": 1360, "height": 900}, locale="en")
    checker = ctx.new_page()
    browser_login(checker, live.url, "admin")
    checker.goto(f"{live.url}/lang/en?next=/clearing/differences/{diff}")
    assert checker.locator("[data-testid=diff-kind]").inner_text() == "Amounts differ"
    checker.click("[data-testid=approve]")
    checker.wait_for_url(f"{live.url}/clearing/differences/{diff}")
    flash = checker.locator("[data-testid=flash]").inner_text()
    m = re.search(r"new record #(\d+); merchant settlement counts it", flash)
    assert m, flash
    new_id = int(m.group(1))
    assert checker.locator("[data-testid=diff-status]").inner_text() == "Resolved"
    assert checker.locator("[data-testid=result-link]").inner_text() == f"#{new_id}"
    ctx.close()

    row = txn_row(env.db, new_id)
    assert (row["operation"], row["amount"], row["source"], row["merchant_id"]) == (
        "adjustment",
        5_00,
        "clearing",
        MART,
    )
    with env.db.engine.connect() as conn:
        after = statement(conn, MART, today(TZ), TZ)["gross"]
    assert after - before == 5_00  # the merchant's statement of the approval day counts the adjustment
    page.goto(f"{live.url}/settlement/statements/{MART}/{today(TZ)}")
    assert f"¥{yuan(after)}" in page.locator("main").inner_text()
    page.goto(f"{live.url}/transactions/{new_id}")
    assert "日终清算" in page.locator("dl.kv").inner_text()  # the source, as a word


def test_same_user_cannot_approve_and_merchants_are_kept_out(env: Env) -> None:
    import_day(env.db)
    diff = _diff_id(env, "missing_theirs")
    c = login(env.client(), "support")
    token = csrf_of(c, f"/clearing/differences/{diff}")
    r = c.post(f"/clearing/differences/{diff}/propose", data={"csrf_token": token, "action": "follow_network",
                                                               "note": "not in the network's file"}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    r = c.post(f"/clearing/differences/{diff}/approve", data={"csrf_token": token}, follow_redirects=True)
    assert "不能审批自己提交的申请" in r.text
    with env.db.engine.connect() as conn:
        status = conn.execute(
            select(cs.clearing_differences.c.status).where(cs.clearing_differences.c.id == diff)
        ).scalar_one()
    assert status == "proposed"
    r = c.post(f"/clearing/differences/{diff}/approve", data={}, follow_redirects=False)
    assert r.status_code == 403  # no CSRF token
    for user in ("mart-admin", "mart-clerk"):
        m = login(env.client(), user)
        assert m.get("/clearing").status_code == 403
        assert m.get(f"/clearing/differences/{diff}").status_code == 403
    assert login(env.client(), "support").get("/clearing/differences/999").status_code == 404
