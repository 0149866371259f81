"""The console's routing page (issue 13): admins add and remove routes, support reads, merchants
never see it; codes are shown as words in both languages."""

from __future__ import annotations

from posgate.store import admin

from .helpers import Env, csrf_of, login


def test_admin_adds_and_removes_a_route_support_reads_merchants_are_refused(env: Env) -> None:
    a = login(env.client(), "admin")
    token = csrf_of(a, "/routing")
    r = a.post("/routing", data={"csrf_token": token, "bin_low": "621214", "bin_high": "", "target_kind": "link", "link": "cupnet",
                                 "card_kind": "debit", "priority": "5"}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    bad = a.post("/routing", data={"csrf_token": token, "bin_low": "62x", "target_kind": "link", "link": "cupnet", "card_kind": "debit"},
                 follow_redirects=False)  # fmt: skip
    assert bad.status_code == 303
    with env.db.engine.begin() as conn:
        routes = admin.list_routes(conn)
        admin.set_stand_in_limit(conn, "debit", 50_000, daily_max=200_000)
    assert [(x["bin_low"], x["bin_high"], x["target"], x["priority"]) for x in routes] == [("621214", "621214", "cupnet", 5)]
    for lang, words in (("zh_CN", ["路由", "借记卡", "上游链路", "代授权限额"]), ("en", ["Routing", "Debit card", "Upstream link"])):
        a.get(f"/lang/{lang}?next=/")
        page = a.get("/routing").text
        assert all(w in page for w in words), lang
        assert "debit</td>" not in page and "stand_in" not in page
    s = login(env.client(), "support")
    page = s.get("/routing")
    assert page.status_code == 200 and "cupnet" in page.text and 'action="/routing"' not in page.text
    assert s.post(f"/routing/{routes[0]['id']}/remove", data={"csrf_token": csrf_of(s, "/routing")},
                  follow_redirects=False).status_code == 403  # fmt: skip
    with env.db.engine.connect() as conn:
        assert len(admin.list_routes(conn)) == 1  # support cannot remove
    m = login(env.client(), "mart-admin")
    assert m.get("/routing").status_code == 403
    rm = a.post(f"/routing/{routes[0]['id']}/remove", data={"csrf_token": csrf_of(a, "/routing")}, follow_redirects=False)
    assert rm.status_code == 303
    with env.db.engine.connect() as conn:
        assert admin.list_routes(conn) == []


def test_the_transaction_page_says_who_authorised_it(env: Env) -> None:
    from sqlalchemy import update

    from posgate.store import schema as s

    with env.db.engine.begin() as conn:
        conn.execute(update(s.transactions).where(s.transactions.c.id == env.ids.mart_unsigned)
                     .values(route="cupnet", stand_in=True))  # fmt: skip
    a = login(env.client(), "support")
    a.get("/lang/zh_CN?next=/")
    page = a.get(f"/transactions/{env.ids.mart_unsigned}").text
    assert "授权方" in page and "上游链路" in page and "代授权批准" in page and "cupnet" in page
    m = login(env.client(), "mart-admin")
    assert "cupnet" not in m.get(f"/transactions/{env.ids.mart_unsigned}").text  # merchants: not their business
