"""Status upload (状态上送, 0820/362) between the product terminal core and the host pipeline.

The walk found it could not be started at all: no CLI or TUI command, and the host never set
the reply header's processing requirement to 2 (1.3), so the core's support for it never ran.
The host now asks in the reply to a parameter download; the terminal uploads right after that
reply, or when the cashier asks (``posgate terminal status-upload``, TUI admin menu), and the
host keeps what came: the terminal's parameters as it runs with them.
"""

from __future__ import annotations

from pathlib import Path

from posgate.terminal.machine import Input

from .harness import make_world
from .test_terminal_core_pair import Driver


def test_the_host_asks_for_a_status_after_a_parameter_download() -> None:
    world = make_world()
    world.store.update_terminal("10000001", params_pending=True, params={"12": "45", "22": "演示便利店二号店"})
    t = Driver(world)
    r = t.run(Input("sign_on", scheme="004"))
    assert r.approved, r.message
    assert t.purposes(0) == ["sign_on", "parameter_download", "status_upload"]
    status = world.store.terminal("10000001").last_status_upload  # type: ignore[union-attr]
    assert status is not None and status["day"] == "2024-05-06"
    assert status["params"]["12"] == "45" and status["params"]["22"] == "演示便利店二号店"
    assert status["params"]["23"] == "3"  # the host's default, as the terminal now runs with it


def test_status_upload_on_demand() -> None:
    world = make_world()
    t = Driver(world)
    assert t.run(Input("sign_on", scheme="004")).approved
    assert world.store.terminal("10000001").last_status_upload is None  # type: ignore[union-attr]
    world.clock.advance(minutes=5)
    r = t.run(Input("status_upload"))
    assert r.approved and r.message_en == "Status uploaded", r.message
    sent = t.sent[-1].message
    assert sent.mti == "0820" and sent.text(60)[8:11] == "362"
    status = world.store.terminal("10000001").last_status_upload  # type: ignore[union-attr]
    assert status is not None and status["stan"] == r.stan and status["params"]["22"] == "演示便利店"


def test_cli_status_upload_command(tmp_path: Path) -> None:
    from terminal.hostd import HostThread
    from terminal.test_cli import cli

    with HostThread() as host:
        state = tmp_path / "s"
        assert cli(state, host.port, "signon", "--json")[0] == 0
        rc, r = cli(state, host.port, "status-upload", "--json")
        assert rc == 0 and isinstance(r, dict) and r["approved"] and r["operation"] == "status_upload", r
        status = host.store.terminal("10000001").last_status_upload  # type: ignore[union-attr]
        assert status is not None and status["stan"] == r["stan"] and "12" in status["params"]
        rc, out = cli(state, host.port, "status-upload")
        assert rc == 0 and "状态上送成功" in out
