"""D6 (sign-on lapse) across the console, ``posgate admin`` and the real host pipeline.

* One reinstatement: whether the console (page or API) or the CLI reinstates a merchant the
  host suspended for a lapse, its terminals' next sign-on keeps it active.
* The daily sweep suspends a lapsed merchant on the day it lapses (not when a terminal next
  calls), warns the day before (console notice for the merchant's users and support, a log
  line), and is the sign-on gate's rule: a given clock, no waiting.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from pair.harness import PairTerminal
from posgate.console.fmt import today
from posgate.store import schema as s
from posgate.store.admin import lapse_warnings, sweep_lapses

from .helpers import BISTRO, MART, TZ, Env, api_token, csrf_of, login
from .test_host_integration import make_world


def _last_sign_on(env: Env, mid: str, day: str) -> None:
    """Make ``day`` the merchant's last sign-on day (register and terminals)."""
    with env.db.engine.begin() as conn:
        conn.execute(update(s.sign_ons).where(s.sign_ons.c.merchant_id == mid).values(day=day))
        pk = conn.execute(select(s.merchants.c.id).where(s.merchants.c.merchant_id == mid)).scalar_one()
        conn.execute(update(s.terminals).where(s.terminals.c.merchant_pk == pk).values(signed_on_day=day))


def _merchant(env: Env, mid: str) -> Any:
    with env.db.engine.connect() as conn:
        return conn.execute(select(s.merchants).where(s.merchants.c.merchant_id == mid)).mappings().one()


def _days_ago(n: int) -> str:
    return (date.fromisoformat(today(TZ)) - timedelta(days=n)).isoformat()


def _cli_env(env: Env) -> dict[str, str]:
    """The CLI in a subprocess, on this checkout's source and the test database's master key."""
    import posgate

    src = str(Path(posgate.__file__).parent.parent)
    return {"POSGATE_MASTER_KEY_FILE": str(env.path.with_name("posgate.db.key")), "PATH": "/usr/bin", "PYTHONPATH": src}


def _lapsed_at_sign_on(env: Env) -> PairTerminal:
    """Demo Bistro's last sign-on 5 days ago: its terminal's sign-on finds it lapsed (D6)."""
    _last_sign_on(env, BISTRO, _days_ago(5))
    pos = PairTerminal(make_world(env.db), "20000001")  # type: ignore[arg-type]
    assert pos.sign_on().code == "03"
    m = _merchant(env, BISTRO)
    assert m["status"] == "suspended" and m["suspended_by"] == "system:D6"
    return pos


def _reinstated_sticks(env: Env, pos: PairTerminal) -> None:
    assert _merchant(env, BISTRO)["status"] == "active"
    assert pos.sign_on().code == "00"  # the real host pipeline: not lapsed again
    assert _merchant(env, BISTRO)["status"] == "active"
    with env.db.engine.connect() as conn:
        kinds = [r.kind for r in conn.execute(select(s.sign_ons.c.kind).where(s.sign_ons.c.merchant_id == BISTRO)
                                              .order_by(s.sign_ons.c.id))]  # fmt: skip
    assert kinds[-2:] == ["reinstated", "sign_on"]


def test_reinstated_in_the_console_api_stays_active_at_the_next_sign_on(env: Env) -> None:
    pos = _lapsed_at_sign_on(env)
    c = env.client()
    r = c.post(f"/api/v1/merchants/{BISTRO}/reinstate", headers=api_token(c, "admin"), json={"reason": "called us"})
    assert r.status_code == 200, r.text
    _reinstated_sticks(env, pos)


def test_reinstated_on_the_merchants_page_stays_active_at_the_next_sign_on(env: Env) -> None:
    pos = _lapsed_at_sign_on(env)
    c = login(env.client(), "admin")
    r = c.post(f"/merchants/{BISTRO}/reinstate", data={"reason": "called us", "csrf_token": csrf_of(c, "/merchants")},
               follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    _reinstated_sticks(env, pos)
    with env.db.engine.connect() as conn:
        a = conn.execute(select(s.audit_log).where(s.audit_log.c.action == "merchant.reinstate")
                         .order_by(s.audit_log.c.id.desc())).mappings().first()  # fmt: skip
    assert a is not None and a["actor"] == "admin" and a["detail"] == "called us"


def test_reinstated_with_the_cli_stays_active_at_the_next_sign_on(env: Env) -> None:
    pos = _lapsed_at_sign_on(env)
    exe = str(Path(sys.executable).with_name("posgate"))
    r = subprocess.run([exe, "admin", "merchant", "reinstate", BISTRO, "--reason", "called us", "--db",
                        f"sqlite:///{env.path}"], capture_output=True, text=True, timeout=60,
                       env=_cli_env(env))  # fmt: skip
    assert r.returncode == 0, r.stderr
    _reinstated_sticks(env, pos)


def test_reinstating_an_active_merchant_is_refused_and_changes_nothing(env: Env) -> None:
    c = env.client()
    with env.db.engine.connect() as conn:
        n = len(conn.execute(select(s.sign_ons)).all())
    r = c.post(f"/api/v1/merchants/{MART}/reinstate", headers=api_token(c, "admin"), json={"reason": "x"})
    assert r.status_code == 409
    with env.db.engine.connect() as conn:
        assert len(conn.execute(select(s.sign_ons)).all()) == n


# ------------------------------------------------------------------ the daily sweep


def _noon(day: str) -> datetime:
    """12:00 in Shanghai on ``day``, as UTC."""
    return datetime.fromisoformat(f"{day}T04:00:00+00:00").astimezone(UTC)


def test_sweep_suspends_on_the_lapse_day_and_warns_the_day_before(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    _last_sign_on(env, BISTRO, "2026-03-01")  # no sign-on on the 2nd, 3rd, 4th: lapses on the 5th
    _last_sign_on(env, MART, "2026-03-03")
    caplog.set_level(logging.WARNING, logger="posgate.admin")
    with env.db.engine.begin() as conn:
        r3 = sweep_lapses(conn, _noon("2026-03-03"))
    assert (r3.suspended, r3.warned) == ([], [])
    with env.db.engine.begin() as conn:
        r4 = sweep_lapses(conn, _noon("2026-03-04"))
    assert r4.suspended == [] and [(w.merchant_id, w.lapse_day) for w in r4.warned] == [(BISTRO, "2026-03-05")]
    assert f"merchant {BISTRO} lapses on 2026-03-05" in caplog.text
    assert _merchant(env, BISTRO)["status"] == "active"
    # 00:05 on the 5th in Shanghai (still the 4th in UTC): the lapse day has begun.
    with env.db.engine.begin() as conn:
        r5 = sweep_lapses(conn, datetime(2026, 3, 4, 16, 5, tzinfo=UTC))
    assert r5.day == "2026-03-05" and r5.suspended == [BISTRO]
    m = _merchant(env, BISTRO)
    assert m["status"] == "suspended" and m["suspended_by"] == "system:D6"
    assert f"merchant {BISTRO} suspended" in caplog.text
    with env.db.engine.begin() as conn:  # a second run the same day changes nothing
        again = sweep_lapses(conn, datetime(2026, 3, 5, 1, 0, tzinfo=UTC))
    assert again.suspended == [] and _merchant(env, MART)["status"] == "active"


def test_sweep_and_sign_on_gate_agree_on_the_day(env: Env) -> None:
    """The day before the lapse the host lets the terminal sign on (and so the lapse is off);
    on the lapse day the sweep had suspended it, and the host refuses: one rule."""
    _last_sign_on(env, BISTRO, _days_ago(3))  # lapses tomorrow
    with env.db.engine.begin() as conn:
        assert [w.merchant_id for w in sweep_lapses(conn).warned] == [BISTRO]
    pos = PairTerminal(make_world(env.db), "20000001")  # type: ignore[arg-type]
    assert pos.sign_on().code == "00"
    with env.db.engine.begin() as conn:
        assert sweep_lapses(conn).warned == []
        assert lapse_warnings(conn) == []


def test_lapse_notice_in_the_console_for_the_merchant_and_support(env: Env) -> None:
    _last_sign_on(env, BISTRO, _days_ago(3))
    lapse_day = (date.fromisoformat(today(TZ)) + timedelta(days=1)).isoformat()
    for user, sees in (("bistro-admin", True), ("support", True), ("mart-admin", False)):
        c = login(env.client(), user)
        html = c.get("/").text
        assert ('data-testid="lapse-warning"' in html) is sees, user
        if sees:
            assert BISTRO in html and lapse_day in html
            assert "签到" in html  # zh-CN by default
    c = login(env.client(), "bistro-admin")
    c.get("/lang/en")
    html = c.get("/").text
    assert "unless a terminal signs on today" in html


def test_admin_sweep_cli(env: Env) -> None:
    _last_sign_on(env, BISTRO, _days_ago(4))
    exe = str(Path(sys.executable).with_name("posgate"))
    r = subprocess.run([exe, "admin", "sweep", "--json", "--db", f"sqlite:///{env.path}"], capture_output=True,
                       text=True, timeout=60,
                       env=_cli_env(env))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert f'"{BISTRO}"' in r.stdout
    assert _merchant(env, BISTRO)["status"] == "suspended"


def test_next_sweep_is_at_local_midnight() -> None:
    from posgate.host.participants.lapse import seconds_to_next_day

    # 15:30 UTC = 23:30 in Shanghai: the next local day begins in 30 minutes
    assert seconds_to_next_day(datetime(2026, 3, 4, 15, 30, tzinfo=UTC), TZ) == 1800
    assert seconds_to_next_day(datetime(2026, 3, 4, 16, 0, tzinfo=UTC), TZ) == 86400


@pytest.mark.slow
def test_serve_sweeps_at_start(env: Env, tmp_path: Path) -> None:
    """``posgate serve`` suspends a lapsed merchant at start, before any terminal calls in."""
    import time

    from .helpers import free_port

    _last_sign_on(env, BISTRO, _days_ago(4))
    exe = str(Path(sys.executable).with_name("posgate"))
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([exe, "serve", "--db", f"sqlite:///{env.path}", "--port", "0", "--console-port",
                             str(free_port()), "--no-console"], stdout=log, stderr=subprocess.STDOUT, env=_cli_env(env))  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while _merchant(env, BISTRO)["status"] != "suspended":
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "no sweep at start: " + (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        assert _merchant(env, MART)["status"] == "active"
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()
    assert "D6 sweep" in (tmp_path / "serve.log").read_text()
