"""Make-up entries (maker-checker), refunds, terminal actions, settlement statements, lockout."""

from __future__ import annotations

from sqlalchemy import select

from posgate.store import schema as s

from .helpers import MART, Env, api_token, csrf_of, login, txn_row


def test_makeup_entry_needs_a_second_person(env: Env) -> None:
    c = env.client()
    clerk = api_token(c, "mart-clerk")
    r = c.post("/api/v1/makeup-entries", headers=clerk, json={
        "kind": "missing_sale", "terminal_id": "10000002", "difference_id": env.ids.difference_id, "amount": 500_00,
        "card_last4": "0012", "reason": "slip 000398 approved on the terminal, missing on host", "evidence": "photo"})
    assert r.status_code == 201, r.text
    entry = r.json()
    assert entry["status"] == "pending" and entry["merchant_id"] == MART
    # the clerk cannot decide at all; a merchant admin who proposed cannot approve their own
    assert c.post(f"/api/v1/makeup-entries/{entry['id']}/approve", headers=clerk, json={}).status_code == 403
    admin = api_token(c, "mart-admin")
    own = c.post("/api/v1/makeup-entries", headers=admin, json={
        "kind": "annul", "original_id": env.ids.mart_sale_for_refund, "reason": "test sale, goods never sold"}).json()
    r = c.post(f"/api/v1/makeup-entries/{own['id']}/approve", headers=admin, json={})
    assert r.status_code == 403 and "own" in r.json()["detail"]
    # another merchant cannot see or decide it
    assert c.get(f"/api/v1/makeup-entries/{entry['id']}", headers=api_token(c, "bistro-admin")).status_code == 404
    assert c.post(f"/api/v1/makeup-entries/{entry['id']}/approve", headers=api_token(c, "bistro-admin"), json={}).status_code == 404
    with env.db.engine.connect() as conn:
        n_before = conn.execute(select(s.transactions.c.id)).all()
    r = c.post(f"/api/v1/makeup-entries/{entry['id']}/approve", headers=admin, json={"note": "slip checked"})
    assert r.status_code == 200 and r.json()["status"] == "approved"
    new = txn_row(env.db, r.json()["result_txn_id"])
    assert new["source"] == "makeup" and new["operation"] == "sale" and new["amount"] == 500_00
    assert new["batch_no"] == "000000" and new["response_code"] == "00"
    with env.db.engine.connect() as conn:
        assert len(conn.execute(select(s.transactions.c.id)).all()) == len(n_before) + 1
        diff = conn.execute(select(s.differences).where(s.differences.c.id == env.ids.difference_id)).mappings().one()
    assert diff["status"] == "resolved" and diff["resolved_by"] == "mart-admin"
    # support decides the admin's own proposal: the annulment is a NEW credit row, the original is kept
    orig_before = dict(txn_row(env.db, env.ids.mart_sale_for_refund))
    r = c.post(f"/api/v1/makeup-entries/{own['id']}/approve", headers=api_token(c, "support"), json={})
    assert r.status_code == 200
    ann = txn_row(env.db, r.json()["result_txn_id"])
    assert ann["operation"] == "annulment" and ann["original_id"] == env.ids.mart_sale_for_refund and ann["amount"] == 200_00
    orig_after = txn_row(env.db, env.ids.mart_sale_for_refund)
    assert dict(orig_after) == orig_before  # the original row is not changed at all (not even its status)
    assert c.post("/api/v1/refund-requests", headers=admin, json={"original_id": env.ids.mart_sale_for_refund,
                                                                  "amount": 10_00, "reason": "x"}).status_code == 409
    # decided once
    assert c.post(f"/api/v1/makeup-entries/{own['id']}/reject", headers=api_token(c, "admin"), json={"note": "x"}).status_code == 409


def test_wrong_amount_adjusts_by_difference_and_reject_needs_note(env: Env) -> None:
    c = env.client()
    clerk = api_token(c, "mart-clerk")
    e = c.post("/api/v1/makeup-entries", headers=clerk, json={
        "kind": "wrong_amount", "original_id": env.ids.mart_unsigned, "amount": 10_00, "reason": "keyed 12.34, bill 10.00"}).json()
    assert c.post(f"/api/v1/makeup-entries/{e['id']}/reject", headers=api_token(c, "mart-admin"), json={}).status_code == 400
    r = c.post(f"/api/v1/makeup-entries/{e['id']}/approve", headers=api_token(c, "mart-admin"), json={}).json()
    adj = txn_row(env.db, r["result_txn_id"])
    assert adj["operation"] == "adjustment" and adj["processing_code"] == "200000" and adj["amount"] == 2_34
    assert txn_row(env.db, env.ids.mart_unsigned)["amount"] == 12_34


def test_refund_runs_only_after_approval(env: Env) -> None:
    c = env.client()
    clerk = api_token(c, "mart-clerk")
    orig = env.ids.mart_sale_for_refund
    with env.db.engine.connect() as conn:
        bal0 = conn.execute(select(s.cards.c.balance).where(s.cards.c.pan_masked == "621214*********0012")).scalar_one()
    assert c.post("/api/v1/refund-requests", headers=clerk, json={"original_id": orig, "amount": 300_00, "reason": "x"}).status_code == 400
    r = c.post("/api/v1/refund-requests", headers=clerk, json={"original_id": orig, "amount": 50_00, "reason": "returned goods"})
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert txn_row(env.db, orig)["refunded_amount"] == 0
    assert c.post(f"/api/v1/refund-requests/{rid}/approve", headers=clerk, json={}).status_code == 403
    assert c.post(f"/api/v1/refund-requests/{rid}/approve", headers=api_token(c, "support"), json={}).status_code == 403
    res = c.post(f"/api/v1/refund-requests/{rid}/approve", headers=api_token(c, "mart-admin"), json={}).json()
    assert res["status"] == "executed" and res["response_code"] == "00"
    refund = txn_row(env.db, res["result_txn_id"])
    assert refund["operation"] == "refund" and refund["original_id"] == orig and refund["amount"] == 50_00
    assert refund["rrn"] and len(refund["rrn"]) == 12 and refund["pan_masked"] == "621214*********0012"
    o = txn_row(env.db, orig)
    assert o["refunded_amount"] == 50_00 and o["status"] == "partially_refunded" and o["amount"] == 200_00
    with env.db.engine.connect() as conn:
        bal1 = conn.execute(select(s.cards.c.balance).where(s.cards.c.pan_masked == "621214*********0012")).scalar_one()
    assert bal1 == bal0 + 50_00


def test_terminal_support_actions(env: Env) -> None:
    c = env.client()
    sup = api_token(c, "support")
    assert c.post("/api/v1/terminals/10000001/resign", headers=api_token(c, "mart-admin"), json={"reason": "x"}).status_code == 403
    assert c.post("/api/v1/terminals/10000001/resign", headers=sup, json={"reason": ""}).status_code == 400
    assert c.post("/api/v1/terminals/10000001/resign", headers=sup, json={"reason": "keys suspect, ticket 42"}).status_code == 200
    r = c.post("/api/v1/terminals/10000002/approve-device", headers=sup, json={"reason": "merchant replaced broken POS"})
    assert r.json()["approved_serial"] == "NEWDEV99"
    assert c.post("/api/v1/terminals/10000001/approve-device", headers=sup, json={"reason": "x"}).status_code == 409
    assert c.put("/api/v1/terminals/10000001/params", headers=sup, json={"12": "60", "22": "演示便利店"}).status_code == 200
    assert c.put("/api/v1/terminals/10000001/params", headers=sup, json={"12": "abc"}).status_code == 400
    assert c.post("/api/v1/merchants/898100012340002/suspend", headers=sup, json={"reason": "fraud review"}).status_code == 200
    with env.db.engine.connect() as conn:
        t = {r.terminal_id: r for r in conn.execute(select(s.terminals))}
        m = conn.execute(select(s.merchants).where(s.merchants.c.merchant_id == "898100012340002")).mappings().one()
        actions = [a.action for a in conn.execute(select(s.audit_log.c.action).where(s.audit_log.c.actor == "support"))]
    assert t["10000001"].resign_requested and t["10000001"].resign_reason == "support"
    assert t["10000002"].approved_serial == "NEWDEV99"
    assert t["10000001"].params == {"12": "60", "22": "演示便利店"} and t["10000001"].params_pending
    assert m["status"] == "suspended" and m["suspended_by"] == "support"
    assert {"terminal.resign_requested", "terminal.device_approved", "terminal.params", "merchant.suspend"} <= set(actions)
    assert c.post("/api/v1/merchants/898100012340002/reinstate", headers=sup, json={"reason": "review done"}).status_code == 200


def test_statement_numbers(env: Env) -> None:
    c = env.client()
    h = api_token(c, "mart-admin")
    rows = c.get("/api/v1/statements", headers=h).json()
    from posgate.console.fmt import today

    st = next(r for r in rows if r["day"] == today("Asia/Shanghai") and r["merchant_id"] == MART)
    assert st["gross"] == 12_34 + 56_78 + 200_00 and st["refunds"] == 0
    # per transaction on the demo debit card: 0.50 %, half up to the fen (docs/decisions.md P1)
    assert st["fees"] == (12_34 * 50 + 5000) // 10000 + (56_78 * 50 + 5000) // 10000 + (200_00 * 50 + 5000) // 10000 == 134
    assert st["net"] == 26912 - st["fees"]
    assert st["status"] == "open"
    pdf = c.get(f"/api/v1/statements/{MART}/{st['day']}", params={"format": "pdf"}, headers=h)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert c.get(f"/api/v1/statements/898100012340002/{st['day']}", headers=h).status_code == 404
    assert c.get("/api/v1/statements", headers=api_token(c, "mart-clerk")).status_code == 403


def test_login_lockout(env: Env) -> None:
    c = env.client()
    for _ in range(5):
        c.cookies.clear()
        c.get("/login")
        r = c.post("/login", data={"username": "mart-clerk", "password": "wrong-password-x",
                                   "csrf_token": c.cookies.get("posgate_login_csrf")})  # fmt: skip
        assert r.status_code == 401
    assert "登录失败次数过多" in r.text
    # now even the right password is refused, on the page and on the API
    c.cookies.clear()
    c.get("/login")
    r = c.post("/login", data={"username": "mart-clerk", "password": "clerk-demo-pass",
                               "csrf_token": c.cookies.get("posgate_login_csrf")}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 401
    assert c.post("/api/v1/auth/token", json={"username": "mart-clerk", "password": "clerk-demo-pass"}).status_code == 401
    # an administrator unlocks
    a = login(env.client(), "admin")
    with env.db.engine.connect() as conn:
        uid = conn.execute(select(s.audit_log.c.object_id).where(s.audit_log.c.action == "user.locked")).scalar_one()
    r = a.post(f"/users/{uid}/unlock", data={"csrf_token": csrf_of(a, "/users")}, follow_redirects=False)
    assert r.status_code == 303
    login(env.client(), "mart-clerk")


def test_logout_and_password_change(env: Env) -> None:
    c = login(env.client(), "mart-clerk")
    token = csrf_of(c)
    r = c.post("/password", data={"csrf_token": token, "current": "clerk-demo-pass", "new": "a-much-better-pass",
                                  "confirm": "a-much-better-pass"}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    r = c.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert c.get("/", follow_redirects=False).status_code == 303
    login(env.client(), "mart-clerk", "a-much-better-pass")


def test_session_cookie_flags(env: Env) -> None:
    c = env.client()
    c.get("/login")
    r = c.post("/login", data={"username": "admin", "password": "admin-demo-pass",
                               "csrf_token": c.cookies.get("posgate_login_csrf")}, follow_redirects=False)  # fmt: skip
    cookie = [v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("posgate_session=")][0].lower()
    assert "httponly" in cookie and "secure" in cookie and "samesite=strict" in cookie
    assert r.headers.get("location") == "/"


def test_zh_default_and_english_switch(env: Env) -> None:
    c = login(env.client(), "admin")
    assert "交易查询" in c.get("/").text
    c.get("/lang/en?next=/")
    html = c.get("/").text
    assert "Transactions" in html and "Approval rate" in html and "交易查询" not in html

