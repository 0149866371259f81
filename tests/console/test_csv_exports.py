"""Every CSV the console exports carries what the page shows, in the reader's language: the
page's labels for types, statuses, sources, sign-on kinds and causes — never the internal codes
(``sale``, ``approved``, ``terminal``, ``daily``...). The response code stays a code (the key
banks and the network reconcile on) and its meaning follows in ``response_text``; the statement
keeps its status code in a last column for scripts. All are UTF-8 with a BOM (Excel)."""

from __future__ import annotations

import csv
import io

import pytest

from posgate.console.fmt import today

from .helpers import MART, TZ, Env, login

LANG = {"zh_CN": {"sale": "消费", "approved": "成功", "rc00": "承兑或交易成功", "terminal": "POS 终端", "yes": "是",
                  "sign_on": "签到", "daily": "当日首次签到", "refused": "签到被拒"},
        "en": {"sale": "Sale", "approved": "Successful", "rc00": "Approved", "terminal": "POS terminal", "yes": "Yes",
               "sign_on": "Sign-on", "daily": "First sign-on of the day", "refused": "Sign-on refused"}}  # fmt: skip


def _csv(env: Env, user: str, lang: str, url: str) -> list[dict[str, str]]:
    c = login(env.client(), user)
    c.cookies.set("posgate_lang", lang)
    r = c.get(url)
    assert r.status_code == 200, r.text[:300]
    assert r.content.startswith("\ufeff".encode()), "no BOM: Excel would misread the Chinese"
    text = r.content.decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_transactions_csv_has_the_pages_labels(env: Env, lang: str) -> None:
    words = LANG[lang]
    rows = _csv(env, "mart-admin", lang, "/transactions.csv")
    sale = next(r for r in rows if int(r["id"]) == env.ids.mart_signed)
    assert sale["type"] == words["sale"] and sale["status"] == words["approved"] and sale["source"] == words["terminal"]
    assert sale["signed"] == words["yes"]
    assert sale["response_code"] == "00" and sale["response_text"] == words["rc00"]
    declined = next(r for r in rows if int(r["id"]) == env.ids.mart_declined)
    assert declined["response_code"] != "00" and declined["response_text"] and declined["response_text"] != declined["response_code"]
    for r in rows:
        assert r["type"] not in ("sale", "void", "refund") and r["status"] not in ("approved", "declined", "reversed")
        assert r["source"] not in ("terminal", "makeup", "console")
        assert r["entry_mode"] and not r["entry_mode"].isdigit()


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_sign_on_register_csv_has_the_pages_labels(env: Env, lang: str) -> None:
    words = LANG[lang]
    rows = _csv(env, "admin", lang, "/sign-ons.csv")
    assert rows
    kinds = {r["kind"] for r in rows}
    assert words["sign_on"] in kinds and words["refused"] in kinds and not kinds & {"sign_on", "refused"}
    assert words["daily"] in {r["cause"] for r in rows} and "daily" not in {r["cause"] for r in rows}
    assert all(r["response_code"] and r["response_text"] for r in rows)


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_settlement_statement_csv_has_the_status_label_and_code(env: Env, lang: str) -> None:
    c = login(env.client(), "mart-admin")
    c.cookies.set("posgate_lang", lang)
    r = c.get(f"/settlement/statements/{MART}/{today(TZ)}.csv")
    assert r.status_code == 200 and r.content.startswith("\ufeff".encode())
    head = next(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert head["status_code"] in ("open", "scheduled", "settled", "on_hold")
    page = c.get(f"/settlement/statements/{MART}/{today(TZ)}").text
    assert head["status"] != head["status_code"] and head["status"] in page
