"""``make bench``: the host's throughput in every deployment shape, against the echo ceiling, in one run.

    python -m posgate.bench.bench [--terminals 100] [--seconds 10] [--fleets 1] [--configs echo,sqlite,pg1,pg2]

Prints one line each for: the echo ceiling (``posgate.bench.echo``: the host's framing on
uvloop + asyncio.Protocol, no work; driven by ``posgate.bench.host``'s raw client), the host
on SQLite, the host on PostgreSQL with one process and with two processes behind HAProxy
(skipped with a note when PostgreSQL or HAProxy is absent) — each as sales per second and p99
latency — then the ratios (each host / echo; two processes / one). Host load comes from
``posgate fleet`` (sale-only mix, no journals: the load side must not fsync), run in
``--fleets`` processes; terminals and cards are provisioned with the fleet's provisioning.
Every figure is measured in the same run, on the same machine: quote the ratios, the absolute
numbers drift with the neighbours (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from posgate.bench.host import Figures, bench_echo


def _fleet_process(specs: list[Any], cards: list[tuple[str, str]], port: int, seconds: float, seed: int,
                   barrier: Any, out: Any) -> None:  # fmt: skip
    from posgate.fleet.fleet import Fleet, FleetConfig, _run_loop

    # own_card: each terminal its own cardholder (cards[i] goes with specs[i]); cards drawn at
    # random would make a few issuer rows hot across host processes, which real traffic is not.
    cfg = FleetConfig(port=port, terminals=len(specs), duration=seconds, mix={"sale": 1}, timeout=30, seed=seed,
                      settle=False, specs=specs, cards=cards, ramp=0.5, own_card=True)  # fmt: skip
    fleet = Fleet(cfg)
    barrier.wait()
    t0 = time.monotonic()
    report = _run_loop(fleet.run())
    sales = fleet.stats.latencies.get("sale", [])
    out.put({"latencies": sales, "elapsed": time.monotonic() - t0 - cfg.ramp, "codes": report["response_codes"],
             "errors": report["timeouts"] + report["comm_errors"]})  # fmt: skip


def drive(name: str, specs: list[Any], cards: list[tuple[str, str]], port: int, seconds: float, fleets: int) -> Figures:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(fleets)
    out = ctx.Queue()
    parts = [(specs[i::fleets], cards[i::fleets]) for i in range(fleets)]  # provision() pairs specs[j] with cards[j]
    procs = [ctx.Process(target=_fleet_process, args=(s, c, port, seconds, i + 1, barrier, out))
             for i, (s, c) in enumerate(parts)]  # fmt: skip
    for p in procs:
        p.start()
    try:
        reports = [out.get(timeout=seconds + 300) for _ in procs]
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
    lat = sorted(x for r in reports for x in r["latencies"])
    codes: dict[str, int] = {}
    for r in reports:
        for k, v in r["codes"].items():
            codes[k] = codes.get(k, 0) + v
    elapsed = max(r["elapsed"] for r in reports) or 1e-9
    if not lat:
        return Figures(name, 0.0, 0.0, 0.0, 0, codes, sum(r["errors"] for r in reports))
    return Figures(name, len(lat) / elapsed, lat[len(lat) // 2] * 1000, lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
                   len(lat), codes, sum(r["errors"] for r in reports))  # fmt: skip


def bench_config(name: str, db_url: str, work: Path, hosts: int, args: argparse.Namespace, extra: tuple[str, ...] = ()) -> Figures:
    from posgate.fleet.fleet import provision
    from posgate.fleet.haproxy import HAProxy
    from posgate.fleet.hostproc import HostProcess
    from posgate.fleet.net import free_port

    specs, cards = provision(db_url, args.terminals)
    procs = [HostProcess(db_url, port=free_port(), demo=False, log_path=work / f"{name.replace(' ', '-')}-{i}.log",
                         extra_args=extra) for i in range(hosts)]  # fmt: skip
    balancer = None
    try:
        for p in procs:
            p.start(60)
        port = procs[0].port
        if hosts > 1:
            balancer = HAProxy([("127.0.0.1", p.port) for p in procs], workdir=work / name.replace(" ", "-")).start()
            port = balancer.port
        return drive(name, specs, cards, port, args.seconds, args.fleets)
    finally:
        if balancer is not None:
            balancer.stop()
        for p in procs:
            p.stop(30)


def main(argv: list[str] | None = None) -> int:
    from posgate.fleet.haproxy import haproxy_available
    from posgate.store.testing import pg_available, temp_pg_database

    ap = argparse.ArgumentParser(description="Echo ceiling, host on SQLite, on PostgreSQL with 1 and 2 processes.")
    ap.add_argument("--terminals", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=10.0, help="Seconds of load per configuration.")
    ap.add_argument("--fleets", type=int, default=1, help="Load-generating processes.")
    ap.add_argument("--pg-workers", type=int, default=1, help="Commit workers per host process on PostgreSQL.")
    ap.add_argument("--configs", default="echo,sqlite,pg1,pg2",
                    help="Which configurations, in this order: echo, sqlite, pg1, pg2 (comma-separated).")
    args = ap.parse_args(argv)
    configs = {c.strip() for c in args.configs.split(",") if c.strip()}
    unknown = configs - {"echo", "sqlite", "pg1", "pg2"}
    if unknown:
        ap.error(f"unknown configuration(s): {', '.join(sorted(unknown))}")
    print(f"posgate bench: {args.terminals} terminals, {args.seconds:g} s per configuration, {args.fleets} fleet "
          f"process(es), {os.cpu_count()} CPUs", flush=True)  # fmt: skip
    results: dict[str, Figures] = {}
    with tempfile.TemporaryDirectory(prefix="posgate-bench-") as tmp:
        work = Path(tmp)
        os.environ.setdefault("POSGATE_MASTER_KEY_FILE", str(work / "master.key"))
        echo = None
        if "echo" in configs:
            echo = bench_echo(args.terminals, max(50, int(args.seconds * 200)), args.fleets)
            print(echo.line(), flush=True)
        if "sqlite" in configs:
            results["sqlite"] = bench_config("host sqlite", f"sqlite:///{work / 'bench.db'}", work, 1, args)
            print(results["sqlite"].line(), flush=True)
        pg_extra = ("--workers", str(args.pg_workers))
        wants_pg = bool(configs & {"pg1", "pg2"})
        if wants_pg and not pg_available():
            print("host postgres: PostgreSQL not reachable at 127.0.0.1:5432, skipped", flush=True)
        elif wants_pg:
            if "pg1" in configs:
                with temp_pg_database(f"posgate_bench_{os.getpid()}") as url:
                    results["pg1"] = bench_config("host postgres x1", url, work, 1, args, pg_extra)
                    print(results["pg1"].line(), flush=True)
            if "pg2" in configs and haproxy_available():
                with temp_pg_database(f"posgate_bench_{os.getpid()}") as url:
                    results["pg2"] = bench_config("host postgres x2 haproxy", url, work, 2, args, pg_extra)
                    print(results["pg2"].line(), flush=True)
            elif "pg2" in configs:
                print("host postgres x2: haproxy not installed (apt-get install -y haproxy), skipped", flush=True)
    if echo is not None and echo.tps:
        for r in results.values():
            print(f"ratio {r.name} / echo: {r.tps / echo.tps:.3f}")
    if "pg1" in results and "pg2" in results and results["pg1"].tps:
        print(f"ratio postgres x2 / x1: {results['pg2'].tps / results['pg1'].tps:.2f}")
    if "sqlite" in results and "pg1" in results and results["sqlite"].tps:
        print(f"ratio postgres x1 / sqlite: {results['pg1'].tps / results['sqlite'].tps:.2f}")
    return 1 if any(r.errors or not r.count for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
