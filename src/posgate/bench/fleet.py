"""``make bench-fleet``: one fleet process holding N terminals connected and signed on.

    python -m posgate.bench.fleet [--terminals 2000] [--concurrency 500] [--hold 5] [--sample 200]

Provisions N terminals and cards in a fresh SQLite database (the fleet's provisioning, through
the store's admin API), starts ``posgate serve`` with room for them (``--max-connections``),
then, in this one process, opens N terminal sessions that keep their connection
(``TerminalSession.keep_open``) and signs them all on at once — at most ``--concurrency`` in
flight, the rest queued, as when a mall's terminals all power on at opening time — with the
real key exchange (the host generates and stores each terminal's working keys). Prints:

* **sign-on storm**: time until every terminal is signed on, and the rate;
* **memory per terminal**: resident memory (RSS) added to the fleet process and to the host,
  divided by N, with every connection open; the descriptors each holds;
* **still connected**: after ``--hold`` seconds, ``--sample`` terminals each make a sale over the
  connection they kept (no reconnect: the connection count is checked), p50/p99.

Both processes raise their soft open-file limit to the hard one (``posgate.fdlimit``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def rss_kib(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fd_count(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def storm(
    specs: list[Any], cards: list[tuple[str, str]], port: int, args: argparse.Namespace, host: Any
) -> dict[str, Any]:
    import gc

    from posgate.fleet.fleet import DEMO_PIN, FleetStats, SimTerminal, card_for
    from posgate.terminal.machine import Input

    gc.collect()
    rss0, fds0 = rss_kib(), fd_count()
    host_rss0, host_fds0 = rss_kib(host.pid), fd_count(host.pid)
    stats = FleetStats()
    terminals = [SimTerminal(spec, ("127.0.0.1", port), timeout=args.timeout, stats=stats) for spec in specs]
    for t in terminals:
        t.session.keep_open = True
    gate = asyncio.Semaphore(args.concurrency)
    failed: list[SimTerminal] = []

    async def sign_on(t: SimTerminal) -> None:
        async with gate:
            r = await t.run(Input("sign_on"))
        if not r.approved:
            failed.append(t)

    t0 = time.monotonic()
    await asyncio.gather(*(sign_on(t) for t in terminals))
    first_pass = time.monotonic() - t0
    first_failed = len(failed)
    retry, failed[:] = list(failed), []
    await asyncio.gather(*(sign_on(t) for t in retry))
    storm_s = time.monotonic() - t0
    gc.collect()
    await asyncio.sleep(args.hold)
    rss1, fds1 = rss_kib(), fd_count()
    host_rss1, host_fds1 = rss_kib(host.pid), fd_count(host.pid)
    connected = sum(1 for t in terminals if t.session._writer is not None and not t.session._dead())
    # A sale on each of a sample of terminals, over the connection it kept.
    sample = random.Random(5).sample(terminals, min(args.sample, len(terminals)))
    writers = {id(t): t.session._writer for t in sample}
    lat: list[float] = []
    approved = 0

    async def sale(t: SimTerminal, i: int) -> None:
        nonlocal approved
        pan, expiry = cards[i % len(cards)]
        s0 = time.perf_counter()
        r = await t.run(Input("sale", amount=100, card=card_for(pan, expiry, DEMO_PIN)))
        lat.append(time.perf_counter() - s0)
        approved += bool(r.approved)

    index = {id(t): i for i, t in enumerate(terminals)}
    await asyncio.gather(*(sale(t, index[id(t)]) for t in sample))
    reused = sum(1 for t in sample if t.session._writer is not None and t.session._writer is writers[id(t)])
    for t in terminals:
        t.session.keep_open = False
    await asyncio.gather(*(t.close() for t in terminals), return_exceptions=True)
    lat.sort()
    n = len(terminals)
    return {
        "terminals": n, "storm_s": storm_s, "first_pass_s": first_pass, "first_pass_failed": first_failed,
        "not_signed_on": len(failed), "connected": connected,
        "fleet_kib_per_terminal": (rss1 - rss0) / n, "host_kib_per_terminal": (host_rss1 - host_rss0) / n,
        "fleet_rss_mib": rss1 / 1024, "host_rss_mib": host_rss1 / 1024,
        "fleet_fds": fds1 - fds0, "host_fds": host_fds1 - host_fds0,
        "sample": len(sample), "sample_approved": approved, "sample_same_connection": reused,
        "sale_p50_ms": lat[len(lat) // 2] * 1000 if lat else 0.0,
        "sale_p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else 0.0,
        "re_sign_ons": stats.re_sign_ons,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    from posgate.fdlimit import raise_fd_limit
    from posgate.fleet.fleet import _run_loop, provision
    from posgate.fleet.hostproc import HostProcess
    from posgate.fleet.net import free_port

    ap = argparse.ArgumentParser(description="One fleet process holding N terminals connected and signed on.")
    ap.add_argument("--terminals", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=500, help="Sign-ons in flight at once at most.")
    ap.add_argument(
        "--hold", type=float, default=5.0, help="Seconds to hold every connection before the sample."
    )
    ap.add_argument(
        "--sample", type=int, default=200, help="Terminals that make a sale over the kept connection."
    )
    ap.add_argument("--timeout", type=float, default=60.0, help="Terminal comm timeout (s).")
    args = ap.parse_args(argv)
    if args.terminals < 1 or args.concurrency < 1:
        ap.error("--terminals and --concurrency must be at least 1")
    limit = raise_fd_limit()
    need = args.terminals + 200
    if limit and limit < need:
        print(f"bench-fleet: the open-file limit is {limit}, {need} are needed (ulimit -Hn)", file=sys.stderr)
        return 2
    print(f"posgate bench-fleet: {args.terminals:,} terminals in one fleet process, sign-ons {args.concurrency} at a "
          f"time; open-file limit {limit}; {os.cpu_count()} CPUs (shared machine)", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="posgate-fleet-") as tmp:
        work = Path(tmp)
        os.environ.setdefault("POSGATE_MASTER_KEY_FILE", str(work / "master.key"))
        url = f"sqlite:///{work / 'fleet.db'}"
        t0 = time.monotonic()
        specs, cards = provision(url, args.terminals)
        print(
            f"provisioned {args.terminals:,} terminals and cards in {time.monotonic() - t0:.1f} s", flush=True
        )
        host = HostProcess(url, port=free_port(), demo=False, log_path=work / "host.log",
                           extra_args=("--max-connections", str(args.terminals + 100)))  # fmt: skip
        try:
            host.start(120)
            r = _run_loop(storm(specs, cards, host.port, args, host))
        finally:
            host.stop(60)
    print(f"sign-on storm: {r['terminals']:,} terminals signed on in {r['storm_s']:.1f} s "
          f"({r['terminals'] / r['storm_s']:,.0f} sign-ons/s; first pass {r['first_pass_s']:.1f} s, "
          f"{r['first_pass_failed']} retried), not signed on: {r['not_signed_on']}")  # fmt: skip
    print(f"connected after {args.hold:g} s: {r['connected']:,} of {r['terminals']:,}")
    print(f"memory per terminal: fleet {r['fleet_kib_per_terminal']:.1f} KiB, host {r['host_kib_per_terminal']:.1f} KiB "
          f"(RSS fleet {r['fleet_rss_mib']:.0f} MiB, host {r['host_rss_mib']:.0f} MiB; descriptors fleet "
          f"+{r['fleet_fds']:,}, host +{r['host_fds']:,})")  # fmt: skip
    print(f"sale over the kept connection, {r['sample']} terminals: approved {r['sample_approved']}, same connection "
          f"{r['sample_same_connection']}, p50 {r['sale_p50_ms']:.1f} ms, p99 {r['sale_p99_ms']:.1f} ms")  # fmt: skip
    ok = not r["not_signed_on"] and r["connected"] == r["terminals"] and r["sample_approved"] == r["sample"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
