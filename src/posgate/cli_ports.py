"""Port options of the commands (``posgate serve --port``, ``terminal --port``, ``network serve
--port/--control-port``, ``fleet --port``): checked where Click parses them, so an impossible port
(``--port 99999``) is refused before anything starts, with a message that names the option and
the valid range (exit status 2, Click's usage error)."""

from __future__ import annotations

from collections.abc import Callable

import click
import typer

MAX_PORT = 65535


def port_check(*, free: bool) -> Callable[[click.Context, click.Parameter, int | None], int | None]:
    """A Click callback for a TCP port option; ``free``: 0 is allowed and picks a free port."""
    low = 0 if free else 1

    def check(_ctx: click.Context, _param: click.Parameter, value: int | None) -> int | None:
        if value is None or low <= value <= MAX_PORT:
            return value
        hint = " (0 picks a free port)" if free else ""
        raise typer.BadParameter(f"must be a TCP port number from {low} to {MAX_PORT}{hint}; {value} is out of range.")

    return check
