"""Login throttling by account *and* client address: failing a password from one address must not
lock the account out for anybody else; unknown users and wrong passwords look the same."""

from __future__ import annotations

import warnings
from typing import Any

from sqlalchemy import select

from posgate.console import auth
from posgate.store import console_schema as cs
from posgate.store import schema as s

from .helpers import PASSWORDS, Env

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def client_from(env: Env, address: str) -> TestClient:
    return TestClient(env.app, base_url="https://testserver", client=(address, 40000))


def attempt(c: TestClient, username: str, password: str) -> Any:
    c.cookies.clear()
    c.get("/login")
    return c.post("/login", data={"username": username, "password": password, "csrf_token": c.cookies.get("posgate_login_csrf"),
                                  "next": "/"}, follow_redirects=False)  # fmt: skip


def test_failures_from_one_address_do_not_lock_out_another(env: Env) -> None:
    attacker, admin = client_from(env, "203.0.113.7"), client_from(env, "198.51.100.20")
    for _ in range(30):  # far beyond the threshold (5): the attacker keeps trying
        r = attempt(attacker, "admin", "not-the-password")
        assert r.status_code == 401
    # the attacker is refused even with the right password ...
    assert attempt(attacker, "admin", PASSWORDS["admin"]).status_code == 401
    assert attacker.post("/api/v1/auth/token", json={"username": "admin", "password": PASSWORDS["admin"]}).status_code == 401
    # ... but the administrator, elsewhere, logs in at once, on the page and on the API
    assert attempt(admin, "admin", PASSWORDS["admin"]).status_code == 303
    assert admin.post("/api/v1/auth/token", json={"username": "admin", "password": PASSWORDS["admin"]}).status_code == 200
    with env.db.engine.connect() as conn:
        locked = conn.execute(select(cs.users.c.locked_until).where(cs.users.c.username == "admin")).scalar()
    assert locked is None  # no account-wide lock came from a single address


def test_an_address_trying_many_accounts_is_throttled(env: Env) -> None:
    sprayer = client_from(env, "203.0.113.9")
    names = [f"guess{i}" for i in range(40)]
    codes = [attempt(sprayer, n, "Password1234").status_code for n in names]
    assert set(codes) == {401}
    # past ADDRESS_FACTOR x threshold failures, even a real account's right password is refused from there
    r = attempt(sprayer, "mart-admin", PASSWORDS["mart-admin"])
    assert r.status_code == 401
    assert attempt(client_from(env, "198.51.100.30"), "mart-admin", PASSWORDS["mart-admin"]).status_code == 303


def test_the_account_locks_only_when_failures_come_from_several_addresses(env: Env) -> None:
    threshold = env.app.state.console.settings.lockout_threshold
    addresses = [f"203.0.113.{i}" for i in range(1, auth.ACCOUNT_FACTOR + 1)]
    for a in addresses:
        for _ in range(threshold):
            attempt(client_from(env, a), "support", "wrong-password-x")
    with env.db.engine.connect() as conn:
        assert conn.execute(select(cs.users.c.locked_until).where(cs.users.c.username == "support")).scalar() is not None
    assert attempt(client_from(env, "198.51.100.40"), "support", PASSWORDS["support"]).status_code == 401


def test_unknown_user_and_wrong_password_get_the_same_answer(env: Env) -> None:
    c = client_from(env, "192.0.2.1")
    unknown = attempt(c, "nobody-here", "whatever-password")
    wrong = attempt(c, "mart-clerk", "whatever-password")
    assert unknown.status_code == wrong.status_code == 401

    def message(r: Any) -> str:
        import re

        return re.search(r'data-testid="login-error">([^<]*)<', r.text).group(1)  # type: ignore[union-attr]

    assert message(unknown) == message(wrong) == "用户名或密码错误。"
    api = [c.post("/api/v1/auth/token", json={"username": u, "password": "whatever-password"}) for u in ("nobody-here", "mart-clerk")]
    assert api[0].status_code == api[1].status_code == 401 and api[0].json() == api[1].json()
    # once throttled, unknown and known usernames get the same refusal as well
    for _ in range(5):
        last_unknown, last_known = attempt(c, "nobody-2", "x-password-1"), attempt(c, "bistro-admin", "x-password-1")
    assert message(last_unknown).split("。")[0] == message(last_known).split("。")[0]
    assert "登录失败次数过多" in message(last_known)


def test_unknown_users_run_one_argon2_verification(env: Env, monkeypatch: Any) -> None:
    calls: list[str] = []
    real = auth.verify_password
    monkeypatch.setattr(auth, "verify_password", lambda stored, pw: calls.append(stored) or real(stored, pw))
    with env.db.engine.begin() as conn:
        auth.authenticate(conn, "nobody-at-all", "some-password", threshold=5, lock_minutes=15, address="192.0.2.5")
        auth.authenticate(conn, "mart-clerk", "some-password", threshold=5, lock_minutes=15, address="192.0.2.5")
    assert len(calls) == 2 and calls[0] == auth._DUMMY_HASH and calls[1] != auth._DUMMY_HASH


def test_every_attempt_is_audited_with_the_address(env: Env) -> None:
    attempt(client_from(env, "192.0.2.77"), "mart-clerk", "wrong-password-x")
    attempt(client_from(env, "192.0.2.77"), "mart-clerk", PASSWORDS["mart-clerk"])
    with env.db.engine.connect() as conn:
        rows = conn.execute(select(s.audit_log.c.action, s.audit_log.c.object_id).where(s.audit_log.c.actor == "mart-clerk")
                            .order_by(s.audit_log.c.id)).all()  # fmt: skip
    assert [tuple(r) for r in rows[-2:]] == [("login.failed", "192.0.2.77"), ("login.ok", "192.0.2.77")]
