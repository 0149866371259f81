"""``add_tui_command`` registers ``tui`` on a Typer group (the ``posgate terminal`` one)."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from posgate.terminal.tui import add_tui_command


def test_add_tui_command_registers_tui_with_its_options():
    group = typer.Typer()

    @group.callback()
    def _settings(ctx: typer.Context) -> None:
        ctx.obj = None

    add_tui_command(group)
    result = CliRunner().invoke(group, ["tui", "--help"], env={"COLUMNS": "120", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    for option in ("--stub", "--lang", "--operator"):
        assert option in result.output


async def test_build_app_opens_the_terminal_journal(tmp_path):
    from posgate.terminal.cli import Settings
    from posgate.terminal.tui import ClientBackend, StubBackend, build_app

    settings = Settings(tmp_path, "127.0.0.1", 18583, "10000001", None, None, "6000030000", "603100000000", None, None, 5.0)
    app = build_app(settings, lang="en")
    assert isinstance(app.backend, ClientBackend)
    assert app.backend.address == "127.0.0.1:18583" and app.operator == "01" and app.lang == "en"
    assert app.backend.state.config.terminal_id == "10000001"
    assert app.backend.verify_operator("00", "123456", "supervisor") == ""
    assert app.backend.verify_operator("00", "000000", "supervisor") != ""
    assert app.slip_dir == tmp_path / "slips"
    await app.backend.close()
    assert isinstance(build_app(stub=True).backend, StubBackend)
