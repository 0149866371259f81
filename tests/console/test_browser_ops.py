"""What the pages say agrees with what the back end does (real headless Chromium).

* An annulment is a new ``annulment`` row; the original is untouched and shown as annulled by
  that row. Closing a difference writes no ledger row, and the page does not claim one.
* A merchant that lapses tomorrow (D6) is announced on the dashboard of its users and support.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest

from posgate.console.fmt import today

from .helpers import BISTRO, TZ, Live, api_token, browser_login, txn_row
from .test_lapse import _days_ago, _last_sign_on

pytestmark = pytest.mark.browser


def _approve(page: Any, url: str) -> str:
    page.goto(url)
    page.click("[data-testid=approve]")
    page.wait_for_url(url)
    return str(page.locator("[data-testid=flash]").inner_text())


def test_annulment_and_closed_difference_say_what_the_ledger_did(live: Live, page: Any) -> None:
    env = live.env
    c = env.client()
    admin = api_token(c, "mart-admin")
    orig_id = env.ids.mart_sale_for_refund
    annul = c.post("/api/v1/makeup-entries", headers=admin, json={"kind": "annul", "original_id": orig_id,
                                                                  "reason": "test sale"}).json()  # fmt: skip
    close = c.post("/api/v1/makeup-entries", headers=admin, json={"kind": "close_difference", "reason": "explained",
                                                                  "difference_id": env.ids.difference_id}).json()  # fmt: skip
    before = dict(txn_row(env.db, orig_id))

    browser_login(page, live.url, "support")  # zh-CN
    page.goto(f"{live.url}/makeup")
    assert "关闭差错不新增记录" in page.content() and "原记录不会被修改或删除" in page.content()
    flash = _approve(page, f"{live.url}/makeup/{annul['id']}")
    m = re.search(r"账上新增记录 #(\d+)，原记录未变动", flash)
    assert m, flash
    new_id = int(m.group(1))
    assert txn_row(env.db, new_id)["operation"] == "annulment" and txn_row(env.db, new_id)["original_id"] == orig_id
    assert dict(txn_row(env.db, orig_id)) == before  # the original row is untouched
    page.goto(f"{live.url}/transactions/{orig_id}")
    assert f"#{new_id}" in page.locator("[data-testid=annulled-by]").inner_text()
    assert "已被补登记录撤销" in page.locator("[data-testid=annulled-by]").inner_text()

    flash = _approve(page, f"{live.url}/makeup/{close['id']}")
    assert "差错已关闭，账务未变动" in flash and "新增" not in flash

    page.goto(f"{live.url}/lang/en")
    page.goto(f"{live.url}/makeup")
    assert "closing a difference adds none" in page.content()
    page.goto(f"{live.url}/transactions/{orig_id}")
    assert f"annulled by make-up record #{new_id}" in page.locator("[data-testid=annulled-by]").inner_text()


def test_approval_message_in_english(live: Live, page: Any) -> None:
    env = live.env
    c = env.client()
    close = c.post("/api/v1/makeup-entries", headers=api_token(c, "mart-admin"), json={
        "kind": "close_difference", "reason": "explained", "difference_id": env.ids.difference_id}).json()  # fmt: skip
    browser_login(page, live.url, "support")
    page.goto(f"{live.url}/lang/en")
    flash = _approve(page, f"{live.url}/makeup/{close['id']}")
    assert flash == "Approved: the difference is closed; the ledger is unchanged."


def test_lapse_warning_on_the_dashboard(live: Live, page: Any, browser: Any) -> None:
    _last_sign_on(live.env, BISTRO, _days_ago(3))  # no sign-on for 2 whole days: lapses tomorrow
    tomorrow = (date.fromisoformat(today(TZ)) + timedelta(days=1)).isoformat()
    browser_login(page, live.url, "bistro-admin")
    warning = page.locator("[data-testid=lapse-warning]")
    assert warning.count() == 1
    text = warning.inner_text()
    assert BISTRO in text and tomorrow in text and "暂停" in text
    ctx = browser.new_context(viewport={"width": 1360, "height": 900})
    other = ctx.new_page()
    browser_login(other, live.url, "mart-admin")  # another merchant's users do not see it
    assert other.locator("[data-testid=lapse-warning]").count() == 0
    browser_login(other, live.url, "support")
    other.goto(f"{live.url}/lang/en")
    other.goto(f"{live.url}/")
    assert f"will be suspended on {tomorrow} unless a terminal signs on today" in other.locator(
        "[data-testid=lapse-warning]").inner_text()  # fmt: skip
    ctx.close()
