"""The upstream links' status for the acquirer's staff: ``/upstream``, ``GET /api/v1/upstream``,
the notices and ``/metrics``, against a real network and a real link (``upstream_kit``)."""

from __future__ import annotations

import re

from network.netkit import wait_for
from pair.harness import PairTerminal
from posgate.console.app import create_app
from posgate.console.settings import ConsoleSettings
from posgate.host import metrics

from .helpers import Env, api_token, login
from .upstream_kit import Linked, start_linked

OK_MASKED = "621214*********0012"


def link_json(c, headers) -> dict:
    r = c.get("/api/v1/upstream", headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["configured"] is True
    (lk,) = body["links"]
    return lk


def notice_keys(c, headers) -> set[str]:
    return {n["key"] for n in c.get("/api/v1/notices", headers=headers).json()}


def test_staff_see_the_link_and_its_queue_through_an_outage(linked: Linked) -> None:
    c = linked.env.client()
    sup = api_token(c, "support")
    lk = link_json(c, sup)
    host, port = linked.network.address
    assert (lk["name"], lk["host"], lk["port"], lk["state"]) == ("cupnet", host, port, "signed_on")
    assert lk["signed_on"] >= 1 and lk["pool"] == 2 and lk["last_message_at"] is not None  # the sign-on reply
    assert lk["queue"]["pending"] == 0 and lk["queue"]["items"] == []
    assert not notice_keys(c, sup) & {"upstream_down", "upstream_queue"}

    # a routed sale whose reply the network drops: 98 at the terminal, a reversal queued upstream
    pos = PairTerminal(linked)  # type: ignore[arg-type]
    assert pos.sign_on().code == "00"
    linked.fault("drop", "1")
    sale = pos.sale("ok", 5_000)
    assert sale.code == "98"
    rrn = sale.reply.text(37) if sale.reply is not None else ""
    linked.fault("down", "on")  # and then the network goes away
    wait_for(lambda: linked.state() == "down", 15, "the link to be shown down")
    lk = link_json(c, sup)
    assert lk["state"] == "down" and lk["signed_on"] == 0 and lk["last_error_kind"] in ("timeout", "lost", "closed")
    assert lk["in_flight"] == 0  # sign-on attempts to a closed door are not requests in flight
    q = lk["queue"]
    assert (q["reversals"], q["advices"], q["pending"]) == (1, 0, 1)
    (item,) = q["items"]
    assert item["kind"] == "reversal" and item["pan_masked"] == OK_MASKED and item["amount"] == 5_000
    assert item["attempts"] >= 1  # tried while the replies were dropped
    assert item["next_try_at"] is None  # waits for the link
    if rrn:
        assert item["rrn"] == rrn
    assert q["oldest_age_seconds"] is not None and q["oldest_age_seconds"] >= 0
    assert "6212142000000000012" not in c.get("/api/v1/upstream", headers=sup).text

    # the bell: a link down, for staff only; the queue's age once past the threshold (0 here)
    assert "upstream_down" in notice_keys(c, sup)
    assert "upstream_queue" not in notice_keys(c, sup)  # 5 minutes by default
    linked.app.state.console.settings.saf_stale_minutes = 0
    found = {n["key"]: n for n in c.get("/api/v1/notices", headers=sup).json()}
    assert found["upstream_queue"]["count"] == 1 and found["upstream_queue"]["href"] == "/upstream"
    assert found["upstream_down"]["items"] == ["cupnet"] and "cupnet" in found["upstream_down"]["message"]
    assert not notice_keys(c, api_token(c, "mart-admin")) & {"upstream_down", "upstream_queue"}

    # the page, in Chinese (the default) and English
    login(c, "support")
    html = c.get("/upstream").text
    assert 'data-state="down"' in html and "中断" in html and OK_MASKED in html and "链路签到后" in html
    c.get("/lang/en")
    html = c.get("/upstream").text
    assert ">Down<" in html and "Reversal" in html and "when the link is signed on" in html
    assert 'href="/upstream"' in html  # in the navigation

    # metrics: the link is down, one reversal waits
    unwatch = metrics.watch_upstream(linked.upstream.status)
    try:
        text = metrics.metrics_text().decode()
        assert 'posgate_upstream_link_up{link="cupnet"} 0.0' in text
        assert 'posgate_upstream_link_state{link="cupnet",state="down"} 1.0' in text
        assert 'posgate_upstream_saf_pending{kind="reversal",link="cupnet"} 1.0' in text
        assert float(re.search(r'posgate_upstream_saf_oldest_seconds\{link="cupnet"\} (\S+)', text)[1]) > 0
        assert metrics.upstream_health()["cupnet"]["state"] == "down"
    finally:
        unwatch()
    assert "posgate_upstream_link_up{" not in metrics.metrics_text().decode()

    # the network returns: signed on again, the reversal goes up, the queue empties
    linked.calm()
    linked.fault("down", "off")
    wait_for(lambda: link_json(c, sup)["state"] == "signed_on", 20, "the link to sign on again")
    wait_for(lambda: link_json(c, sup)["queue"]["pending"] == 0, 20, "the reversal to go up")
    assert not notice_keys(c, sup) & {"upstream_down", "upstream_queue"}
    assert "Nothing waits to be sent." in c.get("/upstream").text


def test_merchants_do_not_see_the_links(linked: Linked) -> None:
    c = linked.env.client()
    for user in ("mart-admin", "mart-clerk"):
        assert c.get("/api/v1/upstream", headers=api_token(c, user)).status_code == 403
        login(c, user)
        assert c.get("/upstream").status_code == 403
        assert 'href="/upstream"' not in c.get("/").text
    assert c.get("/api/v1/upstream", headers=api_token(c, "admin")).json()["links"][0]["state"] == "signed_on"


def test_without_an_upstream_the_page_says_so(env: Env, tmp_path) -> None:
    c = env.client()  # a console run on its own (posgate console / tests): cannot see the host's links
    login(c, "admin")
    assert "runs apart from the host" not in c.get("/upstream").text  # Chinese by default
    c.get("/lang/en")
    assert "runs apart from the host" in c.get("/upstream").text
    assert c.get("/api/v1/upstream", headers=api_token(c, "admin")).json() == {
        "configured": False, "links": [], "in_host": False, "stale_minutes": 5}
    # inside posgate serve, with no --upstream
    app = create_app(ConsoleSettings(engine=env.db.engine, keyring=env.db.keyring, backup_dir=tmp_path / "b",
                                     scheduler=False, in_host=True))  # fmt: skip
    env.app = app
    c = env.client()
    login(c, "support")
    html = c.get("/upstream").text
    assert 'data-testid="no-upstream"' in html and "未配置上游链路" in html
    c.get("/lang/en")
    assert "No upstream link is configured" in c.get("/upstream").text
    body = c.get("/api/v1/upstream", headers=api_token(c, "support")).json()
    assert body["configured"] is False and body["in_host"] is True


def test_a_second_link_in_the_same_process_is_listed_apart(env: Env, tmp_path) -> None:
    """Status snapshots are per link: a link whose network is not there is down, the other is not."""
    from network.netkit import ZMK
    from posgate.network.upstream import LinkConfig, Upstream

    linked = start_linked(env, tmp_path)
    try:
        from .helpers import free_port

        up = Upstream(env.db, [LinkConfig("cupnet", *linked.network.address), LinkConfig("nowhere", "127.0.0.1", free_port())],
                      ZMK, journal_path=tmp_path / "second-journal.db", timeout=0.5, down_after=0.5).start()  # fmt: skip
        try:
            wait_for(lambda: {lk.name: lk.state for lk in up.status().links} == {"cupnet": "signed_on", "nowhere": "down"},
                     15, "one link up, one down")  # fmt: skip
            nowhere = next(lk for lk in up.status().links if lk.name == "nowhere")
            assert (nowhere.last_error_kind, nowhere.last_error) == ("refused", "connection refused")
            assert nowhere.last_message_at is None and nowhere.in_flight == 0
        finally:
            up.stop()
    finally:
        linked.upstream.stop()
        linked.network.close()


def test_durations_read_as_words() -> None:
    from posgate.console.upstream import duration

    def fmt(msgid: str, **kw: object) -> str:
        return msgid.format(**kw)

    assert [duration(fmt, s) for s in (-1, 42, 60 * 7 + 5, 3600 * 3 + 60 * 5, 86_400 * 2 + 3600 * 4 + 9)] == [
        "0 s", "42 s", "7 min", "3 h 5 min", "2 d 4 h"]
