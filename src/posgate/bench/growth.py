"""``make bench-growth``: the host and the console on a database grown to ``--rows`` transactions.

    python -m posgate.bench.growth [--rows 10000000] [--merchants 2000] [--days 365]
                                   [--backends sqlite,postgres] [--seconds 8] [--searches 40]

For each backend, two databases side by side: one **empty** (only the fleet's terminals and
cards) and one **loaded** with ``--rows`` past sales by the bulk loader
(``posgate.store.bulkload``, the same as ``posgate admin load-demo-history``; Rich progress).
Then, per backend:

* **sales/s, loaded against empty**: the host (``posgate serve``) driven by ``posgate fleet``
  for ``--seconds``, alternately on the empty and the loaded database, twice each (each round
  with fresh fleet terminals); the medians and their ratio (the goal: within 10 %);
* **console search p95**: ``posgate.console.txns.search`` — the function the transactions page
  and ``GET /api/v1/transactions`` call, count included — as the acquirer's staff, for
  ``--searches`` random queries of each kind: a card number (keyed hash), a card's last four
  digits, a 7-day date range, an exact amount, a terminal, a merchant user's 30 days;
* **settling a batch**: a fresh terminal does 200 sales, then settles (0500, batch upload):
  the settlement's time as the cashier waits for it, empty and loaded;
* **backup + verified restore** (``posgate.console.backup``, as ``posgate backup`` /
  ``posgate restore``, with their progress bars) of the loaded database: time and size.

The machine is shared: figures of one run are comparable, absolute numbers drift
(docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SEARCH_KINDS = ("card number", "card last 4", "date range 7 d", "amount", "terminal", "merchant user 30 d")
SETTLE_SALES = 200


@dataclass
class BackendFigures:
    name: str
    empty_tps: list[float] = field(default_factory=list)
    loaded_tps: list[float] = field(default_factory=list)
    load_seconds: float = 0.0
    load_rate: float = 0.0
    search_ms: dict[str, list[float]] = field(default_factory=dict)
    settle_ms: dict[str, float] = field(default_factory=dict)
    backup_s: float = 0.0
    backup_bytes: int = 0
    restore_s: float = 0.0
    errors: int = 0


@contextlib.contextmanager
def _database(kind: str, work: Path, name: str) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{work / (name + '.db')}"
        return
    from posgate.store.testing import temp_pg_database

    with temp_pg_database(f"posgate_growth_{name}_{os.getpid()}") as url:
        yield url


def _sales_per_s(
    url: str, specs: list[Any], cards: list[Any], seconds: float, work: Path, tag: str
) -> tuple[float, int]:
    from posgate.bench.bench import drive
    from posgate.fleet.hostproc import HostProcess
    from posgate.fleet.net import free_port

    host = HostProcess(url, port=free_port(), demo=False, log_path=work / f"host-{tag}.log")
    try:
        host.start(120)
        fig = drive(tag, specs, cards, host.port, seconds, 1)
    finally:
        host.stop(30)
    return fig.tps, fig.errors


def _settle_ms(url: str, spec: Any, card: Any, work: Path, tag: str) -> float:
    from posgate.fleet.fleet import Fleet, FleetConfig, _run_loop
    from posgate.fleet.hostproc import HostProcess
    from posgate.fleet.net import free_port

    host = HostProcess(url, port=free_port(), demo=False, log_path=work / f"host-settle-{tag}.log")
    try:
        host.start(120)
        cfg = FleetConfig(port=host.port, terminals=1, duration=None, transactions=SETTLE_SALES, mix={"sale": 1},
                          timeout=30, settle=True, settle_every=0, specs=[spec], cards=[card], ramp=0, own_card=True)  # fmt: skip
        report = _run_loop(Fleet(cfg).run())
    finally:
        host.stop(30)
    s = report["by_operation"].get("settlement")
    return float(s["latency_ms"]["max"]) if s and s["approved"] else float("nan")


def search_queries(
    rng: random.Random, plan: Any, terminals: list[tuple[str, str]], first_day: str, n: int
) -> Iterator[tuple[str, dict[str, str], str | None]]:
    """(kind, query parameters, merchant of the principal or None for acquirer staff)."""
    from datetime import date, timedelta

    from posgate.store.bulkload import history_pan

    d0 = date.fromisoformat(first_day)
    for _ in range(n):
        pan = history_pan(rng.randrange(plan.cards) + 1)
        yield "card number", {"card": pan}, None
        yield "card last 4", {"card": history_pan(rng.randrange(plan.cards) + 1)[-4:]}, None
        a = d0 + timedelta(days=rng.randrange(max(1, plan.days - 6)))
        yield (
            "date range 7 d",
            {"day_from": a.isoformat(), "day_to": (a + timedelta(days=6)).isoformat()},
            None,
        )
        fen = rng.randint(*plan.amounts)
        yield "amount", {"amount": f"{fen // 100}.{fen % 100:02d}"}, None
        yield "terminal", {"terminal_id": rng.choice(terminals)[0]}, None
        b = d0 + timedelta(days=rng.randrange(max(1, plan.days - 29)))
        yield (
            "merchant user 30 d",
            {"day_from": b.isoformat(), "day_to": (b + timedelta(days=29)).isoformat()},
            rng.choice(terminals)[1],
        )


def principal(merchant_id: str | None) -> Any:
    from posgate.console.auth import ACQUIRER_ADMIN, MERCHANT_ADMIN, Principal

    role = MERCHANT_ADMIN if merchant_id else ACQUIRER_ADMIN
    return Principal(user_id=0, username="bench", display_name="bench", role=role, merchant_id=merchant_id, csrf="",
                     session_id=0, kind="api")  # fmt: skip


def run_searches(
    url: str, keyring: Any, queries: list[tuple[str, dict[str, str], str | None]]
) -> dict[str, list[float]]:
    from posgate.console import txns
    from posgate.console.db import Database, make_engine

    db = Database(make_engine(url))
    out: dict[str, list[float]] = {k: [] for k in SEARCH_KINDS}
    try:
        for kind, params, merchant in queries:
            q = txns.TxnQuery.from_params(params)
            t0 = time.perf_counter()
            with db.read() as conn:
                txns.search(conn, principal(merchant), q, keyring)
            out[kind].append((time.perf_counter() - t0) * 1000)
    finally:
        db.engine.dispose()
    return out


def p95(values: list[float]) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(0.95 * (len(v) - 1))))] if v else float("nan")


def backup_restore(url: str, work: Path, key_file: str) -> tuple[float, int, float]:
    from posgate.console import backup
    from posgate.console.db import make_engine

    engine = make_engine(url)
    try:
        t0 = time.monotonic()
        with backup.progress_bar("backup") as progress:
            manifest = backup.make_backup(engine, work / "backups", progress=progress)
        backup_s = time.monotonic() - t0
    finally:
        engine.dispose()
    with _database("sqlite" if url.startswith("sqlite") else "postgres", work, "restored") as target:
        t0 = time.monotonic()
        with backup.progress_bar("restore") as progress:
            result = backup.restore(Path(manifest["path"]), target, key_file, progress=progress)
        restore_s = time.monotonic() - t0
        if not result.get("verified"):
            raise RuntimeError("restore not verified")
    return backup_s, int(manifest["size"]), restore_s


def run_backend(kind: str, args: argparse.Namespace, work: Path) -> BackendFigures:
    from posgate.console import backup
    from posgate.fleet.fleet import provision
    from posgate.store.bulkload import HistoryPlan, history_terminals, load_history
    from posgate.store.database import Database

    fig = BackendFigures(kind)
    plan = HistoryPlan(rows=args.rows, merchants=args.merchants, days=args.days, cards=args.cards)
    key_file = os.environ["POSGATE_MASTER_KEY_FILE"]
    t = args.terminals
    with _database(kind, work, "empty") as empty, _database(kind, work, "loaded") as loaded:
        specs_e, cards_e = provision(empty, 2 * t + 1)
        specs_l, cards_l = provision(loaded, 2 * t + 1)
        db = Database.open(loaded)
        try:
            with backup.progress_bar(f"load {kind}") as progress:
                res = load_history(db, plan, progress=lambda done, total: progress("rows", done, total))
            keyring = db.keyring
        finally:
            db.close()
        fig.load_seconds, fig.load_rate = res.seconds, res.rows_per_s
        print(f"{kind}: loaded {res.rows:,} sales ({res.first_day} .. {res.last_day}, {res.terminals} terminals, "
              f"{res.cards:,} cards) in {res.seconds:.1f} s: {res.rows_per_s:,.0f} rows/s", flush=True)  # fmt: skip
        # Alternate empty / loaded, fresh fleet terminals each round (their STANs start again at 1).
        for r in range(2):
            part = slice(r * t, (r + 1) * t)
            for name, url, specs, cards, into in (("empty", empty, specs_e, cards_e, fig.empty_tps),
                                                  ("loaded", loaded, specs_l, cards_l, fig.loaded_tps)):  # fmt: skip
                tps, errors = _sales_per_s(
                    url, specs[part], cards[part], args.seconds, work, f"{kind}-{name}-{r}"
                )
                fig.errors += errors
                into.append(tps)
                print(f"{kind}: sales/s {name} (round {r + 1}): {tps:,.1f}", flush=True)
        queries = list(
            search_queries(random.Random(7), plan, history_terminals(plan), res.first_day, args.searches)
        )
        fig.search_ms = run_searches(loaded, keyring, queries)
        for name, url, specs, cards in (
            ("empty", empty, specs_e, cards_e),
            ("loaded", loaded, specs_l, cards_l),
        ):
            fig.settle_ms[name] = _settle_ms(url, specs[2 * t], cards[2 * t], work, f"{kind}-{name}")
        if not args.no_backup:
            fig.backup_s, fig.backup_bytes, fig.restore_s = backup_restore(loaded, work, key_file)
    return fig


def report(fig: BackendFigures) -> list[str]:
    e, lo = statistics.median(fig.empty_tps), statistics.median(fig.loaded_tps)
    lines = [
        f"{fig.name}: sales/s empty {e:,.1f}  loaded {lo:,.1f}  loaded/empty {lo / e if e else 0:.2f} (goal >= 0.90)"
        f"  [rounds: empty {', '.join(f'{x:,.0f}' for x in fig.empty_tps)}; loaded {', '.join(f'{x:,.0f}' for x in fig.loaded_tps)}]",
        f"{fig.name}: bulk load {fig.load_rate:,.0f} rows/s ({fig.load_seconds:.1f} s)",
    ]  # fmt: skip
    every = [x for v in fig.search_ms.values() for x in v]
    lines.append(
        f"{fig.name}: console search p95 {p95(every):.1f} ms over {len(every)} searches (goal <= 200 ms)"
    )
    for kind in SEARCH_KINDS:
        v = fig.search_ms.get(kind, [])
        if v:
            lines.append(
                f"{fig.name}:   {kind:<20} p50 {statistics.median(v):7.1f} ms  p95 {p95(v):7.1f} ms  max {max(v):7.1f} ms"
            )
    lines.append(f"{fig.name}: settling a batch of {SETTLE_SALES} sales: empty {fig.settle_ms.get('empty', 0):.0f} ms, "
                 f"loaded {fig.settle_ms.get('loaded', 0):.0f} ms (goal <= 1000 ms)")  # fmt: skip
    if fig.backup_bytes:
        lines.append(f"{fig.name}: backup {fig.backup_s:.1f} s ({fig.backup_bytes / 1e6:,.1f} MB archive), verified restore "
                     f"{fig.restore_s:.1f} s")  # fmt: skip
    if fig.errors:
        lines.append(f"{fig.name}: {fig.errors} fleet errors (timeouts, communication)")
    return lines


def main(argv: list[str] | None = None) -> int:
    from posgate.store.testing import pg_available

    ap = argparse.ArgumentParser(
        description="The host and the console on a database grown to --rows transactions."
    )
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--merchants", type=int, default=2000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--cards", type=int, default=200_000, help="Distinct cardholders in the history.")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--terminals", type=int, default=50, help="Fleet terminals per sales/s round.")
    ap.add_argument("--seconds", type=float, default=8.0, help="Seconds of load per sales/s round.")
    ap.add_argument("--searches", type=int, default=40, help="Random searches of each kind.")
    ap.add_argument("--no-backup", action="store_true", help="Skip the backup and restore.")
    ap.add_argument(
        "--dir", type=Path, default=None, help="Work directory (default: a temporary one; needs room)."
    )
    args = ap.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if set(backends) - {"sqlite", "postgres"} or not backends:
        ap.error("--backends: sqlite and/or postgres")
    print(f"posgate bench-growth: {args.rows:,} sales over {args.merchants} merchants and {args.days} days; "
          f"{os.cpu_count()} CPUs (shared machine: compare within the run)", flush=True)  # fmt: skip
    failed = False
    with tempfile.TemporaryDirectory(prefix="posgate-growth-", dir=args.dir) as tmp:
        work = Path(tmp)
        os.environ.setdefault("POSGATE_MASTER_KEY_FILE", str(work / "master.key"))
        figures = []
        for kind in backends:
            if kind == "postgres" and not pg_available():
                print("postgres: PostgreSQL not reachable at 127.0.0.1:5432, skipped", flush=True)
                continue
            fig = run_backend(kind, args, work)
            figures.append(fig)
            for line in report(fig):
                print(line, flush=True)
            failed = failed or bool(fig.errors)
    if len(figures) > 1:
        print("summary:")
        for fig in figures:
            for line in report(fig)[:3]:
                print("  " + line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
