"""Scan-to-pay in the console (docs/decisions.md Q1–Q4): the transactions list names the payment
method (bank card, or the QR wallet), filters by it, in zh-CN and English; a QR payment never asks
for a signature; its receipt names the wallet and masks the code."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from posgate.store import schema as s

from .helpers import MART, Env, Live, _txn, api_token, browser_login, login

UNIONPAY, WECHAT, ALIPAY = "6288000000000000011", "134567890123456789", "281234567890123456"


def seed_qr(env: Env) -> dict[str, int]:
    ids = {}
    with env.db.engine.begin() as conn:
        for n, code in enumerate((UNIONPAY, WECHAT, ALIPAY)):
            tid = _txn(conn, env.db.keyring, tid="10000001", mid=MART, stan=f"0009{n:02d}", amount=1200 + n, pan=code)
            conn.execute(update(s.transactions).where(s.transactions.c.id == tid).values(entry_mode="032"))
            ids[code] = tid
    return ids


def test_list_shows_and_filters_the_payment_method_in_both_languages(env: Env) -> None:
    seed_qr(env)
    c = login(env.client(), "admin")
    c.cookies.set("posgate_lang", "zh_CN")
    html = c.get("/transactions", params={"method": "qr"}).text
    for wallet, masked in (("银联二维码", "628800*********0011"), ("微信支付", "134567********6789"),
                           ("支付宝", "281234********3456")):  # fmt: skip
        assert wallet in html and masked in html
    assert "621214*********0012" not in html  # the cards are filtered out
    assert UNIONPAY not in html and WECHAT not in html
    assert "支付方式" in html
    cards = c.get("/transactions", params={"method": "card"}).text
    assert "621214*********0012" in cards and "628800*********0011" not in cards and "银行卡" in cards
    c.cookies.set("posgate_lang", "en")
    en = c.get("/transactions", params={"method": "wechat"}).text
    assert "WeChat Pay" in en and "134567********6789" in en and "628800*********0011" not in en
    assert "Payment method" in en


def test_api_gives_the_payment_method_and_qr_sales_are_never_unsigned(env: Env) -> None:
    ids = seed_qr(env)
    c = env.client()
    h = api_token(c, "admin")
    items = c.get("/api/v1/transactions", params={"method": "alipay"}, headers=h).json()
    assert [i["id"] for i in items] == [ids[ALIPAY]] and items[0]["payment_method"] == "alipay"
    unsigned = {i["id"] for i in c.get("/api/v1/transactions", params={"unsigned": "true"}, headers=h).json()}
    assert env.ids.mart_unsigned in unsigned and not unsigned & set(ids.values())


def test_receipt_of_a_qr_payment_names_the_wallet_without_a_signature_line(env: Env) -> None:
    ids = seed_qr(env)
    c = login(env.client(), "admin")
    detail = c.get(f"/transactions/{ids[UNIONPAY]}")
    assert detail.status_code == 200 and UNIONPAY not in detail.text
    pdf = c.get(f"/transactions/{ids[UNIONPAY]}/receipt.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF") and UNIONPAY.encode() not in pdf.content


@pytest.mark.browser
def test_browser_filters_qr_payments_by_wallet(live: Live, page: Any) -> None:
    seed_qr(live.env)
    browser_login(page, live.url, "mart-clerk")
    page.click("nav.side a[href='/transactions']")
    page.select_option("[data-testid=method-filter]", "wechat")
    page.click("form.filters button[type=submit]")
    rows = page.locator("[data-testid=txn-table] tbody tr[data-txn-id]")
    assert rows.count() == 1
    assert rows.first.locator("[data-testid=payment-method]").inner_text().strip() == "扫码 微信支付"
    assert "134567********6789" in rows.first.inner_text()
    assert rows.first.locator("a.badge-warn").count() == 0  # no "Sign" link for a QR payment
    page.click("a[data-lang=en]")
    page.select_option("[data-testid=method-filter]", "qr")
    page.click("form.filters button[type=submit]")
    methods = page.locator("[data-testid=txn-table] [data-testid=payment-method]").all_inner_texts()
    assert sorted(m.strip() for m in methods) == ["Scan Alipay", "Scan UnionPay QR", "Scan WeChat Pay"]
