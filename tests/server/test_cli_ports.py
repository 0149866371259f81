"""An impossible port on the command line (``posgate serve --port 99999``) is refused where the
option is parsed: a message naming the option and the valid range, exit status 2, and nothing
started (no database file made, no socket opened). Before, serve and network serve took 99999
and only failed, in English and deep in asyncio, once the database was opened and migrated."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from posgate.cli import app


def _db(tmp_path: Path) -> list[str]:
    return ["--db", f"sqlite:///{tmp_path / 'x.db'}"]


CASES: list[tuple[list[str], str, str]] = [
    # (arguments, the option named, the range stated)
    (["serve", "--port", "99999"], "--port", "from 0 to 65535"),
    (["serve", "--port", "-1"], "--port", "from 0 to 65535"),
    (["serve", "--console-port", "65536"], "--console-port", "from 0 to 65535"),
    (["network", "serve", "--port", "70000"], "--port", "from 0 to 65535"),
    (["network", "serve", "--control-port", "99999"], "--control-port", "from 0 to 65535"),
    (["fleet", "--port", "0"], "--port", "from 1 to 65535"),
    (["fleet", "--port", "123456"], "--port", "from 1 to 65535"),
    (["terminal", "--port", "99999", "echo"], "--port", "from 1 to 65535"),
]


@pytest.mark.parametrize(("args", "option", "range_"), CASES)
def test_out_of_range_port_is_refused_before_anything_starts(tmp_path: Path, args: list[str], option: str, range_: str) -> None:
    if args[0] == "terminal":
        args = ["terminal", "--state", str(tmp_path / "state"), *args[1:]]
    else:
        args = [*args, *_db(tmp_path)]
    result = CliRunner().invoke(app, args)
    out = " ".join((result.output or "").replace("│", " ").split())  # Click wraps long messages in its box
    assert result.exit_code == 2, out
    assert option in out and range_ in out and "out of range" in out, out
    assert not (tmp_path / "x.db").exists() and not (tmp_path / "state").exists()
