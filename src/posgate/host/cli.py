"""``posgate serve``: the acquiring host (and the console, when installed) in one process.

Start-up in explicit steps (uvicorn's shape): open the database and apply the migrations,
provision the demo data if asked, start the commit workers and the listening socket, log the
address (the first log line, so a supervisor or a test can read the port chosen by
``--port 0``), start the console on the same event loop, then wait for SIGTERM/SIGINT and
shut down gracefully (see ``posgate.host.server``).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
import socket
import sys
from collections.abc import Iterator
from typing import Any

import typer

from posgate.cli_ports import port_check

log = logging.getLogger("posgate.host")
startup = logging.getLogger("posgate.startup")  # always shown (see posgate.host.logging)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    demo: bool = typer.Option(False, "--demo", help="Provision the demo merchants, terminals and cards (idempotent)."),
    db: str = typer.Option("sqlite:///posgate.db", "--db", envvar="POSGATE_DB", help="Database URL (SQLite file or postgresql://...)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on, for terminals and the console."),
    port: int = typer.Option(8583, "--port", help="Terminal (ISO 8583) port; 0 picks a free one.", callback=port_check(free=True)),
    console_port: int = typer.Option(8000, "--console-port", help="HTTP port of the console (and /metrics, /health).",
                                      callback=port_check(free=True)),
    no_console: bool = typer.Option(False, "--no-console", help="Do not start the web console (metrics are still served)."),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="Commit workers (PostgreSQL only; SQLite commits on the event loop, fsyncs in a thread)."),
    batch_max: int = typer.Option(256, "--batch-max", min=1, help="Requests per group commit at most."),
    max_connections: int = typer.Option(2000, "--max-connections", min=1, help="Terminal connections at most."),
    idle_timeout: float = typer.Option(300.0, "--idle-timeout", help="Close a terminal connection silent this long (s)."),
    frame_timeout: float = typer.Option(10.0, "--frame-timeout", help="Close a connection whose partial frame is older (s)."),
    log_level: str = typer.Option("info", "--log-level", help="debug | info | warning | error"),
    upstream: list[str] = typer.Option([], "--upstream", help="An upstream link NAME=HOST:PORT (a card network: posgate network serve); repeatable. Routes (posgate admin route add) send BIN ranges to it."),
    upstream_timeout: float = typer.Option(2.0, "--upstream-timeout", help="Seconds to wait for the network's reply before answering 98 and reversing upstream."),
    upstream_journal: str | None = typer.Option(None, "--upstream-journal", help="Store-and-forward journal file (default: beside the master key file)."),
    upstream_grace: float = typer.Option(10.0, "--upstream-grace", help="Seconds after which an approval the host did not keep is reversed upstream (longer than a commit takes)."),
    upstream_rekey_every: float = typer.Option(0.0, "--upstream-rekey-every", help="Seconds after which each upstream connection asks the network for a new MAC key (0: leave it to the network, which changes them daily)."),
    zmk_file: str = typer.Option("posgate-zmk.key", "--zmk-file", envvar="POSGATE_ZMK_FILE", help="Zone master key file shared with the network (made if missing)."),
) -> None:
    """Run the acquiring host: terminals connect over TCP, browsers to the console."""
    from posgate.fdlimit import raise_fd_limit
    from posgate.host.logging import setup_logging
    from posgate.host.server import ServerConfig
    from posgate.store.keyring import KeyringError

    setup_logging(log_level)
    raise_fd_limit()  # a socket per terminal connection: --max-connections needs as many descriptors
    config = ServerConfig(host=host, port=port, workers=workers, batch_max=batch_max, max_connections=max_connections,
                          idle_timeout=idle_timeout, frame_timeout=frame_timeout)  # fmt: skip
    links = []
    try:
        from posgate.network.upstream import LinkConfig

        links = [LinkConfig.parse(u) for u in upstream]
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    up = UpstreamOptions(links, upstream_timeout, upstream_journal, zmk_file, upstream_grace,
                         upstream_rekey_every) if links else None  # fmt: skip
    try:
        code = run(db, config, demo=demo, console_port=console_port, console=not no_console, upstream=up)
    except KeyringError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    except OSError as e:
        typer.echo(f"error: {e} (is another program listening on that port? --port 0 and --console-port 0 pick free ones)",
                   err=True)  # fmt: skip
        raise typer.Exit(1) from None
    raise typer.Exit(code)


class UpstreamOptions:
    """``--upstream`` and its companions (posgate.network.upstream)."""

    def __init__(self, links: list[Any], timeout: float = 2.0, journal: str | None = None,
                 zmk_file: str = "posgate-zmk.key", grace: float = 10.0, rekey_every: float = 0.0) -> None:  # fmt: skip
        self.links, self.timeout, self.journal, self.zmk_file = links, timeout, journal, zmk_file
        self.grace = grace
        self.rekey_every = rekey_every

    def start(self, database: Any) -> Any:
        from pathlib import Path

        from posgate.network.server import load_zmk
        from posgate.network.upstream import Upstream

        key_path = getattr(database.keyring, "path", None)
        journal = Path(self.journal) if self.journal else (Path(key_path).parent if key_path else Path(".")) / "upstream-journal.db"
        return Upstream(database, self.links, load_zmk(Path(self.zmk_file)), journal_path=journal,
                        timeout=self.timeout, grace=self.grace, rekey_every=self.rekey_every).start()  # fmt: skip


def run(db_url: str, config: Any, *, demo: bool = False, console_port: int | None = 8000, console: bool = True,
        upstream: UpstreamOptions | None = None) -> int:  # fmt: skip
    from posgate.host.server import new_event_loop
    from posgate.store.database import Database

    notes: list[str] = []
    database = Database.open(db_url)
    try:
        if demo:
            from posgate.store.demo import provision_demo

            created = provision_demo(database.engine, database.keyring)
            notes.append(f"demo data provisioned ({created} objects created)" if created else "demo data present")
        links = upstream.start(database) if upstream is not None else None
        unwatch = None
        if links is not None:  # the links' state and queue in /metrics and /health
            from posgate.host.metrics import watch_upstream

            unwatch = watch_upstream(links.status)
        try:
            with asyncio.Runner(loop_factory=new_event_loop) as runner:
                return runner.run(_main(database, config, notes, console_port, console, links))
        finally:
            if unwatch is not None:
                unwatch()
            if links is not None:
                links.stop()
    finally:
        database.close()


class _StopSignal:
    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.signal: str | None = None

    def __call__(self, sig: signal.Signals) -> None:
        self.signal = sig.name
        self.event.set()


@contextlib.contextmanager
def _signals(loop: asyncio.AbstractEventLoop, stop: _StopSignal) -> Iterator[None]:
    sigs = (signal.SIGTERM, signal.SIGINT)
    for sig in sigs:
        loop.add_signal_handler(sig, stop, sig)
    try:
        yield
    finally:
        for sig in sigs:
            loop.remove_signal_handler(sig)


async def _main(database: Any, config: Any, notes: list[str], console_port: int | None, console: bool,
                upstream: Any = None) -> int:  # fmt: skip
    from posgate.host import metrics
    from posgate.host.logging import fields
    from posgate.host.server import Host, settle_heap

    # The HTTP port is bound first: a taken port is a clear error before anything is served
    # (and --console-port 0 gets its real port shown).
    app = _console_app(database, upstream) if console and console_port is not None else None
    sock = socket.create_server((config.host, console_port), backlog=1024) if app is not None else None
    if upstream is not None:
        from posgate.host.server import builtin_issuer_factory, make_env

        env = make_env(database)
        builtin = builtin_issuer_factory(env)
        assert builtin is not None
        host = Host(database, config, issuer_factory=upstream.issuer_factory(builtin), env=env)
        notes.append("upstream links: " + ", ".join(f"{n} {lk.address[0]}:{lk.address[1]}" for n, lk in upstream.links.items()))
    else:
        host = Host(database, config)
    addr = await host.start()
    startup.info(f"posgate host listening on {addr[0]}:{addr[1]}", extra=fields(host=addr[0], port=addr[1], db=_safe_url(database.url)))
    for note in notes:
        startup.info(note)

    http_task: asyncio.Task[None] | None = None
    http_port = console_port
    http_server: Any = None
    uvicorn_server: Any = None
    where = "metrics"
    if sock is not None:
        http_port = sock.getsockname()[1]
        uvicorn_server = _uvicorn(app, config.host, http_port)
        http_task = asyncio.create_task(uvicorn_server.serve(sockets=[sock]))
        where = "console"
    elif console_port is not None:
        http_server = await metrics.start_http(config.host, console_port)
        http_port = http_server.sockets[0].getsockname()[1]
    shown = f"http://{config.host}:{http_port}/"
    startup.info(
        f"terminals connect to {addr[0]}:{addr[1]} (TPDU 6000030000); "
        + (f"browsers to {shown}" if where == "console" else f"metrics at {shown}metrics, health at {shown}health"),
        extra=fields(terminal_port=addr[1], http_port=http_port),
    )
    sweeper = asyncio.create_task(_lapse_sweeps(database))
    stop = _StopSignal()
    loop = asyncio.get_running_loop()
    settle_heap()  # everything of the start-up is in place: out of the garbage collector's sight
    with _signals(loop, stop):
        waiters: list[asyncio.Task[Any]] = [asyncio.create_task(stop.event.wait())]
        if http_task is not None:
            waiters.append(http_task)
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    code = 0
    if stop.signal is None:  # the console stopped by itself: it could not start (port taken?)
        log.error("the console stopped (is port %s free? --console-port picks another); stopping the host", console_port)
        code = 1
    else:
        log.info("stopping (%s)", stop.signal)
    if uvicorn_server is not None and http_task is not None:
        uvicorn_server.should_exit = True
        with contextlib.suppress(BaseException):
            await http_task
    if http_server is not None:
        http_server.close()
    sweeper.cancel()
    with contextlib.suppress(BaseException):
        await sweeper
    await host.shutdown()
    return code


async def _lapse_sweeps(database: Any) -> None:
    """The daily D6 sweep (``posgate.store.admin.sweep_lapses``): at start, then on every new local
    day of the acquirer's time zone. Wakes at least hourly, so a clock change or a suspended
    machine delays a sweep by an hour at most; a sweep that fails is logged and retried then."""
    from datetime import UTC, datetime

    from posgate.host.participants.lapse import local_day, seconds_to_next_day
    from posgate.store.admin import lapse_rules, sweep_lapses

    def sweep() -> str:
        with database.engine.begin() as conn:
            result = sweep_lapses(conn)
            tz = lapse_rules(conn)[0]
        log.info("D6 sweep %s: %d suspended, %d warned", result.day, len(result.suspended), len(result.warned))
        return tz

    swept_day, tz = None, "Asia/Shanghai"
    while True:
        now = datetime.now(UTC)
        if local_day(now, tz) != swept_day:
            try:
                tz = await asyncio.to_thread(sweep)
                swept_day = local_day(now, tz)
            except Exception:  # noqa: BLE001 - logged, retried within the hour
                log.exception("the D6 sweep failed; retrying within the hour")
        await asyncio.sleep(min(3600.0, seconds_to_next_day(datetime.now(UTC), tz) + 1.0))


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _console_app(database: Any, upstream: Any = None) -> Any:
    try:
        mod = importlib.import_module("posgate.console.app")
    except ModuleNotFoundError as e:
        if e.name and "posgate.console.app".startswith(e.name):
            return None
        raise
    create_app = getattr(mod, "create_app", None)
    if create_app is None:
        return None
    # One engine and one master key for the host and the console: same process, same database;
    # the upstream links (or None) for the console's link status page (posgate.console.upstream).
    return create_app({"db_url": database.url, "engine": database.engine, "keyring": database.keyring,
                       "upstream": upstream, "in_host": True})  # fmt: skip


def _uvicorn(app: Any, host: str, port: int) -> Any:
    import uvicorn

    class EmbeddedServer(uvicorn.Server):
        # posgate owns the signals: one graceful shutdown for the host and the console.
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    cfg = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="auto")
    return EmbeddedServer(cfg)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: posgate serve")
