"""The console's IC parameters page (acquirer administrators and support): the demo AIDs and
UnionPay test CA public keys are listed; AIDs are added, their no-PIN limit changed and removed;
a CA public key whose check value does not match is refused, nothing saved; every change is
audited under the console user and asks the terminals to download again."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from posgate.dialect.ic_params import UNIONPAY_TEST_CAPKS
from posgate.store import schema as s

from .helpers import Env, Live, browser_login, csrf_of, login

KEY = UNIONPAY_TEST_CAPKS[1]


def _pending(env: Env) -> set[tuple[bool, bool]]:
    with env.db.engine.connect() as conn:
        return {(bool(r[0]), bool(r[1])) for r in conn.execute(select(s.terminals.c.capk_pending, s.terminals.c.aid_pending))}


def _audit(env: Env) -> list[tuple[str, str, str]]:
    with env.db.engine.connect() as conn:
        q = select(s.audit_log.c.actor, s.audit_log.c.action, s.audit_log.c.object_id).order_by(s.audit_log.c.id)
        return [tuple(r) for r in conn.execute(q) if r[1].startswith("ic.") and r[0] != "demo"]


def test_roles_and_the_demo_lists(env: Env) -> None:
    for user in ("admin", "support"):
        page = login(env.client(), user).get("/ic-params")
        assert page.status_code == 200
        assert 'data-aid="A000000333010101"' in page.text and 'data-capk="A00000033308"' in page.text
        assert "1000.00" in page.text and UNIONPAY_TEST_CAPKS[0].check_value in page.text
    for user in ("mart-admin", "mart-clerk"):
        c = login(env.client(), user)
        assert c.get("/ic-params").status_code == 403
        assert 'href="/ic-params"' not in c.get("/").text


def test_change_a_limit_refuse_a_bad_key_remove(env: Env) -> None:
    web = login(env.client(), "support")
    csrf = csrf_of(web, "/ic-params")
    assert _pending(env) == {(False, False)}
    r = web.post("/ic-params/aids", data={"csrf_token": csrf, "aid": "a000000333010101", "cvm_limit": "300.00"},
                 follow_redirects=True)  # fmt: skip
    assert r.status_code == 200 and "已保存" in r.text
    assert '<td class="num" data-testid="cvm-limit">300.00</td>' in r.text
    assert _pending(env) == {(False, True)}
    r = web.post("/ic-params/aids", data={"csrf_token": csrf, "aid": "A000000333010101", "cvm_limit": "abc"},
                 follow_redirects=True)  # fmt: skip
    assert "DF21 的值无效" in r.text and "300.00" in r.text
    bad = {"csrf_token": csrf, "rid": KEY.rid, "index": "0A", "expiry": KEY.expiry, "modulus": KEY.modulus,
           "exponent": "03", "check_value": KEY.check_value}  # the check value of index 09, not 0A
    r = web.post("/ic-params/capks", data=bad, follow_redirects=True)
    assert f"校验值 {KEY.check_value} 与公钥不符" in r.text and 'data-capk="A0000003330A"' not in r.text
    assert _pending(env) == {(False, True)}  # nothing changed
    r = web.post("/ic-params/capks/remove", data={"csrf_token": csrf, "rid": "A000000333", "index": "09"},
                 follow_redirects=True)  # fmt: skip
    assert "已删除" in r.text and 'data-capk="A00000033309"' not in r.text
    assert _pending(env) == {(True, True)}
    r = web.post("/ic-params/capks", data={**bad, "index": "09"}, follow_redirects=True)
    assert 'data-capk="A00000033309"' in r.text
    r = web.post("/ic-params/aids/remove", data={"csrf_token": csrf, "aid": "A000000333010103"}, follow_redirects=True)
    assert 'data-aid="A000000333010103"' not in r.text
    assert _audit(env) == [("support", "ic.aid.replace", "A000000333010101"), ("support", "ic.capk.remove", "A000000333/09"),
                           ("support", "ic.capk.add", "A000000333/09"), ("support", "ic.aid.remove", "A000000333010103")]
    audit_page = login(env.client(), "admin").get("/audit").text
    assert "IC卡参数已修改" in audit_page and "公钥已删除" in audit_page


@pytest.mark.browser
def test_admin_sets_a_no_pin_limit_and_a_bad_key_is_refused_in_the_browser(live: Live, page: Any) -> None:
    browser_login(page, live.url, "admin")
    page.click("nav.side >> text=IC卡参数")
    page.wait_for_url(f"{live.url}/ic-params")
    row = page.locator("[data-aid=A000000333010102] [data-testid=cvm-limit]")
    assert row.inner_text() == "1000.00"
    page.fill("[data-testid=aid]", "A000000333010102")
    page.fill("[data-testid=aid-cvm-limit]", "500.00")
    page.click("[data-testid=save-aid]")
    page.wait_for_url(f"{live.url}/ic-params")
    assert page.locator("[data-testid=flash]").inner_text().startswith("已保存")
    assert row.inner_text() == "500.00"
    page.fill("[data-testid=capk-rid]", KEY.rid)
    page.fill("[data-testid=capk-index]", "0B")
    page.fill("[data-testid=capk-expiry]", KEY.expiry)
    page.fill("[data-testid=capk-modulus]", KEY.modulus)
    page.fill("[data-testid=capk-check]", "0" * 40)
    page.click("[data-testid=save-capk]")
    page.wait_for_url(f"{live.url}/ic-params")
    assert "与公钥不符" in page.locator("[data-testid=flash]").inner_text()
    assert page.locator("[data-capk=A0000003330B]").count() == 0
    with live.env.db.engine.connect() as conn:
        aid = conn.execute(select(s.ic_aids).where(s.ic_aids.c.aid == "A000000333010102")).one()
        audit = conn.execute(select(s.audit_log).where(s.audit_log.c.action == "ic.aid.replace")).one()
    assert aid.cvm_limit == 50000 and audit.actor == "admin" and audit.after["cvm_limit"] == 50000
    # English too.
    page.click("[data-lang=en]")
    assert page.locator("h1").inner_text() == "IC parameters"


def test_a_no_pin_tap_is_not_an_unsigned_slip(env: Env) -> None:
    """An approved contactless sale without PIN (22 = 072) was 免密免签: nothing to sign (C2)."""
    from .helpers import MART, _txn

    with env.db.engine.begin() as conn:
        tap = _txn(conn, env.db.keyring, tid="10000001", mid=MART, stan="000801", amount=88_00)
        pin_tap = _txn(conn, env.db.keyring, tid="10000001", mid=MART, stan="000802", amount=1_200_00)
        conn.execute(s.transactions.update().where(s.transactions.c.id == tap).values(entry_mode="072"))
        conn.execute(s.transactions.update().where(s.transactions.c.id == pin_tap).values(entry_mode="071"))
    page = login(env.client(), "mart-admin").get("/unsigned").text
    assert f'data-txn-id="{pin_tap}"' in page and f'data-txn-id="{tap}"' not in page
