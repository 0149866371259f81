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
