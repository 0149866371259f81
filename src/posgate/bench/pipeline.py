"""The host's pipeline per sale, in process: no network, no client, no event loop.

    python -m posgate.bench.pipeline [--terminals 32] [--rounds 40] [--db sqlite|postgresql]

What the SQLite writer does for a batch, measured alone: reserve RRNs, ``BEGIN IMMEDIATE``,
``process()`` for one sale of each terminal (real MAC, PIN translation, issuer, records), commit
(``synchronous=FULL`` here: this includes one fsync per batch, which the host does in a thread),
with the rows kept between batches as the host's writer keeps them. The terminals are the terminal
package's own core, signed on with real key exchange; their side is not timed. Prints the best
and the median round in µs per sale: the figure that the host's CPU per request in
``make bench-host`` sits on top of (network, replies, fsync thread). The machine is shared and
noisy: compare runs made one after the other, or count instructions with
``valgrind --tool=cachegrind python -m posgate.bench.pipeline --rounds 10``. The CPU figure
(``time.process_time`` of this process per sale) is this process's own work only, which drifts
less with the neighbours than wall time.

``--db postgresql``: the same on a PostgreSQL database made for the run (and dropped after),
as one commit worker of the PostgreSQL host runs it (no rows kept between batches, the commit
is the server's fsync); its wall time includes the round trips to the server.

``--kind``: what is sold (issue 14, what the cryptography costs). ``fallback`` (the default,
as before): each fleet terminal swipes its own chip card's stripe. ``magstripe``: the fleet's
DES terminals swipe the demo magstripe card (3DES MAC, PIN translated). ``chip``: each inserts
its own chip card (the terminal's card simulator makes a real ARQC; the host verifies it and
makes the ARPC). ``tap``: the same card tapped under the no-CVM limit (ARQC and ARPC, no PIN).
``sm4``: SM4 terminals (the demo's 40000001 and, for more than one, SM4 terminals added for the
run) swipe the demo magstripe card (SM4 MAC and PIN). ``all``: those four, one batch of each
kind in turn every round, each printed with its ratio to the magstripe sale of the same run.

``--callgrind``: runs the host's part of every batch inside ``contextvars.Context.run`` so that
``valgrind --tool=callgrind --collect-atstart=no --toggle-collect=context_run`` counts the
host's instructions only, not the terminals' (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import Any

KINDS = (
    "magstripe",
    "chip",
    "tap",
    "sm4",
)  # what --kind all runs, magstripe first: the others' ratios are to it
MAGSTRIPE_CARD = "6212142000000000012"  # docs/demo-data.md: CUP debit, magstripe, approved
SM4_DEMO_TERMINAL = (
    "40000001",
    "898100012340002",
)  # docs/demo-data.md: the SM4 (国密) terminal and its merchant


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="The host pipeline's time per sale, in process, on SQLite.")
    p.add_argument(
        "--terminals", type=int, default=32, help="Terminals, one sale each per batch (the batch size)."
    )
    p.add_argument("--rounds", type=int, default=40, help="Timed batches (of each kind).")
    p.add_argument(
        "--db",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="sqlite: a file in a temporary directory; postgresql: a database made for the run, then dropped.",
    )
    p.add_argument(
        "--plain",
        action="store_true",
        help="PostgreSQL: one statement after the other, as before issue 12 (no read-ahead, no pipeline mode).",
    )
    p.add_argument(
        "--settle-heap",
        action="store_true",
        help="Freeze the start-up heap out of the garbage collector first, as posgate serve does.",
    )
    p.add_argument(
        "--kind",
        choices=("fallback", *KINDS, "all"),
        default="fallback",
        help="What is sold: fallback (fleet chip cards swiped), magstripe, chip (inserted), tap (no CVM), "
        "sm4 (SM4 terminals), or all four of the last, alternating.",
    )
    p.add_argument(
        "--callgrind",
        action="store_true",
        help="Run the host's part inside contextvars.Context.run, for callgrind's --toggle-collect=context_run.",
    )
    args = p.parse_args(argv)
    kinds = list(KINDS) if args.kind == "all" else [args.kind]

    from posgate.fleet.fleet import (
        DEMO_PIN,
        FLEET_CHIP,
        TERMINALS_PER_CARD,
        TerminalSpec,
        card_for,
        fleet_tmk,
        provision,
    )
    from posgate.host.pipeline import process
    from posgate.host.server import builtin_issuer_factory, make_env, request_keys, settle_heap
    from posgate.store.database import Database
    from posgate.terminal import machine
    from posgate.terminal.cards import read_card
    from posgate.terminal.machine import Done, Input, Send

    with tempfile.TemporaryDirectory(prefix="posgate-pipeline-") as tmp, _database(args.db, Path(tmp)) as url:
        key = str(Path(tmp) / "master.key")
        os.environ["POSGATE_MASTER_KEY_FILE"] = key
        specs, cards = provision(url, args.terminals, key_file=key)
        pans = [cards[i // TERMINALS_PER_CARD][0] for i in range(len(specs))]
        db = Database.open(url, key_file=key)
        sm4_specs: list[TerminalSpec] = []
        if args.kind != "fallback":  # the demo's magstripe card and SM4 terminal
            sm4_specs = _sm4_terminals(db, args.terminals if "sm4" in kinds else 0, fleet_tmk, TerminalSpec)
        env = make_env(db)
        factory = builtin_issuer_factory(env)
        assert factory is not None
        conn = db.engine.connect()
        store = db.store(conn, driver=True)
        issuer = factory(store)
        sqlite = db.is_sqlite
        if sqlite and hasattr(
            store, "keep_rows"
        ):  # as the SQLite host's writer runs it (absent in older trees)
            store.keep_rows()
        driver = store.driver
        header = bytes.fromhex("603100000000")
        rounds: dict[str, list[float]] = {k: [] for k in kinds}
        cpu: dict[str, list[float]] = {k: [] for k in kinds}
        # Time spent in garbage collection during the timed batches (what --settle-heap is about).
        gc_time = [0.0, 0.0, 0]  # started at, total seconds, collections
        timing = False

        def on_gc(phase: str, info: dict[str, Any]) -> None:
            if not timing:
                return
            if phase == "start":
                gc_time[0] = time.perf_counter()
            else:
                gc_time[1] += time.perf_counter() - gc_time[0]
                gc_time[2] += 1

        gc.callbacks.append(on_gc)

        def host(bodies: list[bytes]) -> list[Any]:
            db.ids.top_up(2 * len(bodies))
            cur = driver.cursor()
            if sqlite or args.plain:
                if sqlite:
                    cur.execute("BEGIN IMMEDIATE")  # psycopg begins by itself
                store.begin_unit()
                replies = [process(header, b, store, issuer, env) for b in bodies]
            else:  # as the PostgreSQL host's commit worker runs a batch (BatchRunner._attempt_pipelined)
                keys, pans = request_keys(bodies, store.track_key)
                with store.pipelined(keys, len(bodies), pans):
                    replies = [process(header, b, store, issuer, env) for b in bodies]
            cur.close()
            driver.commit()
            return replies

        def batch(kind: str, bodies: list[bytes]) -> list[Any]:
            nonlocal timing
            timing = True
            t0, c0 = time.perf_counter(), time.process_time()
            replies = contextvars.Context().run(host, bodies) if args.callgrind else host(bodies)
            if kind in rounds:  # not the sign-ons
                rounds[kind].append((time.perf_counter() - t0) / len(bodies))
                cpu[kind].append((time.process_time() - c0) / len(bodies))
            timing = False
            return replies

        lanes = {"des": [machine.new_state(s.config()) for s in specs],
                 "sm4": [machine.new_state(s.config()) for s in sm4_specs]}  # fmt: skip

        def step(kind: str, inputs: list[Any]) -> list[Any]:
            states = lanes["sm4" if kind == "sm4" else "des"]
            outs = []
            for i, inp in enumerate(inputs):
                states[i], out = machine.start(states[i], inp, datetime.now(UTC))
                outs.append(out)
            while True:
                sends = [(i, o) for i, o in enumerate(outs) if isinstance(o, Send)]
                if not sends:
                    return [o.result for o in outs if isinstance(o, Done)]
                for (i, _), r in zip(sends, batch(kind, [o.body for _, o in sends]), strict=True):
                    st, outs[i] = machine.on_reply(
                        states[i], r.body, datetime.now(UTC), requirement=str(r.header[2] & 15)
                    )
                    states[i] = st.drained() if st.events else st

        rng = Random(14)  # the unpredictable numbers (9F37) of the chip reads: any will do

        def sales(kind: str) -> list[Input]:
            """One sale of 1.00 per terminal of the kind, as its reader hands the card over."""
            if kind == "fallback":
                return [Input("sale", amount=100, card=card_for(p)) for p in pans]
            if kind in ("magstripe", "sm4"):
                n = len(sm4_specs) if kind == "sm4" else len(specs)
                return [Input("sale", amount=100, card=read_card(MAGSTRIPE_CARD, "swipe", pin=DEMO_PIN))] * n
            entry, pin = (
                ("insert", DEMO_PIN) if kind == "chip" else ("tap", "")
            )  # a tap under the limit: no PIN
            return [Input("sale", amount=100, card=read_card(p, entry, pin=pin, amount=100, when=datetime.now(UTC),
                                                             randbytes=rng.randbytes, chip=FLEET_CHIP))
                    for p in pans]  # fmt: skip

        for lane in ("des", "sm4"):
            if lanes[lane] and not all(
                r.approved for r in step(lane, [Input("sign_on") for _ in lanes[lane]])
            ):
                print("sign-on refused", file=sys.stderr)
                return 1
        if args.settle_heap:
            settle_heap()
        for _ in range(3):  # warm: statements prepared, caches filled
            for kind in kinds:
                step(kind, sales(kind))
        for kind in kinds:
            rounds[kind].clear()
            cpu[kind].clear()
        gc_time[1:] = [0.0, 0]
        for _ in range(args.rounds):
            for kind in kinds:  # alternating: each kind sees the same neighbours
                results = step(kind, sales(kind))
                if not all(r.approved for r in results):
                    codes = sorted({r.response_code for r in results if not r.approved})
                    print(f"a {kind} sale was declined: {', '.join(codes)}", file=sys.stderr)
                    return 1
        conn.close()
        db.close()
    gc.callbacks.remove(on_gc)
    name = (
        "SQLite"
        if args.db == "sqlite"
        else "PostgreSQL" + (" (plain)" if args.plain else " (read-ahead, pipeline mode)")
    )
    base = statistics.median(cpu[kinds[0]])
    for kind in kinds:
        us = sorted(r * 1e6 for r in rounds[kind])
        median_cpu = statistics.median(cpu[kind])
        label = "" if kind == "fallback" else f"{kind} sale, "
        ratio = f" ({median_cpu / base:.2f}x magstripe)" if args.kind == "all" else ""
        size = len(sm4_specs) if kind == "sm4" else args.terminals
        print(f"pipeline in process, {label}{name}, batches of {size}: best {us[0]:.1f} us/sale, "
              f"median {statistics.median(us):.1f} us/sale over {len(us)} batches; "
              f"CPU of this process median {median_cpu * 1e6:.1f} us/sale{ratio}")  # fmt: skip
    sales_n = sum(len(r) for r in rounds.values()) * args.terminals
    print(f"garbage collection in those batches: {gc_time[1] / sales_n * 1e6:.1f} us/sale ({gc_time[2]} collections, "
          f"{gc_time[1] * 1000:.1f} ms){', heap settled' if args.settle_heap else ''}")  # fmt: skip
    return 0


def _sm4_terminals(db: Any, n: int, tmk_of: Any, spec: Any) -> list[Any]:
    """The demo data (its magstripe card, its SM4 terminal 40000001) and ``n`` SM4 terminals to
    sell on: 40000001 and, for a batch of more than one, SM4 terminals of the same merchant added
    for the run (41000001...)."""
    from posgate.store.admin import add_terminal
    from posgate.store.demo import SM4_TERMINALS, provision_demo

    provision_demo(db.engine, db.keyring)
    tid, mid = SM4_DEMO_TERMINAL
    demo = next(t for t in SM4_TERMINALS if t[0] == tid)
    specs = [spec(tid, mid, bytes.fromhex(demo[2]), demo[3], "sm4")] if n else []
    with db.engine.begin() as conn:
        for i in range(1, n):
            extra = f"{41000000 + i:08d}"
            add_terminal(conn, db.keyring, extra, mid, tmk=tmk_of(extra), serial=f"SM4B{i:04d}", actor="bench",
                         algorithm="sm4")  # fmt: skip
            specs.append(spec(extra, mid, tmk_of(extra), f"SM4B{i:04d}", "sm4"))
    return specs


@contextlib.contextmanager
def _database(kind: str, tmp: Path) -> Iterator[str]:
    """The database URL for the run: a SQLite file in ``tmp``, or a PostgreSQL database of its
    own (uniquely named, dropped afterwards: others may be running on the same server)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'bench.db'}"
        return
    from posgate.store.testing import pg_available, temp_pg_database

    if not pg_available():
        raise SystemExit("PostgreSQL is not reachable (POSGATE_TEST_PG or 127.0.0.1:5432)")
    with temp_pg_database("posgate_pipeline") as url:
        yield url


if __name__ == "__main__":
    sys.exit(main())
