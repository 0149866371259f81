"""The latency the upstream hop adds: the same fleet of sales against ``posgate serve`` on SQLite,
first answered by the built-in issuer, then routed to ``posgate network serve`` (another process,
loopback TCP, the host-to-host dialect, its own database).

    python -m posgate.bench.upstream [--terminals 20] [--seconds 8] [--pg]

Prints sales per second and p50/p99 latency for both, then the difference: what the hop costs a
terminal (the network's own unit of work included, as a real issuer's would be). With ``--pg``
the host runs on PostgreSQL with ``--workers 4`` instead: the workers wait for the network in
parallel, where SQLite's single writer waits in turn (docs/upstream.md). Same run, same machine:
compare the two lines, not figures across machines (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from posgate.bench.bench import drive
from posgate.bench.host import Figures


def run(args: argparse.Namespace, work: Path, db_url: str, routed: bool, extra: tuple[str, ...]) -> Figures:
    from posgate.fleet.chaos import FLEET_BIN
    from posgate.fleet.fleet import provision
    from posgate.fleet.hostproc import HostProcess, NetworkProcess
    from posgate.fleet.net import free_port
    from posgate.store import admin
    from posgate.store.database import Database

    name = "via network" if routed else "built-in issuer"
    specs, cards = provision(db_url, args.terminals)
    network = None
    if routed:
        net_db = f"sqlite:///{work / 'network.db'}"
        provision(net_db, args.terminals)
        db = Database.open(db_url)
        with db.engine.begin() as conn:
            admin.add_route(conn, FLEET_BIN, None, "cupnet", actor="bench")
        db.close()
        network = NetworkProcess(net_db, port=free_port(), control_port=free_port(), zmk_file=work / "zmk.key",
                                 log_path=work / "network.log")  # fmt: skip
        network.start(60)
        extra = (*extra, "--upstream", f"cupnet=127.0.0.1:{network.port}", "--zmk-file", str(work / "zmk.key"),
                 "--upstream-journal", str(work / "journal.db"))  # fmt: skip
    host = HostProcess(db_url, port=free_port(), demo=False, log_path=work / f"host-{name.replace(' ', '-')}.log",
                       extra_args=extra)  # fmt: skip
    try:
        host.start(60)
        return drive(f"host {name}", specs, cards, host.port, args.seconds, 1)
    finally:
        host.stop(30)
        if network is not None:
            network.stop(30)


@contextlib.contextmanager
def _database(work: Path, pg: bool, tag: str) -> Iterator[str]:
    if not pg:
        yield f"sqlite:///{work / (tag + '.db')}"
        return
    from posgate.store.testing import temp_pg_database

    with temp_pg_database(f"posgate_bench_up_{tag}_{os.getpid()}") as url:
        yield url


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Latency added by the upstream hop (host → network).")
    ap.add_argument("--terminals", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--pg", action="store_true", help="The host on PostgreSQL (4 commit workers) instead of SQLite.")
    args = ap.parse_args(argv)
    extra = ("--workers", "4") if args.pg else ()
    print(f"posgate bench upstream: {args.terminals} terminals, {args.seconds:g} s each, host on "
          f"{'PostgreSQL' if args.pg else 'SQLite'}", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="posgate-bench-up-") as tmp:
        work = Path(tmp)
        os.environ.setdefault("POSGATE_MASTER_KEY_FILE", str(work / "master.key"))
        results = []
        for routed in (False, True):
            sub = work / ("routed" if routed else "builtin")
            sub.mkdir()
            with _database(sub, args.pg, "routed" if routed else "builtin") as url:
                fig = run(args, sub, url, routed, extra)
            print(fig.line(), flush=True)
            results.append(fig)
    a, b = results
    print(f"hop adds p50 {b.p50_ms - a.p50_ms:+.2f} ms, p99 {b.p99_ms - a.p99_ms:+.2f} ms; "
          f"throughput ratio {b.tps / a.tps if a.tps else 0:.2f}")  # fmt: skip
    return 1 if any(r.errors or not r.count for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
