"""``posgate terminal tui`` is registered with its options, and builds the emulator on the journal."""

from __future__ import annotations

import sys

from typer.testing import CliRunner

from posgate.cli import app


def test_posgate_terminal_tui_is_registered_with_its_options():
    result = CliRunner().invoke(app, ["terminal", "tui", "--help"], env={"COLUMNS": "120", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    for option in ("--stub", "--lang", "--operator"):
        assert option in result.output


def test_posgate_starts_without_loading_textual(tmp_path):
    import subprocess

    code = "import sys, posgate.cli; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


async def test_build_app_opens_the_terminal_journal(tmp_path):
    from posgate.terminal.cli import Settings
    from posgate.terminal.tui import ClientBackend, StubBackend, build_app

    settings = Settings(tmp_path, "127.0.0.1", 18583, "10000001", None, None, "6000030000", "603100000000", None, None, 5.0)
    app = build_app(settings, lang="en")
    assert isinstance(app.backend, ClientBackend)
    assert app.backend.address == "127.0.0.1:18583" and app.lang == "en"
    assert app.login and app.operator == "--" and app.suggested_operator == "01"  # nobody signed in yet
    assert app.backend.state.config.terminal_id == "10000001"
    assert app.backend.verify_operator("00", "123456", "supervisor") == ""
    assert app.backend.verify_operator("00", "000000", "supervisor") != ""
    assert app.slip_dir == tmp_path / "slips"
    await app.backend.close()
    assert isinstance(build_app(stub=True).backend, StubBackend)
