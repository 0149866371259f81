"""``posgate chaos``: a fleet under injected faults, then settlement and a three-ledger audit.

Theory of operation
-------------------
::

    terminals (SimTerminal ×N, journals on disk)
        │  TCP
    FaultProxy (cuts, delays, drops, corrupts; pauses while a lone host restarts)
        │
    [HAProxy, when several hosts and it is installed]
        │
    posgate serve ×H (killed with SIGKILL and restarted)  ──  SQLite | PostgreSQL (restarted once)

1. **Set up.** Unless ``--db``/``--target`` say otherwise, a temporary SQLite database; the fleet's
   terminals, merchants and cards are provisioned in it (:func:`posgate.fleet.fleet.provision`),
   the issuer's balances are snapshotted and the tables' high-water marks noted (the audit
   looks only at what this run wrote). Hosts start on fixed loopback ports, so a restarted
   host comes back where the terminals and proxies expect it.
2. **Load under faults** for ``minutes``: the fleet runs its mix through the proxy; a scheduler
   draws the next fault every ``fault_every`` seconds on average (exponential gaps, seeded):
   ``cut_request``, ``cut_reply``, ``delay_reply`` (past the terminals' timeout), ``drop_reply``,
   ``corrupt_reply`` (bursts of 1–3 messages, by command to the proxy), ``power_loss`` (a terminal
   abandons its core between send and reply and is reopened from its journal), ``host_kill``
   (SIGKILL one host, restart it; with a single host the proxy stops listening meanwhile, so
   terminals see "connection refused" as they would without a proxy) and, on PostgreSQL,
   ``db_restart`` once (``pg_ctlcluster ... restart``: only when asked, as it disturbs every user
   of that server).
3. **Quiesce and settle.** Faults stop; every host is checked alive (restarted if needed); every
   terminal settles (pending reversals and offline advices go first, then 0500 and the batch
   upload), retrying until it completes.
4. **Audit** (:mod:`posgate.fleet.audit`) the terminals' journals against the host's records
   and the issuer's balances. The run is OK only when lost = double_charged =
   unbalanced_settlements = balance_discrepancies = 0; ``posgate chaos`` then exits 0, else 1
   with the offending records listed.

Loopback only; bounded by ``minutes`` plus the settlement (itself bounded by retries).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posgate.fleet import audit as au
from posgate.fleet.fleet import (
    Fleet,
    FleetConfig,
    _run_loop,
    apply_profiles,
    parse_mix,
    provision,
    with_profiles,
)
from posgate.fleet.hostproc import HostProcess, NetworkProcess
from posgate.fleet.net import free_port, parse_target
from posgate.fleet.proxy import FaultPlan, FaultProxy

# A refund is a 0220 advice that is never reversed (3.8): the terminal stores and forwards it
# with the same STAN and content until an authenticated reply acknowledges it (docs/decisions.md
# R5), so a lost reply does not lose it; refunds are part of the default mix. Chip (inserted) and
# contactless (tapped) sales of the fleet's chip cards carry real cryptograms (issue 14).
CHAOS_MIX = "sale=60,chip=5,tap=5,void=6,refund=5,balance=8,preauth=6,offline=5,signature=5"
PROXY_FAULTS = ("cut_request", "cut_reply", "delay_reply", "drop_reply", "corrupt_reply")
# Relative frequency of each scheduled fault.
SCHEDULE = {"cut_request": 4, "cut_reply": 4, "delay_reply": 3, "drop_reply": 2, "corrupt_reply": 3,
            "power_loss": 3, "host_kill": 1}  # fmt: skip


@dataclass
class ChaosConfig:
    minutes: float = 1.0
    db: str | None = None
    target: str | None = None
    terminals: int = 20
    hosts: int = 1
    seed: int = 1
    timeout: float = 2.0
    fault_every: float = 1.0
    restart_postgres: bool = True
    state_dir: Path | None = None
    progress: bool = False
    mix: str = CHAOS_MIX
    min_host_kill_gap: float = 8.0  # seconds between two host kills at least
    # None: host kills are drawn at random with the other faults. N: exactly N kills, planned at
    # even fractions of the run, so that a test can count on them however slow the machine is
    # (a restart under load can take longer than the gap, and a drawn kill is then skipped).
    host_kills: int | None = None
    settle_every: int = 300
    haproxy: bool | None = None  # None: use it when several hosts and it is installed
    extra_host_args: tuple[str, ...] = ()
    profile: str | None = None  # dialect profile(s) of the terminals: NAME or a mix (fleet --profile)
    # Issue 13: route the fleet's cards to a ``posgate network`` subprocess (terminal → acquirer →
    # network), with faults on that link too; the audit adds the network's records.
    network: bool = False


@dataclass
class ChaosRun:
    """Everything live during one run (for the scheduler and the report)."""

    config: ChaosConfig
    rng: random.Random
    hosts: list[HostProcess] = field(default_factory=list)
    proxy: FaultProxy | None = None
    fleet: Fleet | None = None
    faults: Counter[str] = field(default_factory=Counter)
    events: list[str] = field(default_factory=list)
    last_kill: float = 0.0
    db_restarted: bool = False
    haproxy: Any = None
    network: NetworkProcess | None = None
    network_db: str | None = None
    journals: list[Path] = field(default_factory=list)
    network_tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.events.append(f"{time.strftime('%H:%M:%S')} {text}")


# Faults on the acquirer → network link, switched on the network's control port for a few seconds:
# fault name → (setting while on, setting to go back to).
NETWORK_FAULTS = {
    "network_slow": ("slow", "0.8", "0"),
    "network_drop": ("drop", "0.3", "0"),
    "network_late": ("late", "0.3", "0"),
    "network_duplicate": ("duplicate", "0.5", "0"),
    "network_down": ("down", "on", "off"),
}
# ``network_rekey``: the network pushes a new MAC key to every connection (0800, 70 = 101) in the
# middle of traffic; messages already on the wire under the old key must still verify.
NETWORK_SCHEDULE = {"network_slow": 2, "network_drop": 2, "network_late": 2, "network_duplicate": 2, "network_down": 2,
                    "network_rekey": 2}  # fmt: skip
FLEET_BIN = "621214999"  # posgate.fleet.fleet.fleet_pan: the cards routed to the network


def _control(run: ChaosRun, line: str) -> str:
    from posgate.network.cli import send_control

    assert run.network is not None
    try:
        return send_control(("127.0.0.1", run.network.control_port), line)
    except OSError as e:
        return f'{{"error": "{e}"}}'


async def _network_fault(run: ChaosRun, kind: str) -> None:
    name, on, off = NETWORK_FAULTS[kind]
    await asyncio.to_thread(_control, run, f"fault {name} {on}")
    run.faults[kind] += 1
    await asyncio.sleep(run.rng.uniform(0.5, 2.5))
    await asyncio.to_thread(_control, run, f"fault {name} {off}")


async def _network_rekey(run: ChaosRun) -> None:
    reply = await asyncio.to_thread(_control, run, "rekey")
    if '"error"' not in reply:
        run.faults["network_rekey"] += 1


def _setup_network(run: ChaosRun, db: str, workdir: Path) -> tuple[str, ...]:
    """Start the network (its own database, the same fleet cards), route the fleet's BIN to it and
    give the stand-in a limit; returns the hosts' extra arguments."""
    from posgate.fleet.net import free_port
    from posgate.store import admin
    from posgate.store.database import Database
    from posgate.store.keyring import default_key_path

    cfg = run.config
    # The network shares the acquirer's master key file only so that the audit can join cards by
    # their keyed hash; it is still its own database.
    key_file = str(default_key_path(db))
    run.network_db = f"sqlite:///{workdir / 'network.db'}"
    provision(run.network_db, cfg.terminals, key_file=key_file)
    acq = Database.open(db)
    try:
        with acq.engine.begin() as conn:
            if not any(r["bin_low"] == FLEET_BIN and r["target"] == "cupnet" for r in admin.list_routes(conn)):
                admin.add_route(conn, FLEET_BIN, None, "cupnet", actor="chaos")
            admin.set_stand_in_limit(conn, "debit", 20_000, daily_max=200_000, actor="chaos")
    finally:
        acq.close()
    zmk = workdir / "zmk.key"
    run.network = NetworkProcess(run.network_db, port=free_port(), control_port=free_port(), zmk_file=zmk,
                                 log_path=workdir / "network.log", env={"POSGATE_MASTER_KEY_FILE": key_file},
                                 extra_args=("--seed", str(cfg.seed)))  # fmt: skip
    run.network.start(60.0)
    run.note(f"network on port {run.network.port}")
    return ("--upstream", f"cupnet=127.0.0.1:{run.network.port}", "--zmk-file", str(zmk),
            "--upstream-timeout", str(max(0.3, cfg.timeout / 2)), "--upstream-grace", "2")  # fmt: skip


def _open_upstream_entries(journals: list[Path]) -> int:
    from sqlalchemy import func, select

    from posgate.network.saf import OPEN_STATES, saf
    from posgate.store.engine import make_engine

    left = 0
    for path in journals:
        if not path.exists():
            continue
        engine = make_engine(f"sqlite:///{path}")
        try:
            with contextlib.suppress(Exception), engine.connect() as conn:  # (a journal not created yet)
                left += int(conn.execute(select(func.count()).where(saf.c.state.in_(OPEN_STATES))).scalar() or 0)
        finally:
            engine.dispose()
    return left


async def _drain_upstream(run: ChaosRun, timeout: float = 120.0) -> int:
    """Wait until every host's store-and-forward journal is empty (bounded); what is left."""
    deadline = time.monotonic() + timeout
    while True:
        left = await asyncio.to_thread(_open_upstream_entries, run.journals)
        if left == 0 or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.5)


def _is_postgres(url: str) -> bool:
    return url.startswith(("postgresql", "postgres"))


def restart_postgres() -> None:
    """Restart the local PostgreSQL cluster (Debian's pg_ctlcluster)."""
    versions = sorted(p.name for p in Path("/etc/postgresql").iterdir())
    if not versions:
        raise RuntimeError("no PostgreSQL cluster under /etc/postgresql")
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "restart"], check=True,
                   capture_output=True, timeout=120)  # fmt: skip


async def _kill_and_restart(run: ChaosRun, index: int) -> None:
    host = run.hosts[index]
    lone = len(run.hosts) == 1 and run.haproxy is None
    proxy = run.proxy
    if lone and proxy is not None:
        await proxy.pause()
    host.kill()
    run.faults["host_kill"] += 1
    run.note(f"host {index} (port {host.port}) killed with SIGKILL")
    await asyncio.sleep(run.rng.uniform(0.2, 1.0))
    try:
        await asyncio.to_thread(host.start, 60.0)
        run.note(f"host {index} restarted")
    finally:
        if lone and proxy is not None:
            await proxy.resume()


async def _scheduler(run: ChaosRun, stop_at: float) -> None:
    cfg, rng = run.config, run.rng
    schedule = {**SCHEDULE, **(NETWORK_SCHEDULE if run.network is not None else {})}
    kinds = list(schedule)
    weights = [schedule[k] for k in kinds]
    db_restart_at = None
    if cfg.db and _is_postgres(cfg.db) and cfg.restart_postgres and cfg.target is None:
        db_restart_at = time.monotonic() + (stop_at - time.monotonic()) * rng.uniform(0.3, 0.6)
    start = time.monotonic()
    kills = cfg.host_kills or 0
    planned_kills = [start + (stop_at - start) * (i + 1) / (kills + 1) for i in range(kills)]
    while True:
        await asyncio.sleep(rng.expovariate(1.0 / max(0.05, cfg.fault_every)))
        now = time.monotonic()
        if planned_kills and run.hosts and now >= planned_kills[0]:
            planned_kills.pop(0)  # late (the previous restart was slow) is still a kill: it was promised
            run.last_kill = now
            await _kill_and_restart(run, rng.randrange(len(run.hosts)))
            continue
        if now >= stop_at:
            return
        if db_restart_at is not None and now >= db_restart_at and not run.db_restarted:
            run.db_restarted = True
            run.note("PostgreSQL restarting")
            await asyncio.to_thread(restart_postgres)
            run.faults["db_restart"] += 1
            run.note("PostgreSQL restarted")
            continue
        kind = rng.choices(kinds, weights)[0]
        if kind in PROXY_FAULTS:
            assert run.proxy is not None
            run.proxy.inject(kind, count=rng.randint(1, 3))
        elif kind in NETWORK_FAULTS:
            run.network_tasks.append(asyncio.create_task(_network_fault(run, kind)))
        elif kind == "network_rekey":
            run.network_tasks.append(asyncio.create_task(_network_rekey(run)))
        elif kind == "power_loss":
            assert run.fleet is not None
            rng.choice(run.fleet.terminals).arm_power_loss()
        elif kind == "host_kill":
            if cfg.host_kills is not None or not run.hosts or now - run.last_kill < cfg.min_host_kill_gap or now > stop_at - 3:
                continue
            run.last_kill = now
            await _kill_and_restart(run, rng.randrange(len(run.hosts)))


def _fault_counts(run: ChaosRun) -> dict[str, int]:
    counts = Counter(run.faults)
    if run.proxy is not None:
        for k in PROXY_FAULTS:
            if run.proxy.stats[k]:
                counts[k] = run.proxy.stats[k]
    if run.fleet is not None:
        counts["power_loss"] = run.fleet.stats.power_losses
    return {k: v for k, v in sorted(counts.items()) if v}


async def _run(cfg: ChaosConfig, workdir: Path) -> dict[str, Any]:
    rng = random.Random(cfg.seed)
    run = ChaosRun(cfg, rng)
    db = cfg.db or f"sqlite:///{workdir / 'chaos.db'}"
    if cfg.hosts > 1 and not _is_postgres(db) and cfg.target is None:
        raise ValueError("several host processes need PostgreSQL (--db postgresql://...): SQLite has one writer")
    specs, cards = await asyncio.to_thread(provision, db, cfg.terminals)
    if cfg.profile:
        specs = with_profiles(specs, cfg.profile)
        await asyncio.to_thread(apply_profiles, db, specs)
    marks = await asyncio.to_thread(au.high_water_marks, db)
    extra_args = cfg.extra_host_args
    if cfg.network:
        if cfg.target is not None:
            raise ValueError("--network starts the hosts itself: it does not go with --target")
        extra_args += await asyncio.to_thread(_setup_network, run, db, workdir)
    issuer_db = run.network_db or db  # where the routed cards' balances live
    cards_before = await asyncio.to_thread(au.card_balances, issuer_db)

    backends: list[tuple[str, int]]
    if cfg.target is not None:
        backends = [parse_target(cfg.target)]
    else:
        for i in range(cfg.hosts):
            args = extra_args
            if cfg.network:
                run.journals.append(workdir / f"upstream-journal-{i}.db")
                args += ("--upstream-journal", str(run.journals[-1]))
            h = HostProcess(db, port=free_port(), log_path=workdir / f"host-{i}.log", extra_args=args)
            await asyncio.to_thread(h.start, 60.0)
            run.hosts.append(h)
        backends = [("127.0.0.1", h.port) for h in run.hosts]
        use_haproxy = cfg.haproxy if cfg.haproxy is not None else len(run.hosts) > 1
        if use_haproxy and len(run.hosts) > 1:
            from posgate.fleet.haproxy import HAProxy, haproxy_available

            if haproxy_available():
                run.haproxy = HAProxy(backends, workdir=workdir)
                await asyncio.to_thread(run.haproxy.start)
                backends = [("127.0.0.1", run.haproxy.port)]
                run.note(f"HAProxy on port {run.haproxy.port} in front of {len(run.hosts)} hosts")
            else:
                run.note("HAProxy not installed: the fault proxy balances the hosts itself")
    plan = FaultPlan(delay=cfg.timeout + 1.5, flips=3)
    run.proxy = await FaultProxy(backends, plan=plan, seed=cfg.seed).start()
    fleet_cfg = FleetConfig(port=run.proxy.port, terminals=cfg.terminals, duration=cfg.minutes * 60, mix=parse_mix(cfg.mix),
                            state_dir=cfg.state_dir or workdir / "journals", timeout=cfg.timeout, seed=cfg.seed, settle=False,
                            settle_every=cfg.settle_every, specs=specs, cards=cards, ramp=min(2.0, cfg.terminals / 200),
                            pause_after_error=0.2)  # fmt: skip
    fleet = Fleet(fleet_cfg)
    run.fleet = fleet
    started = time.monotonic()
    stop_at = started + fleet_cfg.ramp + cfg.minutes * 60
    ticker = asyncio.create_task(_progress(run, stop_at)) if cfg.progress else None
    scheduler = asyncio.create_task(_scheduler(run, stop_at))
    try:
        load = await fleet.run(close=False)
        await scheduler
    finally:
        if not scheduler.done():
            scheduler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await scheduler
        if ticker is not None:
            ticker.cancel()
    # Quiesce: no more faults, every host up, then every terminal settles.
    run.proxy.calm()
    for task in run.network_tasks:
        task.cancel()
    if run.network is not None:
        if not run.network.alive:
            await asyncio.to_thread(run.network.start, 60.0)
        await asyncio.to_thread(_control, run, "calm")
    for i, h in enumerate(run.hosts):
        if not h.alive:
            await asyncio.to_thread(h.start, 60.0)
            run.note(f"host {i} found dead at the end; restarted")
    await run.proxy.resume()
    for t in fleet.terminals:
        t.session.power_loss_armed = False
    settle_started = time.monotonic()
    results = await asyncio.gather(*(fleet.settle(t, attempts=10) for t in fleet.terminals))
    unsettled = [t.terminal_id for t, r in zip(fleet.terminals, results, strict=True) if not r.approved]
    settle_seconds = time.monotonic() - settle_started
    ledgers = {t.terminal_id: t.ledger_entries() for t in fleet.terminals}
    await fleet.close()
    await run.proxy.close()
    upstream_left = await _drain_upstream(run) if run.network is not None else 0
    for h in run.hosts:
        await asyncio.to_thread(h.stop, 30.0)
    network_stats: dict[str, Any] = {}
    if run.network is not None:
        with contextlib.suppress(ValueError, TypeError):
            network_stats = json.loads(await asyncio.to_thread(_control, run, "stats")).get("stats", {})
        await asyncio.to_thread(run.network.stop, 30.0)
    if run.haproxy is not None:
        await asyncio.to_thread(run.haproxy.stop)

    host_records, settlements = await asyncio.to_thread(au.host_ledger, db, list(ledgers), marks)
    cards_after = await asyncio.to_thread(au.card_balances, issuer_db)
    terminal_records = [au.TerminalRecord(e.terminal_id, e.batch, e.stan, e.operation, e.amount, e.status)
                        for entries in ledgers.values() for e in entries]  # fmt: skip
    result = au.audit(terminal_records, host_records, settlements, cards_before, cards_after, unsettled_terminals=unsettled)
    if run.network_db is not None:
        network_records = await asyncio.to_thread(au.network_ledger, run.network_db, list(ledgers))
        au.network_audit(result, host_records, network_records)
        if upstream_left:
            result.network_differences.append({"kind": "not_forwarded", "entries": upstream_left})

    s = fleet.stats
    attempted = sum(len(v) for k, v in s.latencies.items() if k not in ("sign_on", "settlement"))
    approved = sum(v for k, v in s.approved.items() if k not in ("sign_on", "settlement"))
    declined = sum(c for k, codes in s.codes.items() if k not in ("sign_on", "settlement")
                   for code, c in codes.items() if len(code) == 2 and code not in ("00", "10", "11"))  # fmt: skip
    reversed_on_host = sum(1 for h in host_records if h.status == "reversed")
    report: dict[str, Any] = {
        "ok": result.ok,
        "minutes": cfg.minutes,
        "terminals": cfg.terminals,
        "hosts": max(1, len(run.hosts)),
        "haproxy": run.haproxy is not None,
        "database": "postgresql" if _is_postgres(db) else "sqlite",
        "seed": cfg.seed,
        "transactions": attempted,
        "approved": approved,
        "declined": declined,
        "failed_no_answer": attempted - approved - declined,
        "reversed": reversed_on_host,
        "reversals_sent": s.reversals_sent,
        "re_sign_ons": s.re_sign_ons,
        "faults": _fault_counts(run),
        # host-to-host MACs that did not verify at the network (nothing tampers with that line here: 0)
        "network_mac_failures": int(network_stats.get("mac_failures", 0)),
        "network_key_changes": int(network_stats.get("key_changes_sent", 0)),
        "lost": len(result.lost),
        "double_charged": len(result.double_charged),
        "unbalanced_settlements": len(result.unbalanced_settlements),
        "balance_discrepancies": len(result.balance_discrepancies),
        "network": run.network is not None,
        "network_records": result.network_records,
        "network_differences": len(result.network_differences),
        "settlements": result.settlements,
        "settle_seconds": round(settle_seconds, 1),
        "audit": result.as_dict(),
        "load": load,
        "events": run.events[-200:],
    }
    return report


async def _progress(run: ChaosRun, stop_at: float) -> None:
    from rich.console import Console

    console = Console(stderr=True)
    last = 0.0
    while True:
        await asyncio.sleep(1.0)
        now = time.monotonic()
        if now - last < 5 and now < stop_at:
            continue
        last = now
        f = run.fleet
        ops = f.stats.operations if f else 0
        faults = sum(_fault_counts(run).values())
        console.print(f"[dim]chaos[/dim] {max(0.0, stop_at - now):5.0f} s left  {ops} operations  {faults} faults", highlight=False)


def run_chaos(cfg: ChaosConfig) -> dict[str, Any]:
    """Run one chaos soak (blocking); the report dict (see :func:`format_chaos`)."""
    if cfg.target is not None and not cfg.db:
        raise ValueError("--target needs --db: the audit reads that host's database")
    workdir = Path(tempfile.mkdtemp(prefix="posgate-chaos-"))
    try:
        report: dict[str, Any] = _run_loop(_run(cfg, workdir))
    except BaseException:
        report = {}
        raise
    finally:
        keep = not report.get("ok", False)
        if keep:
            report_dir = str(workdir)
            if report:
                report["workdir"] = report_dir
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return report


def format_chaos(report: dict[str, Any]) -> Iterable[str]:
    r = report
    yield (f"chaos: {r['minutes']} min, {r['terminals']} terminals, {r['hosts']} host process(es)"
           f"{' behind HAProxy' if r['haproxy'] else ''} on {r['database']}, seed {r['seed']}")  # fmt: skip
    yield (f"transactions attempted {r['transactions']}: approved {r['approved']}, declined {r['declined']}, "
           f"no answer {r['failed_no_answer']}, reversed on the host {r['reversed']} "
           f"(reversals sent {r['reversals_sent']}, re-sign-ons {r['re_sign_ons']})")  # fmt: skip
    yield "faults injected: " + (", ".join(f"{k} {v}" for k, v in r["faults"].items()) or "none")
    yield f"settlements audited {r['settlements']} (final settlement took {r['settle_seconds']} s)"
    yield f"approved transactions lost: {r['lost']}"
    yield f"charged twice: {r['double_charged']}"
    yield f"settlements unbalanced after batch upload: {r['unbalanced_settlements']}"
    yield f"issuer balance discrepancies: {r['balance_discrepancies']}"
    if r.get("network"):
        yield (f"network records {r['network_records']}; acquirer × network differences: {r['network_differences']}")
        yield (f"host-to-host MAC failures at the network: {r.get('network_mac_failures', 0)}; "
               f"MAC key changes pushed: {r.get('network_key_changes', 0)}")
    if not r["ok"]:
        off = r["audit"]["offending"]
        for kind, rows in off.items():
            for row in rows[:50]:
                yield f"  {kind}: {row}"
        if r.get("workdir"):
            yield f"logs and journals kept in {r['workdir']}"
    yield "OK" if r["ok"] else "FAILED"
