"""Security: every route is guarded, refuses the wrong role and a missing CSRF token; merchants
are isolated; hostile input is stored and shown inert. Routes are enumerated from ``app.routes``
so that a route added later cannot escape these tests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import func, inspect, select

from posgate.console.app import PUBLIC_PATHS
from posgate.console.auth import ROLES, Guard
from posgate.console.fmt import today
from posgate.store import schema as s

from .helpers import BISTRO, MART, ROLE_USER, Env, api_token, csrf_of, login, txn_row

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def iter_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for r in routes:
        if isinstance(r, APIRoute):
            yield r
        elif hasattr(r, "original_router"):  # FastAPI ≥ 0.16x keeps included routers as nodes
            yield from iter_routes(r.original_router.routes)
        elif hasattr(r, "routes") and not hasattr(r, "app"):
            yield from iter_routes(r.routes)


def guard_of(route: APIRoute) -> Guard | None:
    guards = [d.call for d in route.dependant.dependencies if isinstance(d.call, Guard)]
    assert len(guards) <= 1, route.path
    return guards[0] if guards else None


def fill(path: str, env: Env) -> str:
    values = {"txn_id": env.ids.mart_unsigned, "entry_id": 1, "rid": 1, "terminal_id": "10000001", "merchant_id": MART,
              "settlement_id": env.ids.settlement_id, "backup_id": 1, "user_id": 1, "day": today("Asia/Shanghai"), "code": "en",
              "diff_id": 1, "payout_id": 1, "change_id": 1, "route_id": 1}  # fmt: skip
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: str(values[m.group(1)]), path)


def guarded(env: Env) -> list[tuple[str, str, Guard]]:
    out = []
    for r in iter_routes(env.app.routes):
        g = guard_of(r)
        for m in sorted(r.methods - {"HEAD"}):
            out.append((m, r.path, g))
    return out  # type: ignore[return-value]


def audit_count(env: Env) -> int:
    with env.db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(s.audit_log)).scalar_one())


def test_every_route_has_a_guard_or_is_public(env: Env) -> None:
    routes = list(iter_routes(env.app.routes))
    assert len(routes) > 60
    for r in routes:
        g = guard_of(r)
        if r.path in PUBLIC_PATHS:
            assert g is None, r.path
        else:
            assert g is not None, f"{sorted(r.methods)} {r.path} has no Guard"
            assert g.api == r.path.startswith("/api/"), r.path


def test_key_routes_have_the_expected_roles(env: Env) -> None:
    roles = {(m, p): g.roles for m, p, g in guarded(env) if g is not None}
    assert roles[("GET", "/backups")] == {"acquirer_admin"}
    assert roles[("POST", "/api/v1/backups")] == {"acquirer_admin"}
    assert roles[("POST", "/terminals/{terminal_id}/resign")] == {"acquirer_admin", "support"}
    assert roles[("POST", "/api/v1/terminals/{terminal_id}/approve-device")] == {"acquirer_admin", "support"}
    assert "merchant_clerk" not in roles[("POST", "/makeup/{entry_id}/approve")]
    assert "merchant_clerk" not in roles[("GET", "/settlement")]
    assert roles[("POST", "/api/v1/transactions/{txn_id}/signature")] == set(ROLES)


def test_wrong_role_is_refused_everywhere(env: Env) -> None:
    web = {role: login(env.client(), user) for role, user in ROLE_USER.items()}
    csrf = {role: csrf_of(c, "/password") for role, c in web.items()}
    api = {role: api_token(env.client(), user) for role, user in ROLE_USER.items()}
    checked = 0
    before = audit_count(env)
    for method, path, g in guarded(env):
        if g is None:
            continue
        url = fill(path, env)
        for role in set(ROLES) - g.roles:
            if g.api:
                r = env.client().request(method, url, headers=api[role], json={})
            else:
                data = {"csrf_token": csrf[role]} if method in UNSAFE else None
                r = web[role].request(method, url, data=data, follow_redirects=False)
            assert r.status_code == 403, (role, method, path, r.status_code, r.text[:200])
            checked += 1
    assert checked > 40
    # refusals change nothing (login audit rows were written before)
    assert audit_count(env) == before


def test_unauthenticated_is_refused_everywhere(env: Env) -> None:
    for method, path, g in guarded(env):
        if g is None:
            continue
        r = env.client().request(method, fill(path, env), follow_redirects=False)
        if g.api:
            assert r.status_code == 401, (method, path)
        else:
            assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), (method, path)


def test_missing_or_wrong_csrf_is_refused_on_every_form(env: Env) -> None:
    web = {role: login(env.client(), user) for role, user in ROLE_USER.items()}
    before = audit_count(env)
    n = 0
    for method, path, g in guarded(env):
        if g is None or g.api or method not in UNSAFE:
            continue
        role = sorted(g.roles)[0]
        for data in ({}, {"csrf_token": "forged-token"}):
            r = web[role].request(method, fill(path, env), data=data or {"x": "1"}, follow_redirects=False)
            assert r.status_code == 403, (method, path, data, r.status_code)
            n += 1
    assert n >= 2 * 20
    assert audit_count(env) == before
    # the login form has its own double-submit token
    c = env.client()
    c.get("/login")
    r = c.post("/login", data={"username": "admin", "password": "admin-demo-pass"}, follow_redirects=False)
    assert r.status_code == 403 and "posgate_session" not in c.cookies


def test_api_is_csrf_exempt_but_ignores_cookies(env: Env) -> None:
    c = login(env.client(), "mart-clerk")  # a browser session cookie is not an API credential
    assert c.get("/api/v1/transactions").status_code == 401
    r = c.post(f"/api/v1/transactions/{env.ids.mart_unsigned}/signature", content=b"x", headers={"Content-Type": "image/png"})
    assert r.status_code == 401


MART_OBJECT_PAGES = [
    "/transactions/{mart_unsigned}", "/transactions/{mart_unsigned}/sign", "/transactions/{mart_unsigned}/receipt.pdf",
    "/transactions/{mart_signed}/signature.png", "/terminals/10000001", "/settlement/batches/{settlement_id}",
    f"/settlement/statements/{MART}/{{day}}", f"/settlement/statements/{MART}/{{day}}.pdf",
    f"/settlement/statements/{MART}/{{day}}.csv",
]  # fmt: skip


def test_merchant_cannot_reach_another_merchants_data(env: Env) -> None:
    mart = api_token(env.client(), "mart-clerk")
    entry = env.client().post("/api/v1/makeup-entries", headers=mart, json={
        "kind": "annul", "original_id": env.ids.mart_sale_for_refund, "reason": "x"}).json()  # fmt: skip
    refund = env.client().post("/api/v1/refund-requests", headers=mart, json={
        "original_id": env.ids.mart_unsigned, "amount": 100, "reason": "x"}).json()  # fmt: skip
    bistro = login(env.client(), "bistro-admin")
    ids = dict(vars(env.ids), day=today("Asia/Shanghai"))
    for page in MART_OBJECT_PAGES + [f"/makeup/{entry['id']}", f"/makeup/{entry['id']}/evidence"]:
        url = page.format(**ids)
        r = bistro.get(url, follow_redirects=False)
        assert r.status_code == 404, (url, r.status_code)
    token = csrf_of(bistro, "/password")
    for url in (f"/makeup/{entry['id']}/approve", f"/refunds/{refund['id']}/approve", f"/transactions/{env.ids.mart_unsigned}/sign"):
        r = bistro.post(url, data={"csrf_token": token, "signature": "data:image/png;base64,AAAA", "confirm": "yes"},
                        follow_redirects=False)  # fmt: skip
        assert r.status_code == 404, url
    # lists show only Demo Bistro
    for url in ("/transactions", "/unsigned", "/makeup", "/refunds", "/terminals", "/sign-ons", "/settlement", "/audit"):
        html = bistro.get(url).text
        assert "10000001" not in html and MART not in html, url
    assert BISTRO in bistro.get("/terminals").text
    api = api_token(env.client(), "bistro-admin")
    for url in (f"/api/v1/transactions/{env.ids.mart_unsigned}", f"/api/v1/makeup-entries/{entry['id']}",
                "/api/v1/terminals/10000001", f"/api/v1/settlements/{env.ids.settlement_id}",
                f"/api/v1/statements/{MART}/{ids['day']}"):  # fmt: skip
        assert env.client().get(url, headers=api).status_code == 404, url
    for url in ("/api/v1/transactions", "/api/v1/terminals", "/api/v1/sign-ons", "/api/v1/makeup-entries",
                "/api/v1/refund-requests", "/api/v1/differences", "/api/v1/settlements", "/api/v1/audit"):
        body = env.client().get(url, headers=api).text
        assert MART not in body and "10000001" not in body, url
    assert not txn_row(env.db, env.ids.mart_unsigned)["signed"]


HOSTILE = "<script>alert('x')</script>' OR '1'='1'; DROP TABLE transactions;-- \"><img src=x onerror=alert(1)>"


def test_hostile_input_is_stored_and_shown_inert(env: Env) -> None:
    c = login(env.client(), "mart-clerk")
    r = c.post("/makeup", data={"csrf_token": csrf_of(c, "/makeup/new"), "kind": "missing_sale", "terminal_id": "10000001",
                                "amount": "1.00", "reason": HOSTILE, "evidence": HOSTILE, "reference": "' OR 1=1--"},
               follow_redirects=False)  # fmt: skip
    assert r.status_code == 303, re.findall(r'form-error">([^<]*)', r.text)
    entry_url = r.headers["location"]
    html = c.get(entry_url).text
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(" in html
    with env.db.engine.connect() as conn:
        assert "transactions" in inspect(conn).get_table_names()
        from posgate.store.console_schema import makeup_entries

        stored = conn.execute(select(makeup_entries.c.reason)).scalars().all()
    assert HOSTILE in stored
    # search fields: SQL-looking input matches nothing and breaks nothing
    for params in ({"rrn": "' OR '1'='1"}, {"card": "%"}, {"card": "_%_"}, {"terminal_id": "1' OR '1'='1"}):
        page = c.get("/transactions", params=params)
        assert page.status_code == 200 and 'data-txn-id=' not in page.text, params
    api = api_token(env.client(), "mart-clerk")
    assert env.client().get("/api/v1/transactions", params={"rrn": "' OR 1=1--"}, headers=api).json() == []
    # the audit page shows the hostile text escaped too
    a = login(env.client(), "admin")
    audit_html = a.get("/audit", params={"action": "makeup"}).text
    assert "<script>alert" not in audit_html


def test_security_headers(env: Env) -> None:
    r = login(env.client(), "admin").get("/")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("nxt", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_login_does_not_redirect_off_site(env: Env, nxt: str) -> None:
    c = env.client()
    c.get("/login")
    r = c.post("/login", data={"username": "admin", "password": "admin-demo-pass", "next": nxt,
                               "csrf_token": c.cookies.get("posgate_login_csrf")}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == "/"
