"""``posgate fleet`` (load) and ``posgate chaos`` (load under faults, then a three-ledger audit).

Both only ever target loopback addresses. See :mod:`posgate.fleet.fleet` and
:mod:`posgate.fleet.chaos` for what they do; this module only turns options into a config.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from posgate.cli_ports import port_check


def register(app: typer.Typer) -> None:
    app.command("fleet")(fleet)
    app.command("chaos")(chaos)


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def fleet(
    host: str = typer.Option("127.0.0.1", "--host", help="The CUP host (loopback only)."),
    port: int = typer.Option(8583, "--port", help="Its terminal port.", callback=port_check(free=False)),
    terminals: int = typer.Option(4, "--terminals", "-n", min=1, max=5000, help="Simulated terminals (demo: at most 4; the 4th is the SM4 terminal 40000001)."),
    duration: float | None = typer.Option(None, "--duration", help="Seconds of load (default 10 unless --transactions)."),
    transactions: int | None = typer.Option(None, "--transactions", min=1, help="Stop after this many operations."),
    mix: str | None = typer.Option(None, "--mix",
                            help="Weights per operation (default: the standard mix, docs/terminal.md): sale, chip (inserted), tap (contactless: no PIN up to the no-CVM limit), "
                                 "void, refund, balance, preauth, offline, signature, qr (扫码: a sale paid with a demo payment code)."),
    state: Path | None = typer.Option(None, "--state", help="Keep each terminal's journal in this directory (else in memory)."),
    provision: bool = typer.Option(False, "--provision", help="Create the terminals, merchants and cards in --db first."),
    db: str | None = typer.Option(None, "--db", help="The host's database URL (with --provision)."),
    timeout: float = typer.Option(10.0, "--timeout", help="Seconds a terminal waits for a reply."),
    settle: bool = typer.Option(True, "--settle/--no-settle", help="Settle (with batch upload) every terminal at the end."),
    settle_every: int = typer.Option(400, "--settle-every", min=10, max=900, help="Settle a terminal whose batch holds this many."),
    think: float = typer.Option(0.0, "--think", help="Seconds each terminal pauses between operations."),
    seed: int = typer.Option(1, "--seed"),
    own_card: bool = typer.Option(False, "--own-card", help="Terminal i pays only with card i (no issuer row shared by terminals)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON (no progress bar)."),
    profile: str | None = typer.Option(None, "--profile", help="Dialect profile(s) the terminals speak: NAME or a mix "
                                       "'cup=2,gz-bill=1' (set on the host too when --db is given)."),
) -> None:
    """Simulate N POS terminals against a CUP host: sign-on, a mix of transactions, settlement."""
    from posgate.fdlimit import raise_fd_limit
    from posgate.fleet.fleet import (
        DEFAULT_MIX,
        Fleet,
        FleetConfig,
        format_report,
        parse_mix,
        run_with_progress,
    )
    from posgate.fleet.fleet import provision as do_provision
    from posgate.fleet.net import NotLoopbackError, require_loopback

    raise_fd_limit()  # one socket per terminal

    try:
        require_loopback(host)
        weights = parse_mix(mix or DEFAULT_MIX)
    except (NotLoopbackError, ValueError) as e:
        _fail(str(e))
    specs = cards = None
    if provision:
        if not db:
            _fail("--provision needs --db URL (the host's database)")
        assert db is not None
        specs, cards = do_provision(db, terminals)
    elif terminals > 4:
        _fail(f"the demo has 4 terminals; for {terminals} add --provision --db URL (the host's database)")
    if profile:
        from posgate.fleet.fleet import apply_profiles, demo_specs, with_profiles

        try:
            specs = with_profiles(specs if specs is not None else demo_specs(terminals), profile)
        except ValueError as e:
            _fail(str(e))
        assert specs is not None
        if db:
            apply_profiles(db, specs[:terminals])
        else:
            typer.echo("note: without --db the host's terminals must already speak these profiles "
                       "(posgate admin terminal set-profile TID NAME)", err=True)  # fmt: skip
    if duration is None and transactions is None:
        duration = 10.0
    cfg = FleetConfig(host=host, port=port, terminals=terminals, duration=duration, transactions=transactions, mix=weights,
                      state_dir=state, timeout=timeout, seed=seed, settle=settle, settle_every=settle_every, think=think,
                      specs=specs, cards=cards, ramp=min(2.0, terminals / 500), own_card=own_card)  # fmt: skip
    report = run_with_progress(Fleet(cfg), show=not as_json and sys.stderr.isatty())
    if as_json:
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        for line in format_report(report):
            typer.echo(line)


def chaos(
    minutes: float = typer.Option(1.0, "--minutes", help="Minutes of load under faults (then settle and audit)."),
    db: str | None = typer.Option(None, "--db", help="Run the host(s) on this database (postgresql:// also restarts PostgreSQL once)."),
    target: str | None = typer.Option(None, "--target", help="host:port of a host started elsewhere (then --db is its database)."),
    terminals: int = typer.Option(20, "--terminals", "-n", min=1, max=2000),
    hosts: int = typer.Option(1, "--hosts", min=1, max=8, help="posgate serve processes (more than one needs PostgreSQL; "
                                                                  "behind HAProxy when installed)."),
    seed: int = typer.Option(1, "--seed"),
    timeout: float = typer.Option(2.0, "--timeout", help="The terminals' reply timeout (s); delayed replies exceed it."),
    fault_every: float = typer.Option(1.0, "--fault-every", help="Mean seconds between scheduled faults."),
    restart_postgres: bool = typer.Option(True, "--restart-postgres/--no-restart-postgres",
                                          help="With a postgresql:// database, restart PostgreSQL once mid-run."),
    state: Path | None = typer.Option(None, "--state", help="Keep the terminals' journals here (default: a temporary directory)."),
    mix: str | None = typer.Option(None, "--mix", help="Operation weights, as for posgate fleet (default: the chaos mix)."),
    as_json: bool = typer.Option(False, "--json"),
    profile: str | None = typer.Option(None, "--profile", help="Dialect profile(s) of the terminals: NAME or a mix 'cup=2,gz-bill=1'."),
    network: bool = typer.Option(False, "--network", help="Route the fleet's cards to a posgate network subprocess, with faults on that link too; audit the network's records as well."),
) -> None:
    """Run a fleet under injected faults, settle every terminal, audit three ledgers; exit 1 on any discrepancy."""
    from posgate.fleet.chaos import CHAOS_MIX, ChaosConfig, format_chaos, run_chaos

    cfg = ChaosConfig(minutes=minutes, db=db, target=target, terminals=terminals, hosts=hosts, seed=seed, timeout=timeout,
                      fault_every=fault_every, restart_postgres=restart_postgres, state_dir=state, mix=mix or CHAOS_MIX,
                      progress=not as_json and sys.stderr.isatty(), profile=profile, network=network)  # fmt: skip
    try:
        report = run_chaos(cfg)
    except ValueError as e:
        _fail(str(e))
    if as_json:
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        for line in format_chaos(report):
            typer.echo(line)
    raise typer.Exit(0 if report["ok"] else 1)
