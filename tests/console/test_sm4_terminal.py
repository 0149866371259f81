"""The console's terminal page and API switch a terminal between DES and SM4 (国密) keys
(acquirer roles only); the host then refuses the old scheme and accepts 006 under the same TMK."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from pair.harness import TERMINALS, PairTerminal  # tests/ is on sys.path (rootdir-relative packages)
from posgate.crypto import SM4
from posgate.store import schema as s

from .helpers import Env, Live, api_token, browser_login, csrf_of, login
from .test_host_integration import make_world, terminal_row


def test_api_switches_a_terminal_to_sm4_and_the_host_follows(env: Env) -> None:
    world = make_world(env.db)
    pos = PairTerminal(world, "10000001")  # type: ignore[arg-type]
    assert pos.sign_on().code == "00"
    c = env.client()
    sup = api_token(c, "support")
    assert c.post("/api/v1/terminals/10000001/algorithm", headers=api_token(c, "mart-admin"),
                  json={"algorithm": "sm4", "reason": "x"}).status_code == 403  # fmt: skip
    assert c.post("/api/v1/terminals/10000001/algorithm", headers=sup,
                  json={"algorithm": "aes", "reason": "x"}).status_code == 422  # fmt: skip
    r = c.post("/api/v1/terminals/10000001/algorithm", headers=sup, json={"algorithm": "sm4", "reason": "国密改造 工单 77"})
    assert r.status_code == 200, r.text
    tmk = TERMINALS["10000001"][1]
    assert r.json()["tmk_kcv"] == SM4.kcv(tmk).hex().upper()
    row = terminal_row(env, "10000001")
    assert row["algorithm"] == "sm4" and row["mak_enc"] is None and row["resign_requested"]
    assert c.get("/api/v1/terminals/10000001", headers=sup).json()["algorithm"] == "sm4"
    # The old keys are gone: a DES sign-on is refused, the SM4 one is served under the same TMK.
    assert pos.sign_on("004").code == "40"
    assert pos.sign_on("006").code == "00" and pos.keys is not None and pos.keys.cipher is SM4
    # The SM4 working keys are kept encrypted under the master key, as the DES ones are.
    row = terminal_row(env, "10000001")
    for col, key, purpose in (("pik_enc", pos.keys.pik, b"pik"), ("mak_enc", pos.keys.mak, b"mak"),
                              ("tdk_enc", pos.keys.tdk, b"tdk")):  # fmt: skip
        assert key is not None and key not in bytes(row[col]) and env.db.keyring.decrypt(row[col], purpose) == key
    again = c.post("/api/v1/terminals/10000001/algorithm", headers=sup, json={"algorithm": "sm4", "reason": "x"})
    assert again.status_code == 409


def test_terminal_page_shows_and_switches_the_algorithm(env: Env) -> None:
    web = login(env.client(), "support")
    page = web.get("/terminals/10000002").text
    assert 'data-testid="key-algorithm">DES/TDES' in page and 'data-testid="set-algorithm"' in page
    csrf = csrf_of(web, "/terminals/10000002")
    r = web.post("/terminals/10000002/algorithm", data={"csrf_token": csrf, "algorithm": "sm4", "reason": "国密"},
                 follow_redirects=True)  # fmt: skip
    assert r.status_code == 200 and 'data-testid="key-algorithm">SM4 (国密)' in r.text
    assert "密钥算法已改为 SM4" in r.text or "Keys set to SM4" in r.text
    assert terminal_row(env, "10000002")["algorithm"] == "sm4"
    # A merchant user sees the page without the form.
    mart = login(env.client(), "mart-admin")
    assert 'data-testid="set-algorithm"' not in mart.get("/terminals/10000001").text


@pytest.mark.browser
def test_support_switches_a_terminal_to_sm4_in_the_browser(live: Live, page: Any) -> None:
    browser_login(page, live.url, "support")
    page.goto(f"{live.url}/terminals/20000001")
    assert page.locator("[data-testid=key-algorithm]").inner_text() == "DES/TDES"
    page.select_option("[data-testid=algorithm]", "sm4")
    page.fill("[data-testid=algorithm-reason]", "国密改造，工单 2048")
    page.click("[data-testid=set-algorithm]")
    page.wait_for_url(f"{live.url}/terminals/20000001")
    assert page.locator("[data-testid=key-algorithm]").inner_text() == "SM4 (国密)"
    assert page.locator("[data-testid=resign-requested]").inner_text().startswith("是")
    with live.env.db.engine.connect() as conn:
        t = conn.execute(select(s.terminals).where(s.terminals.c.terminal_id == "20000001")).one()
        audit = conn.execute(select(s.audit_log).where(s.audit_log.c.action == "terminal.set_algorithm")).one()
    assert t.algorithm == "sm4" and audit.detail == "国密改造，工单 2048" and audit.actor == "support"
