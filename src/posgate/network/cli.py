"""``posgate network ...``: run the card network, switch its faults at run time.

``posgate network serve`` prints its addresses as its first lines (``--port 0`` and
``--control-port 0`` pick free ones, which tests and ``posgate chaos`` read).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from pathlib import Path

import typer

from posgate.cli_ports import port_check

network_app = typer.Typer(help="The card network (issuers behind the host-to-host dialect) to route cards to.",
                          no_args_is_help=True)  # fmt: skip

ZMK_OPTION = typer.Option(Path(os.environ.get("POSGATE_ZMK_FILE", "posgate-zmk.key")), "--zmk-file",
                          help="Zone master key file shared with the acquirer (made if missing, mode 0600).")  # fmt: skip


def register(app: typer.Typer) -> None:
    app.add_typer(network_app, name="network")


@network_app.command("serve")
def serve(
    db: str = typer.Option("sqlite:///posgate-network.db", "--db", envvar="POSGATE_NETWORK_DB",
                           help="The network's own database (SQLite file or postgresql://...)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on for acquirers."),
    port: int = typer.Option(9583, "--port", help="Host-to-host port; 0 picks a free one.", callback=port_check(free=True)),
    control_port: int | None = typer.Option(None, "--control-port", help="Loopback port for run-time faults (0: a free one).",
                                             callback=port_check(free=True)),
    demo: bool = typer.Option(False, "--demo", help="Provision the demo cards (the built-in issuer's) in the network's database."),
    zmk_file: Path = ZMK_OPTION,
    slow: float = typer.Option(0.0, "--slow", help="Fault: each reply waits a random 0..S seconds (out of order)."),
    drop: float = typer.Option(0.0, "--drop", help="Fault: probability that a reply is swallowed."),
    late: float = typer.Option(0.0, "--late", help="Fault: probability that a reply comes --late-by seconds late."),
    late_by: float = typer.Option(5.0, "--late-by", help="Seconds a late reply is held."),
    duplicate: float = typer.Option(0.0, "--duplicate", help="Fault: probability that a reply is sent twice."),
    down: bool = typer.Option(False, "--down", help="Fault: refuse every connection (until 'fault down off')."),
    seed: int = typer.Option(0, "--seed", help="Seed of the fault decisions."),
    rekey_every: float = typer.Option(86_400.0, "--rekey-every", help="Seconds each connection's MAC key lives before the network pushes a new one (0: never)."),
    key_grace: float = typer.Option(30.0, "--key-grace", help="Seconds the MAC key a change replaced still verifies (messages in flight)."),
    log_level: str = typer.Option("info", "--log-level", help="debug | info | warning | error"),
) -> None:
    """Run the card network: acquirers connect over TCP and speak ISO 8583:1987 (docs/upstream.md)."""
    from posgate.host.logging import setup_logging
    from posgate.network.server import Faults, Network, NetworkConfig, load_zmk
    from posgate.store.database import Database
    from posgate.store.keyring import KeyringError

    setup_logging(log_level)
    faults = Faults(down=down, slow=slow, drop=drop, late=late, late_by=late_by, duplicate=duplicate)
    try:
        zmk = load_zmk(zmk_file)
        database = Database.open(db)
    except (KeyringError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    try:
        if demo:
            from posgate.store.demo import provision_demo

            provision_demo(database.engine, database.keyring)
        config = NetworkConfig(host=host, port=port, control_port=control_port, seed=seed, faults=faults,
                               rekey_every=rekey_every, key_grace=key_grace)  # fmt: skip
        asyncio.run(_run(Network(database, zmk, config)))
    except OSError as e:
        typer.echo(f"error: {e} (is another program listening on that port? --port 0 picks a free one)", err=True)
        raise typer.Exit(1) from None
    finally:
        database.close()


async def _run(network: object) -> None:
    from posgate.network.server import Network

    assert isinstance(network, Network)
    addr = await network.start()
    print(f"posgate network listening on {addr[0]}:{addr[1]}", flush=True)
    if network.control_address is not None:
        print(f"control on {network.control_address[0]}:{network.control_address[1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await network.close()


@network_app.command("fault")
def fault(
    command: list[str] = typer.Argument(..., help="NAME VALUE (down on|off, slow S, drop P, late P, late_by S, duplicate P), or calm, or stats."),
    control: str = typer.Option(..., "--control", help="HOST:PORT of the network's control port."),
) -> None:
    """Switch a fault of a running network (its --control-port)."""
    line = " ".join(command)
    if command[0] not in ("calm", "stats"):
        line = "fault " + line
    if '"error"' in _ask(control, line):
        raise typer.Exit(1)


@network_app.command("rekey")
def rekey(
    control: str = typer.Option(..., "--control", help="HOST:PORT of the network's control port."),
) -> None:
    """Push a new MAC key (0800, 70 = 101) to every signed-on acquirer connection now."""
    reply = _ask(control, "rekey")
    if '"error"' in reply or not reply:
        raise typer.Exit(1)


def _ask(control: str, line: str) -> str:
    """``line`` to the control port named by ``--control`` (HOST:PORT); its answer, printed."""
    host, _, port = control.rpartition(":")
    if not port.isdigit():
        typer.echo("error: --control wants HOST:PORT", err=True)
        raise typer.Exit(2)
    reply = send_control((host or "127.0.0.1", int(port)), line)
    typer.echo(reply)
    return reply


def send_control(address: tuple[str, int], line: str, timeout: float = 5.0) -> str:
    """One command to a network's control port; its one-line JSON answer."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(line.encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    with contextlib.suppress(Exception):
        return data.decode().strip()
    return ""
