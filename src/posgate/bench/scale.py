"""``make bench-scale``: one host process against two, each held to the same CPU quota, in one run.

    python -m posgate.bench.scale [--terminals 200] [--seconds 15] [--quota 0.25] [--fleets 2]

Two phases on PostgreSQL, each on a fresh database with the fleet's provisioned terminals and
cards (each terminal its own cardholder): HAProxy in front of one ``posgate serve`` process,
then HAProxy in front of two. Every host process is put in its own CPU cgroup limited to
``--quota`` of a core (``posgate.bench.cgroup``; skipped with a note without permission), so
each is the same small machine and the second phase shows what a second process adds. HAProxy,
PostgreSQL and the load generator stay outside the groups.

The load is ``posgate fleet`` (whole terminal cores, sale-only mix, no journals) in ``--fleets``
processes; sales are counted in a window that starts after the sign-ons and a warm-up. Each
phase line gives sales/s, p50/p99, the hosts' CPU (cores used and throttled periods: a host at
its quota is throttled in most periods), the fleet processes' CPU (a load generator near one
core would be the bottleneck: the line says so) and the machine's idle share; then the
three-ledger audit of ``posgate chaos`` (``posgate.fleet.audit``) on that phase's database:
every approved sale a terminal holds must stand on the host, none twice, and every card's
balance must have moved by what the host recorded. The last line is the ratio two / one.

Why a quarter of a core by default, on a two-core machine: everything outside the quota shares
what is left. At 2,000 sales/s the Python load generator takes about 0.6 core, PostgreSQL 0.4
and HAProxy 0.1; two hosts at half a core each on top of that ask for more than two cores, and
the second phase then measures the machine, not the second process (the phase line shows it:
hosts no longer throttled, the machine's idle share near 0). Two hundred terminals keep enough
requests in flight that each host, in either phase, is held by its quota (throttled in most
periods) with batches of the same order. On a larger machine, ``--quota 0.5`` or 1.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GOAL = 1.8


def _fleet_worker(specs: list[Any], cards: list[tuple[str, str]], port: int, seconds: float, warmup: float, seed: int,
                  barrier: Any, out: Any) -> None:  # fmt: skip
    from posgate.fleet.fleet import Fleet, FleetConfig, SimTerminal, _run_loop
    from posgate.terminal.machine import Input, Result

    done: list[float] = []

    class TimedFleet(Fleet):
        async def timed(self, t: SimTerminal, inp: Input) -> Result:
            result = await super().timed(t, inp)
            if inp.operation == "sale":
                done.append(time.monotonic())
            return result

    # No settlement during or after the load: the terminals' in-memory logs are then the whole
    # terminal ledger for the audit (a settlement empties them).
    cfg = FleetConfig(port=port, terminals=len(specs), duration=warmup + seconds, mix={"sale": 1}, timeout=30, seed=seed,
                      settle=False, settle_every=0, specs=specs, cards=cards, ramp=1.0, own_card=True)  # fmt: skip
    fleet = TimedFleet(cfg)
    barrier.wait()
    t0 = time.monotonic()
    cpu0 = time.process_time()
    report = _run_loop(fleet.run())
    cpu = time.process_time() - cpu0
    lo = t0 + cfg.ramp + warmup
    hi = lo + seconds
    sales = fleet.stats.latencies.get("sale", [])
    ledger = [(e.terminal_id, e.batch, e.stan, e.operation, e.amount, e.status)
              for t in fleet.terminals for e in t.ledger_entries()]  # fmt: skip
    out.put({"window": sum(1 for d in done if lo <= d < hi), "latencies": sales, "cpu": cpu,
             "elapsed": time.monotonic() - t0, "codes": report["response_codes"],
             "errors": report["timeouts"] + report["comm_errors"], "ledger": ledger,
             "window_start": lo, "window_end": hi})  # fmt: skip


@dataclass
class Phase:
    name: str
    hosts: int
    sales_per_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    sales: int = 0
    errors: int = 0
    codes: dict[str, int] = field(default_factory=dict)
    host_cores: list[float] = field(default_factory=list)
    throttled: list[str] = field(default_factory=list)
    fleet_cores: list[float] = field(default_factory=list)
    postgres_cores: float = 0.0
    haproxy_cores: float = 0.0
    idle: float = 0.0
    audit: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        a = self.audit
        return bool(self.sales) and not self.errors and not (a.get("lost") or a.get("double_charged")
                                                             or a.get("balance_discrepancies"))  # fmt: skip

    def lines(self) -> list[str]:
        cores = " + ".join(f"{c:.2f}" for c in self.host_cores)
        fleet = " + ".join(f"{c:.2f}" for c in self.fleet_cores)
        a = self.audit
        first = (f"{self.name:<24} {self.sales_per_s:8.1f} sales/s  p50 {self.p50_ms:6.1f} ms  p99 {self.p99_ms:6.1f} ms  "
                 f"host-cpu {cores} cores")  # fmt: skip
        if self.throttled:
            first += f" (throttled {', '.join(self.throttled)})"
        second = (f"{'':<24} fleet-cpu {fleet}  postgres-cpu {self.postgres_cores:.2f}  haproxy-cpu "
                  f"{self.haproxy_cores:.2f} cores  machine idle {self.idle:.0%}  codes "
                  + ",".join(f"{k}:{v}" for k, v in sorted(self.codes.items()))
                  + (f"  errors {self.errors}" if self.errors else ""))  # fmt: skip
        third = (f"{'':<24} audit: {a.get('terminal_entries', 0)} terminal entries, {a.get('host_records', 0)} host records, "
                 f"lost {a.get('lost')}, charged twice {a.get('double_charged')}, "
                 f"balance discrepancies {a.get('balance_discrepancies')}")  # fmt: skip
        lines = [first, second, third]
        if self.fleet_cores and max(self.fleet_cores) > 0.85:
            lines.append(f"{'':<24} warning: a fleet process used {max(self.fleet_cores):.2f} of a core: the load "
                         "generator may be the bottleneck (more --fleets)")  # fmt: skip
        return lines


def _postgres_pids() -> list[int]:
    """The PostgreSQL server's processes (read-only look at /proc: their CPU is part of the cost)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() == "postgres":
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


def _cpu_of(pids: list[int]) -> float:
    from posgate.bench.cgroup import process_cpu_seconds

    total = 0.0
    for pid in pids:
        try:
            total += process_cpu_seconds(pid)
        except (OSError, IndexError, ValueError):
            continue
    return total


def _cpu_idle() -> tuple[int, int]:
    """(idle + iowait jiffies, total jiffies) of the whole machine."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    return parts[3] + parts[4], sum(parts)


def run_phase(name: str, hosts: int, args: argparse.Namespace, work: Path, quota: Any) -> Phase:
    from posgate.bench.cgroup import CpuQuota, process_cpu_seconds
    from posgate.fleet import audit as au
    from posgate.fleet.fleet import provision
    from posgate.fleet.haproxy import HAProxy
    from posgate.fleet.hostproc import HostProcess
    from posgate.fleet.net import free_port
    from posgate.store.testing import temp_pg_database

    phase = Phase(name, hosts)
    with temp_pg_database(f"posgate_scale_{os.getpid()}") as url:
        specs, cards = provision(url, args.terminals)
        marks = au.high_water_marks(url)
        before = au.card_balances(url)
        procs = [HostProcess(url, port=free_port(), demo=False, log_path=work / f"{name.replace(' ', '-')}-{i}.log",
                             extra_args=("--workers", str(args.workers))) for i in range(hosts)]  # fmt: skip
        balancer = None
        groups: list[Path] = []
        try:
            for p in procs:
                p.start(60)
                if quota is not None:
                    groups.append(quota.add(p.pid))
            balancer = HAProxy(
                [("127.0.0.1", p.port) for p in procs], workdir=work / name.replace(" ", "-")
            ).start()
            ctx = multiprocessing.get_context("spawn")
            barrier = ctx.Barrier(args.fleets + 1)
            out = ctx.Queue()
            workers = [ctx.Process(target=_fleet_worker, args=(specs[i :: args.fleets], cards[i :: args.fleets],
                                   balancer.port, args.seconds, args.warmup, i + 1, barrier, out))
                       for i in range(args.fleets)]  # fmt: skip
            for w in workers:
                w.start()
            barrier.wait()
            # Host CPU, throttling and machine idle over the counting window (after ramp + warm-up).
            time.sleep(1.0 + args.warmup)
            cpu0 = [process_cpu_seconds(p.pid) for p in procs]
            st0 = [CpuQuota.stats(g) for g in groups]
            idle0 = _cpu_idle()
            pg_pids = _postgres_pids()
            pg0, hap0 = _cpu_of(pg_pids), _cpu_of([balancer.proc.pid] if balancer.proc else [])
            t0 = time.monotonic()
            time.sleep(args.seconds)
            span = time.monotonic() - t0
            phase.host_cores = [
                (process_cpu_seconds(p.pid) - c) / span for p, c in zip(procs, cpu0, strict=True)
            ]
            phase.postgres_cores = (_cpu_of(pg_pids) - pg0) / span
            phase.haproxy_cores = (_cpu_of([balancer.proc.pid] if balancer.proc else []) - hap0) / span
            idle1 = _cpu_idle()
            phase.idle = (idle1[0] - idle0[0]) / max(1, idle1[1] - idle0[1])
            for g, s0 in zip(groups, st0, strict=True):
                s1 = CpuQuota.stats(g)
                periods = s1.get("nr_periods", 0) - s0.get("nr_periods", 0)
                phase.throttled.append(
                    f"{s1.get('nr_throttled', 0) - s0.get('nr_throttled', 0)}/{periods} periods"
                )
            try:
                reports = [out.get(timeout=args.seconds + 300) for _ in workers]
            finally:
                for w in workers:
                    w.join(30)
                    if w.is_alive():
                        w.kill()
        finally:
            if balancer is not None:
                balancer.stop()
            for p in procs:
                p.stop(30)
        lat = sorted(x for r in reports for x in r["latencies"])
        window = min(r["window_end"] for r in reports) - max(r["window_start"] for r in reports)
        phase.sales = sum(r["window"] for r in reports)
        phase.sales_per_s = phase.sales / max(window, 1e-9)
        if lat:
            phase.p50_ms = lat[len(lat) // 2] * 1000
            phase.p99_ms = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        for r in reports:
            for k, v in r["codes"].items():
                phase.codes[k] = phase.codes.get(k, 0) + v
        phase.errors = sum(r["errors"] for r in reports)
        phase.fleet_cores = [r["cpu"] / max(r["elapsed"], 1e-9) for r in reports]
        entries = [au.TerminalRecord(*e) for r in reports for e in r["ledger"]]
        host_records, settlements = au.host_ledger(url, [s.terminal_id for s in specs], marks)
        after = au.card_balances(url)
        phase.audit = au.audit(entries, host_records, settlements, before, after).as_dict()
    return phase


def main(argv: list[str] | None = None) -> int:
    from posgate.bench.cgroup import CpuQuota, detect
    from posgate.fleet.haproxy import haproxy_available
    from posgate.store.testing import pg_available

    ap = argparse.ArgumentParser(
        description="One host process against two behind HAProxy, each under the same CPU quota."
    )
    ap.add_argument("--terminals", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=15.0, help="Seconds of counted load per phase.")
    ap.add_argument("--warmup", type=float, default=3.0, help="Seconds of load before counting starts.")
    ap.add_argument(
        "--quota", type=float, default=0.25, help="CPU quota of each host process, in cores (0: none)."
    )
    ap.add_argument("--fleets", type=int, default=2, help="Load-generating processes (outside the quota).")
    ap.add_argument(
        "--weight",
        type=float,
        default=4.0,
        help="CPU weight of the hosts' groups against the rest of a shared machine (x the default).",
    )
    ap.add_argument("--workers", type=int, default=1, help="Commit workers per host process.")
    args = ap.parse_args(argv)
    if args.terminals < 2 or args.seconds <= 0 or args.fleets < 1 or args.quota < 0:
        ap.error("need --terminals >= 2, --seconds > 0, --fleets >= 1, --quota >= 0")
    if not pg_available():
        print("bench-scale: PostgreSQL not reachable at 127.0.0.1:5432, skipped")
        return 0
    if not haproxy_available():
        print("bench-scale: haproxy not installed (apt-get install -y haproxy), skipped")
        return 0
    quota = None
    note = "no quota (--quota 0): the processes share the machine's cores"
    if args.quota > 0:
        fs = detect()
        if isinstance(fs, str):
            note = f"no quota: {fs}; the ratio then measures the shared cores, not scale-out"
        else:
            quota = CpuQuota(args.quota, fs, weight=args.weight)
            note = f"each host process held to {args.quota:g} core, CPU weight x{args.weight:g} (cgroup v{fs.version})"
    print(f"posgate bench-scale: {args.terminals} terminals, {args.seconds:g} s counted per phase after "
          f"{args.warmup:g} s warm-up, {args.fleets} fleet process(es), {os.cpu_count()} CPUs; {note}", flush=True)  # fmt: skip
    phases: list[Phase] = []
    try:
        with tempfile.TemporaryDirectory(prefix="posgate-scale-") as tmp:
            work = Path(tmp)
            os.environ.setdefault("POSGATE_MASTER_KEY_FILE", str(work / "master.key"))
            for name, hosts in (("postgres x1 haproxy", 1), ("postgres x2 haproxy", 2)):
                phase = run_phase(name, hosts, args, work, quota)
                phases.append(phase)
                for line in phase.lines():
                    print(line, flush=True)
    finally:
        if quota is not None:
            quota.close()
    one, two = phases
    ratio = two.sales_per_s / one.sales_per_s if one.sales_per_s else 0.0
    print(f"ratio postgres x2 / x1: {ratio:.2f} (goal >= {GOAL})")
    return 0 if all(p.ok for p in phases) else 1


if __name__ == "__main__":
    sys.exit(main())
