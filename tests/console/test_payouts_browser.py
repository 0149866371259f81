"""The money pages in a real headless Chromium: a settlement-account change approved by a second
person, payouts with their 到账 status (and the dashboard's tile), a same-day payout requested
from the page, the statement page with its PDF (read back with pdftotext) and CSV, and the same
pages on a 390×844 phone screen."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from posgate.console.fmt import day_offset, today
from posgate.store import payouts as po
from posgate.store import schema as s
from posgate.store.payouts_schema import bank_accounts

from .helpers import MART, TZ, Live, browser_login

pytestmark = pytest.mark.browser
NEW_ACCOUNT = "6214830123456789"


def test_bank_account_change_needs_a_second_person(live: Live, page: Any) -> None:
    env = live.env
    browser_login(page, live.url, "mart-admin")
    url = f"{live.url}/merchants/{MART}/bank-account"
    page.goto(url)
    assert page.locator("[data-testid=account-masked]").inner_text() == "1001***********2345"
    form = page.locator("[data-testid=propose-account]")
    form.locator("input[name=bank_name]").fill("招商银行上海分行")
    form.locator("input[name=bank_code]").fill("308290003020")
    form.locator("input[name=account_name]").fill("上海演示便利店有限公司")
    form.locator("input[name=account_number]").fill(NEW_ACCOUNT)
    form.locator("input[name=reason]").fill("更换结算银行")
    form.locator("button").click()
    page.wait_for_url(url)
    assert "须经收单机构另一人审批" in page.locator("[data-testid=flash]").inner_text()
    row = page.locator("[data-testid=account-changes] tr[data-change-id]").first
    assert "6214********6789" in row.inner_text() and "待审批" in row.inner_text()
    assert row.locator("[data-testid=approve-account]").count() == 0  # not the proposer, not a merchant
    assert page.locator("[data-testid=account-masked]").inner_text() == "1001***********2345"  # not yet
    assert NEW_ACCOUNT not in page.content()

    page.context.clear_cookies()
    browser_login(page, live.url, "support")
    page.goto(url)
    page.locator("[data-testid=approve-account]").click()
    page.wait_for_url(url)
    assert "此后出款划入新账户" in page.locator("[data-testid=flash]").inner_text()
    assert page.locator("[data-testid=account-masked]").inner_text() == "6214********6789"
    assert NEW_ACCOUNT not in page.content()
    with env.db.engine.connect() as conn:
        acct = po.active_account(conn, MART)
        assert acct is not None and acct["proposed_by"] == "mart-admin" and acct["decided_by"] == "support"
        blob = conn.execute(select(bank_accounts.c.account_enc).where(bank_accounts.c.id == acct["id"])).scalar_one()
        actions = list(conn.execute(select(s.audit_log.c.action).where(s.audit_log.c.object_type == "bank_account",
                                                                       s.audit_log.c.merchant_id == MART)).scalars())  # fmt: skip
    assert env.db.keyring.decrypt(blob, po.ACCOUNT_PURPOSE).decode() == NEW_ACCOUNT
    assert actions[-2:] == ["bank_account.proposed", "bank_account.approved"]
    page.goto(f"{live.url}/audit")
    assert NEW_ACCOUNT not in page.content() and "已申请变更结算账户" in page.content()


def _paid_out_yesterday(live: Live, outcome: str = "failed") -> dict[str, Any]:
    """T+1 for yesterday's business built, exported and answered by the bank (the CLI's functions)."""
    env = live.env
    with env.db.engine.begin() as conn:
        built = po.build_payouts(conn, today(TZ), actor="cli").built
        r = po.export_payouts(conn, env.db.keyring, today(TZ), actor="cli")
        assert r is not None
        mart = next(p for p in built if p["merchant_id"] == MART)
        amount = f"{mart['amount'] // 100}.{mart['amount'] % 100:02d}"
        po.import_return(conn, f"payout_ref,status,amount,bank_ref,reason\n{po.payout_ref(mart['id'])},{outcome},{amount},B1,户名不符\n"
                         .encode(), actor="cli")  # fmt: skip
    return mart


def test_payouts_page_dashboard_and_retry(live: Live, page: Any) -> None:
    mart = _paid_out_yesterday(live)
    browser_login(page, live.url, "mart-admin")
    tile = page.locator("[data-testid=latest-payout]")
    assert "银行退回" in tile.inner_text() and f"{mart['amount'] // 100}." in tile.inner_text()
    page.goto(f"{live.url}/payouts")
    row = page.locator(f"tr[data-payout-id='{mart['id']}']")
    assert "银行退回" in row.inner_text() and "户名不符" in row.inner_text() and "次日到账" in row.inner_text()
    assert "1 笔出款被银行退回" in page.locator("[data-testid=failed-payouts]").inner_text()
    page.goto(f"{live.url}/payouts/{mart['id']}")
    assert page.locator("[data-testid=retry]").count() == 0  # the acquirer's staff retry
    lines = page.locator("[data-testid=payout-lines] tbody tr").count()
    assert lines == mart["lines"] > 0

    page.context.clear_cookies()
    browser_login(page, live.url, "support")
    page.goto(f"{live.url}/payouts/{mart['id']}")
    page.click("[data-testid=retry]")
    page.wait_for_url(f"{live.url}/payouts/{mart['id']}")
    assert "下一个出款文件" in page.locator("[data-testid=flash]").inner_text()
    assert page.locator("[data-testid=payout-status]").inner_text() == "待出款"
    with live.env.db.engine.connect() as conn:
        assert po.get_payout(conn, mart["id"])["status"] == "pending" and po.count_failed_payouts(conn) == 0


def test_same_day_payout_requested_from_the_page(live: Live, page: Any) -> None:
    env = live.env
    with env.db.engine.begin() as conn:  # terminal 10000001 settles today's batch
        conn.execute(insert(s.settlements).values(
            at=datetime.now(UTC), day=today(TZ), terminal_id="10000001", merchant_id=MART, batch_no="000001", stan="000900",
            terminal_totals={}, host_totals={}, domestic_result="1", foreign_result="1", status="balanced"))  # fmt: skip
        quote = po.d0_quote(conn, MART)
    assert quote["amount"] > 0
    browser_login(page, live.url, "mart-admin")
    page.goto(f"{live.url}/lang/en?next=/payouts")
    assert f"{quote['amount'] // 100}." in page.locator("[data-testid=d0-quote]").inner_text()
    page.click("[data-testid=request-d0]")
    page.wait_for_url("**/payouts?merchant_id=*")
    assert "Same-day payout #" in page.locator("[data-testid=flash]").inner_text()
    assert "Same day (D0)" in page.locator("[data-testid=payout-table]").inner_text()
    assert page.locator("[data-testid=request-d0]").count() == 0  # once a day
    with env.db.engine.connect() as conn:
        d0 = po.latest_payout(conn, MART)
    assert d0 is not None and (d0["kind"], d0["amount"], d0["status"]) == ("d0", quote["amount"], "pending")


def _get(page: Any, url: str) -> bytes:
    r = page.request.get(url)
    assert r.status == 200, (url, r.status)
    return bytes(r.body())


def test_statement_page_pdf_and_csv(live: Live, page: Any, tmp_path: Path) -> None:
    mart = _paid_out_yesterday(live, "paid")
    day = day_offset(today(TZ), -1)
    with live.env.db.engine.connect() as conn:
        st = po.statement(conn, MART, day, day)
    browser_login(page, live.url, "mart-admin")
    page.goto(f"{live.url}/statements?day={day}")
    assert page.locator("[data-testid=statement-lines] tr[data-txn-id]").count() == len(st["lines"]) > 0
    assert "划款至结算账户" in page.locator("[data-testid=statement-payout]").inner_text()
    assert "已到账" in page.locator("[data-testid=statement-payout]").inner_text()
    assert page.locator("[data-testid=paid]").inner_text() == f"−¥{mart['amount'] // 100:,}.{mart['amount'] % 100:02d}"
    assert "6212142000000000012" not in page.content()

    raw = _get(page, f"{live.url}/statements.csv?merchant_id={MART}&day={day}")
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert list(rows[0]) == ["line", "business_day", "time", "terminal_id", "voucher", "reference", "type", "source", "card",
                             "card_kind", "amount", "fee", "net", "payout", "payout_status"]  # fmt: skip
    assert rows[0]["type"] == "期初余额" and rows[-1]["type"] == "期末余额"
    fen = [round(float(r["net"]) * 100) for r in rows]
    assert sum(fen[:-1]) == fen[-1] == st["closing"]  # the rows add up to the closing balance
    payout_rows = [r for r in rows if r["type"] == "划款至结算账户"]
    assert [round(float(r["net"]) * 100) for r in payout_rows] == [-mart["amount"]] and payout_rows[0]["payout_status"] == "已到账"
    assert all(r["card"] == "" or "*" in r["card"] for r in rows) and b"6212142000000000012" not in raw

    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils not installed")
    # CJK runs are in reportlab's STSong-Light, which pdftotext reads only with the Adobe-GB1 pack:
    # the Chinese PDF is checked for its Latin runs (ids, masks, amounts) and its CJK font
    for lang, needles in (("en", ["Daily statement", "Demo Mart", "Payout to the bank account", "Closing balance"]),
                          ("zh_CN", [MART, "1001***********2345"])):  # fmt: skip
        page.goto(f"{live.url}/lang/{lang}?next=/statements")
        pdf = _get(page, f"{live.url}/statements.pdf?merchant_id={MART}&day={day}")
        path = tmp_path / f"statement-{lang}.pdf"
        path.write_bytes(pdf)
        assert b"STSong-Light" in pdf  # Chinese: the labels in zh, the bank's name in both
        text = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout
        for needle in needles:
            assert needle in text, (lang, needle)
        assert "621214*********0012" in text and "6212142000000000012" not in text
        assert f"{mart['amount'] // 100:,}.{mart['amount'] % 100:02d}" in text
    month = _get(page, f"{live.url}/statements.pdf?merchant_id={MART}&month={day[:7]}")
    assert month.startswith(b"%PDF")


@pytest.mark.parametrize("path", ["/payouts", "/statements", f"/merchants/{MART}/bank-account", "/fees", "/payouts/1"])
def test_money_pages_fit_a_phone(live: Live, browser: Any, path: str) -> None:
    _paid_out_yesterday(live)
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True, has_touch=True)
    try:
        page = ctx.new_page()
        page.set_default_timeout(10_000)
        browser_login(page, live.url, "mart-admin")
        page.goto(live.url + path)
        assert page.locator("h1").is_visible()
        # the page itself never scrolls sideways; a wide table scrolls inside its card
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= 390, width
        tables = page.locator("table.grid")
        for i in range(tables.count()):
            box = tables.nth(i).evaluate("t => { const c = t.closest('.card'); return [c.clientWidth, getComputedStyle(c).overflowX] }")
            assert box[0] <= 390 and box[1] == "auto", box
    finally:
        ctx.close()
