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
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="The host pipeline's time per sale, in process, on SQLite.")
    p.add_argument("--terminals", type=int, default=32, help="Terminals, one sale each per batch (the batch size).")
    p.add_argument("--rounds", type=int, default=40, help="Timed batches.")
    p.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite",
                   help="sqlite: a file in a temporary directory; postgresql: a database made for the run, then dropped.")
    p.add_argument("--plain", action="store_true",
                   help="PostgreSQL: one statement after the other, as before issue 12 (no read-ahead, no pipeline mode).")
    p.add_argument("--settle-heap", action="store_true",
                   help="Freeze the start-up heap out of the garbage collector first, as posgate serve does.")
    args = p.parse_args(argv)

    from posgate.fleet.fleet import TERMINALS_PER_CARD, card_for, provision
    from posgate.host.pipeline import process
    from posgate.host.server import builtin_issuer_factory, make_env, request_keys, settle_heap
    from posgate.store.database import Database
    from posgate.terminal import machine
    from posgate.terminal.machine import Done, Input, Send

    with tempfile.TemporaryDirectory(prefix="posgate-pipeline-") as tmp, _database(args.db, Path(tmp)) as url:
        key = str(Path(tmp) / "master.key")
        os.environ["POSGATE_MASTER_KEY_FILE"] = key
        specs, cards = provision(url, args.terminals, key_file=key)
        pans = [cards[i // TERMINALS_PER_CARD][0] for i in range(len(specs))]
        db = Database.open(url, key_file=key)
        env = make_env(db)
        factory = builtin_issuer_factory(env)
        assert factory is not None
        conn = db.engine.connect()
        store = db.store(conn, driver=True)
        issuer = factory(store)
        sqlite = db.is_sqlite
        if sqlite and hasattr(store, "keep_rows"):  # as the SQLite host's writer runs it (absent in older trees)
            store.keep_rows()
        driver = store.driver
        header = bytes.fromhex("603100000000")
        rounds: list[float] = []
        cpu: list[float] = []
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

        def batch(bodies: list[bytes]) -> list[Any]:
            nonlocal timing
            timing = True
            t0, c0 = time.perf_counter(), time.process_time()
            db.ids.top_up(2 * len(bodies))
            cur = driver.cursor()
            if sqlite or args.plain:
                if sqlite:
                    cur.execute("BEGIN IMMEDIATE")  # psycopg begins by itself
                store.begin_unit()
                replies = [process(header, b, store, issuer, env) for b in bodies]
            else:  # as the PostgreSQL host's commit worker runs a batch (BatchRunner._attempt_pipelined)
                keys, pans = request_keys(bodies)
                with store.pipelined(keys, len(bodies), pans):
                    replies = [process(header, b, store, issuer, env) for b in bodies]
            cur.close()
            driver.commit()
            rounds.append((time.perf_counter() - t0) / len(bodies))
            cpu.append((time.process_time() - c0) / len(bodies))
            timing = False
            return replies

        states = [machine.new_state(s.config()) for s in specs]

        def step(inputs: list[Any]) -> list[Any]:
            outs = []
            for i, inp in enumerate(inputs):
                states[i], out = machine.start(states[i], inp, datetime.now(UTC))
                outs.append(out)
            while True:
                sends = [(i, o) for i, o in enumerate(outs) if isinstance(o, Send)]
                if not sends:
                    return [o.result for o in outs if isinstance(o, Done)]
                for (i, _), r in zip(sends, batch([o.body for _, o in sends]), strict=True):
                    st, outs[i] = machine.on_reply(states[i], r.body, datetime.now(UTC), requirement=str(r.header[2] & 15))
                    states[i] = st.drained() if st.events else st

        if not all(r.approved for r in step([Input("sign_on") for _ in specs])):
            print("sign-on refused", file=sys.stderr)
            return 1
        if args.settle_heap:
            settle_heap()
        for _ in range(3):  # warm: statements prepared, caches filled
            step([Input("sale", amount=100, card=card_for(p)) for p in pans])
        rounds.clear()
        cpu.clear()
        gc_time[1:] = [0.0, 0]
        for _ in range(args.rounds):
            results = step([Input("sale", amount=100, card=card_for(p)) for p in pans])
            if not all(r.approved for r in results):
                print("a sale was declined", file=sys.stderr)
                return 1
        conn.close()
        db.close()
    gc.callbacks.remove(on_gc)
    us = sorted(r * 1e6 for r in rounds)
    name = "SQLite" if args.db == "sqlite" else "PostgreSQL" + (" (plain)" if args.plain else " (read-ahead, pipeline mode)")
    print(f"pipeline in process, {name}, batches of {args.terminals}: best {us[0]:.1f} us/sale, "
          f"median {statistics.median(us):.1f} us/sale over {len(us)} batches; "
          f"CPU of this process median {statistics.median(cpu) * 1e6:.1f} us/sale")  # fmt: skip
    sales = len(us) * args.terminals
    print(f"garbage collection in those batches: {gc_time[1] / sales * 1e6:.1f} us/sale ({gc_time[2]} collections, "
          f"{gc_time[1] * 1000:.1f} ms){', heap settled' if args.settle_heap else ''}")  # fmt: skip
    return 0


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
