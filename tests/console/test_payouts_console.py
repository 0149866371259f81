"""The money pages through the HTTP client: one merchant never reaches another's payouts,
statements, account or fees; who may propose, approve, change fees or ask for D0; bad input is
refused with nothing changed."""

from __future__ import annotations

from sqlalchemy import func, select

from posgate.console.fmt import today
from posgate.store import payouts as po
from posgate.store import schema as s
from posgate.store.payouts_schema import bank_accounts, fee_rules

from .helpers import BISTRO, MART, TZ, Env, csrf_of, login


def _count(env: Env, table: object) -> int:
    with env.db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_another_merchants_money_is_not_found(env: Env) -> None:
    bistro = login(env.client(), "bistro-admin")
    day = today(TZ)
    for url in (f"/merchants/{MART}/bank-account", f"/payouts?merchant_id={MART}", f"/fees?merchant_id={MART}",
                f"/statements?merchant_id={MART}&day={day}", f"/statements.csv?merchant_id={MART}&day={day}",
                f"/statements.pdf?merchant_id={MART}&month={day[:7]}"):  # fmt: skip
        assert bistro.get(url, follow_redirects=False).status_code == 404, url
    token = csrf_of(bistro, "/payouts")
    before = _count(env, bank_accounts)
    r = bistro.post(f"/merchants/{MART}/bank-account", data={"csrf_token": token, "bank_name": "x", "bank_code": "102290000018",
                                                             "account_name": "y", "account_number": "12345678", "reason": "z"})  # fmt: skip
    assert r.status_code == 404 and _count(env, bank_accounts) == before
    own = bistro.get("/statements").text
    assert BISTRO in own and "3105************5678" in own and "31050161373600005678" not in own
    clerk = login(env.client(), "mart-clerk")
    for url in ("/payouts", "/statements", f"/merchants/{MART}/bank-account", "/fees"):
        assert clerk.get(url, follow_redirects=False).status_code == 403, url


def test_roles_and_bad_input(env: Env) -> None:
    mart = login(env.client(), "mart-admin")
    token = csrf_of(mart, "/payouts")
    form = {"csrf_token": token, "bank_name": "招商银行", "bank_code": "3082900030", "account_name": "演示便利店",
            "account_number": "6214830123456789", "reason": "换行"}  # fmt: skip
    r = mart.post(f"/merchants/{MART}/bank-account", data=form)
    assert r.status_code == 200 and "联行号须为 12 位数字" in r.text and _count(env, bank_accounts) == 2
    r = mart.post(f"/merchants/{MART}/bank-account", data={**form, "bank_code": "308290003020"})
    assert "变更 #3 已提交" in r.text
    assert mart.post("/bank-account-changes/3/approve", data={"csrf_token": token}, follow_redirects=False).status_code == 403
    support = login(env.client(), "support")
    r = support.post("/bank-account-changes/3/reject", data={"csrf_token": csrf_of(support, "/payouts")})
    assert "请说明拒绝原因" in r.text
    with env.db.engine.connect() as conn:
        assert po.account_change(conn, 3)["status"] == "pending"  # a rejection needs a reason: nothing changed

    # fees: the acquirer administrator only; a bad rate changes nothing
    assert mart.post("/fees", data={"csrf_token": token, "merchant_id": MART, "kind": "debit", "rate": "0.10"},
                     follow_redirects=False).status_code == 403  # fmt: skip
    admin = login(env.client(), "admin")
    atoken = csrf_of(admin, "/fees")
    r = admin.post("/fees", data={"csrf_token": atoken, "merchant_id": MART, "back": MART, "kind": "debit", "rate": "abc"})
    assert "费率为百分数" in r.text and _count(env, fee_rules) == 0
    r = admin.post("/fees", data={"csrf_token": atoken, "merchant_id": MART, "back": MART, "kind": "debit", "rate": "0.45",
                                  "cap": "18.00"})  # fmt: skip
    assert r.status_code == 200
    with env.db.engine.connect() as conn:
        rule = po.effective_rules(conn, MART)["debit"]
        audit = conn.execute(select(s.audit_log.c.action).where(s.audit_log.c.actor == "admin").order_by(s.audit_log.c.id.desc())).first()
    assert (rule.rate_bp, rule.cap, rule.source) == (45, 18_00, "merchant") and audit is not None and audit.action == "fee_rule.set"
    page = mart.get("/fees").text
    assert "0.45%" in page and "¥18.00" in page and "该商户的规则" in page

    # D0: what is settled and unpaid (the seed's console-batch history), once a day
    r = mart.post("/payouts/d0", data={"csrf_token": token})
    assert "已申请当日到账 #1" in r.text
    r = mart.post("/payouts/d0", data={"csrf_token": token})
    assert "今天已申请过当日到账（#1）" in r.text
    with env.db.engine.connect() as conn:
        assert [p["kind"] for p in po.list_payouts(conn, MART)] == ["d0"]
    clerk = login(env.client(), "mart-clerk")
    assert clerk.post("/payouts/d0", data={"csrf_token": csrf_of(clerk, "/")}, follow_redirects=False).status_code == 403


def test_money_routes_have_the_expected_roles(env: Env) -> None:
    from .test_security import guarded

    roles = {(m, p): g.roles for m, p, g in guarded(env) if g is not None}
    assert roles[("POST", "/bank-account-changes/{change_id}/approve")] == {"acquirer_admin", "support"}
    assert roles[("POST", "/fees")] == {"acquirer_admin"}
    assert roles[("POST", "/payouts/d0")] == {"acquirer_admin", "merchant_admin"}
    assert roles[("POST", "/payouts/{payout_id}/retry")] == {"acquirer_admin", "support"}
    for path in ("/payouts", "/statements", "/statements.csv", "/statements.pdf", "/merchants/{merchant_id}/bank-account", "/fees"):
        assert roles[("GET", path)] == {"acquirer_admin", "support", "merchant_admin"}, path


def test_payouts_api(env: Env) -> None:
    from .helpers import api_token

    with env.db.engine.begin() as conn:
        mart = next(p for p in po.build_payouts(conn, today(TZ), actor="cli").built if p["merchant_id"] == MART)
    c = env.client()
    h = api_token(c, "mart-admin")
    body = c.get("/api/v1/payouts", headers=h).json()
    assert body["failed"] == 0 and [x["ref"] for x in body["items"]] == [po.payout_ref(mart["id"])]
    one = c.get(f"/api/v1/payouts/{mart['id']}", headers=h).json()
    assert one["amount"] == mart["amount"] == sum(x["net"] for x in one["lines"]) and one["status"] == "pending"
    assert "1001244309300012345" not in str(one) and all("*" in (x["pan_masked"] or "*") for x in one["lines"])
    bistro = api_token(c, "bistro-admin")
    assert c.get(f"/api/v1/payouts/{mart['id']}", headers=bistro).status_code == 404
    assert c.get(f"/api/v1/payouts?merchant_id={MART}", headers=bistro).status_code == 404
    assert c.get("/api/v1/payouts", headers=api_token(c, "mart-clerk")).status_code == 403
    assert c.get("/api/v1/payouts", headers=api_token(c, "support")).json()["items"][0]["merchant_id"] == MART
