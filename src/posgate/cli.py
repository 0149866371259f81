"""The ``posgate`` command: one Typer app; each part of the product registers its own commands.

Heavy imports (FastAPI, Textual, SQLAlchemy) stay inside the commands that need them, so
``posgate decode`` answers instantly.
"""

from __future__ import annotations

import json
import sys

import typer

from posgate import __version__

app = typer.Typer(
    help="posgate: a CUP POS acquiring host, POS terminal and merchant console.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"posgate {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """posgate command line."""


@app.command()
def decode(
    hex_message: list[str] = typer.Argument(..., metavar="HEX...", help="The message in hex (framed or bare, spaces allowed); '-' reads stdin."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    profile: str | None = typer.Option(None, "--profile", help="Dialect profile to decode with (default: the one the bytes point to, else the CUP baseline)."),
) -> None:
    """Print a CUP message field by field, sub-fields included, with card data masked."""
    from posgate.dialect.decode import DecodeInputError, decode_any
    from posgate.dialect.profiles import PROFILES

    if profile is not None and profile not in PROFILES:
        typer.echo(f"error: no dialect profile {profile!r}: one of {', '.join(PROFILES)}", err=True)
        raise typer.Exit(2)
    text = sys.stdin.read() if hex_message == ["-"] else "".join(hex_message)
    try:
        result = decode_any(text, PROFILES[profile] if profile else None)
    except DecodeInputError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(result.as_json(), ensure_ascii=False, indent=2))
    else:
        typer.echo(result.as_text())


def _register() -> None:
    # Each part owns a module that adds its commands to ``app``; a part not built yet is absent.
    import importlib

    for module in ("posgate.host.cli", "posgate.store.cli", "posgate.terminal.cli", "posgate.console.cli", "posgate.fleet.cli",
                   "posgate.clearing.cli", "posgate.network.cli"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name and (e.name == module or module.startswith(e.name + ".")):
                continue
            raise
        mod.register(app)


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
