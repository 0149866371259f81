"""Host benchmark: durable sales per second and latency, against the echo ceiling, in one run.

    python -m posgate.bench.host [--terminals 100] [--sales 200] [--backends sqlite,postgres]
                                 [--client light|core] [--rate SALES_PER_S]

For each backend (SQLite in a temporary directory; PostgreSQL in a temporary database when
one is reachable) it provisions N terminals and their cards (the fleet's provisioning, through
the store's admin API), starts ``posgate serve`` in a subprocess, and runs N terminals in
client processes, each over one persistent connection, doing a sign-on and then ``--sales``
sales back to back (or paced, with ``--rate``: open loop). Two clients drive the terminals:

* ``light`` (the default), a load generator in the manner of wrk or jPOS's client simulator
  (``bench.loadclient``): the sign-on is the terminal core's own (real key exchange: the host
  generates the working keys), then each sale is a 0200 built from the signed-on state with the
  dialect's codec — the PIN block and the encrypted track computed once (format 0 and TDES-ECB
  have no per-transaction element), a new STAN and a real MAC under the MAK per sale — and each
  reply is decoded and checked (MTI, echoed fields, 39, its MAC under the MAK). The body is byte
  for byte what the core sends (tests/codec/test_bench_client.py). About 70-85 µs of client CPU
  per sale on the 2-core dev host (two MACs, an encode and a decode, the event loop), a sixth
  of the host's CPU per request.
* ``core``, the terminal package's full sans-IO core for every sale (planning, reversal record,
  transaction log, immutable state): a real terminal, but ~370-500 µs of client CPU per sale on
  the same machine, as much as the host spends, so the client then caps the figure (the two
  share two cores).

The header line says which client ran, and every line gives the client processes' CPU per sale
(``time.process_time`` summed over them, sales phase only) next to the host's CPU per request:
when the client's share is small, the figure is the host's. Throughput counts the sales phase
only (all terminals signed on, then started together); latency is per sale, from the cashier's
input (or the sale's due time, open loop) to the checked result.
Then the echo server (``bench.echo``: same framing, uvloop + asyncio.Protocol, no work) is
driven by the same number of connections with raw frames of a sale's size: the transport
ceiling. Finally every approved sale a terminal saw is looked up in the database.

The machines are shared and noisy (see docs/benchmarks.md): compare figures
within one run; the ratio host/echo is the stable one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from posgate.framing import Frame, FrameReader, Header, Tpdu, encode_frame

TPDU = Tpdu.from_hex("6000030000")
SALE_AMOUNT = 100  # fen
CLIENTS = ("light", "core")


# -- the client side (runs in the client processes) -----------------------------------------------


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = FrameReader()
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[Frame] | None = None
        self.lost = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance check here.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        for f in self.reader.feed(data):
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(f)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionResetError("the server closed the connection"))
        self.lost.set()

    async def exchange(self, frame: bytes, timeout: float = 15.0) -> Frame:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(frame)
        return await asyncio.wait_for(self.waiter, timeout)

    async def exchange_light(self, frame: bytes, timeout: float = 15.0) -> Frame:
        """:meth:`exchange` for the light client: the same TimeoutError after ``timeout``, from
        one timer handle instead of ``asyncio.wait_for`` (which wraps the wait in a second
        future and callbacks: ~5 µs of CPU per call here, ~4 µs more than the timer)."""
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        waiter = self.waiter = loop.create_future()
        self.transport.write(frame)
        timer = loop.call_later(timeout, _expire, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()


def _expire(waiter: asyncio.Future[Frame]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("no reply"))


@dataclass
class ClientReport:
    latencies: list[float] = field(default_factory=list)
    codes: dict[str, int] = field(default_factory=dict)
    approved: list[tuple[str, str, str]] = field(default_factory=list)  # (tid, batch, stan)
    errors: int = 0
    start: float = 0.0
    end: float = 0.0
    cpu: float = 0.0  # this client process's CPU (time.process_time) over the sales phase, seconds


class CoreTerminal:
    """A terminal: the terminal package's sans-IO core over one persistent connection."""

    def __init__(self, spec: Any, port: int, host: str = "127.0.0.1") -> None:
        from posgate.terminal import machine

        self.spec = spec
        self.address = (host, port)
        self.state = machine.new_state(spec.config())
        self.conn: _Conn | None = None

    async def connect(self) -> None:
        _, self.conn = await asyncio.get_running_loop().create_connection(_Conn, *self.address)

    async def run(self, inp: Any) -> Any:
        """One operation end to end (make-up sign-ons, reversals and retries included); a lost
        connection or a timeout is the core's business (pending reversal), the result says so."""
        from posgate.terminal import machine
        from posgate.terminal.machine import Done, Send

        state, out = machine.start(self.state, inp, datetime.now(UTC))
        while isinstance(out, Send):
            header = replace(_HEADER, category=out.category)
            try:
                if self.conn is None or self.conn.lost.is_set():
                    await self.connect()
                assert self.conn is not None
                reply = await self.conn.exchange(encode_frame(TPDU.encode(), header.encode(), out.body))
            except TimeoutError:
                self.close()
                state, out = machine.on_timeout(state, datetime.now(UTC))
            except OSError:  # refused, reset (ConnectionError is an OSError)
                sent = self.conn is not None
                self.close()
                state, out = machine.on_comm_error(state, datetime.now(UTC), sent=sent)
            else:
                requirement = f"{reply.header[2] & 0x0F}"
                state, out = machine.on_reply(state, reply.body, datetime.now(UTC), requirement=requirement)
        self.state = state.drained() if state.events else state
        assert isinstance(out, Done)
        return out.result

    def close(self) -> None:
        if self.conn is not None and self.conn.transport is not None:
            self.conn.transport.close()
        self.conn = None


_HEADER = Header.from_hex("603100000000")


async def _sign_on(spec: Any, port: int) -> CoreTerminal:
    """A terminal signed on by the core: the host generated its working keys."""
    from posgate.terminal.machine import Input

    term = CoreTerminal(spec, port)
    result = await term.run(Input("sign_on"))
    if not result.approved:
        term.close()
        raise RuntimeError(f"sign-on of {spec.terminal_id} refused: {result.response_code} {result.error}")
    return term


async def _pace(start: float, k: int, period: float) -> float:
    """Sale k's start time: now (closed loop), or its due time in the open loop (start +
    k * period), sleeping until then. Latency counts from the due time even when the sale
    starts late: a late start is waiting the cashier sees (no coordinated omission)."""
    t0 = time.perf_counter()
    if period:
        due = start + k * period
        if due > t0:
            await asyncio.sleep(due - t0)
        t0 = due
    return t0


def _count(report: ClientReport, code: str) -> None:
    report.codes[code] = report.codes.get(code, 0) + 1


async def _core_terminal(spec: Any, pan: str, port: int, sales: int, go: Any, ready: Any, report: ClientReport,
                         period: float = 0.0, phase: float = 0.0) -> None:  # fmt: skip
    """``--client core``: every sale through the terminal core (machine.start / on_reply)."""
    from posgate.fleet.fleet import card_for
    from posgate.terminal.machine import Input

    term = await _sign_on(spec, port)
    try:
        ready()
        await go()
        card = card_for(pan)
        start = time.perf_counter() + phase
        for k in range(sales):
            t0 = await _pace(start, k, period)
            result = await term.run(Input("sale", amount=SALE_AMOUNT, card=card))
            if result.error in ("comm", "timeout"):
                report.errors += 1
                break
            report.latencies.append(time.perf_counter() - t0)
            _count(report, result.response_code or result.error or "?")
            if result.approved:
                report.approved.append((spec.terminal_id, result.batch, result.stan))
    finally:
        term.close()


async def _light_terminal(spec: Any, pan: str, port: int, sales: int, go: Any, ready: Any, report: ClientReport,
                          period: float = 0.0, phase: float = 0.0) -> None:  # fmt: skip
    """``--client light`` (the default): the core signs on, then bench.loadclient builds each
    sale and checks each reply (same body as the core's, a fraction of its CPU).

    Anything the core would answer with a flow of its own (no reply: a reversal; a bad or
    missing MAC: a reversal and a make-up sign-on; 39 asking for a sign-on; a header
    processing requirement) is an error that stops this terminal: the run then fails loudly
    instead of measuring a different workload."""
    from posgate.bench.loadclient import LightSale
    from posgate.domain.response_codes import APPROVED
    from posgate.fleet.fleet import card_for

    term = await _sign_on(spec, port)
    try:
        sale = LightSale(term.state, card_for(pan), SALE_AMOUNT)
        if term.conn is None or term.conn.lost.is_set():
            await term.connect()
        conn = term.conn
        assert conn is not None
        prefix = TPDU.encode(), _HEADER.encode()  # a swiped sale: application category 60
        ready()
        await go()
        start = time.perf_counter() + phase
        for k in range(sales):
            t0 = await _pace(start, k, period)
            stan, body = sale.request()
            try:
                reply = await conn.exchange_light(encode_frame(*prefix, body))
            except (TimeoutError, OSError):  # no reply, refused, reset: the core would reverse
                report.errors += 1
                break
            code, problem = sale.check(stan, reply.body)
            if not problem and reply.requirement != "0":
                problem = f"header requirement {reply.requirement}"
            if problem:
                report.errors += 1
                _count(report, f"{code or '?'} ({problem})")
                break
            report.latencies.append(time.perf_counter() - t0)
            _count(report, code)
            if code in APPROVED:
                report.approved.append((spec.terminal_id, sale.batch, stan))
    finally:
        term.close()


_TERMINALS = {"light": _light_terminal, "core": _core_terminal}


def _client_process(client: str, specs: list[Any], pans: list[str], port: int, sales: int, period: float,
                    barrier: Any, out: Any) -> None:  # fmt: skip
    from posgate.host.server import new_event_loop

    terminal = _TERMINALS[client]

    async def main() -> ClientReport:
        report = ClientReport()
        signed = asyncio.Event()
        started = asyncio.Event()
        count = 0

        def ready() -> None:
            nonlocal count
            count += 1
            if count == len(specs):
                signed.set()

        async def go() -> None:
            await started.wait()

        tasks = [
            asyncio.create_task(terminal(s, p, port, sales, go, ready, report, period, period * i / len(specs)))
            for i, (s, p) in enumerate(zip(specs, pans, strict=True))
        ]  # fmt: skip
        await signed.wait()
        return await _measured_phase(report, started, tasks, barrier)  # once all processes signed on

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        out.put(runner.run(main()))


async def _measured_phase(report: ClientReport, started: asyncio.Event, tasks: list[asyncio.Task[None]],
                          barrier: Any) -> ClientReport:  # fmt: skip
    """Every client process past ``barrier``, then the measured phase: its wall time and this
    process's CPU (the load generator's own cost, reported beside the server's)."""
    await asyncio.get_running_loop().run_in_executor(None, barrier.wait)
    cpu0 = time.process_time()
    report.start = time.perf_counter()
    started.set()
    await asyncio.gather(*tasks)
    report.end = time.perf_counter()
    report.cpu = time.process_time() - cpu0
    return report


def _echo_process(n: int, port: int, count: int, body: bytes, barrier: Any, out: Any) -> None:
    from posgate.host.server import new_event_loop

    frame = encode_frame(TPDU.encode(), bytes.fromhex("603100000000"), body)

    async def one(report: ClientReport, started: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Conn, "127.0.0.1", port)
        await started.wait()
        for _ in range(count):
            t0 = time.perf_counter()
            await conn.exchange(frame)
            report.latencies.append(time.perf_counter() - t0)
        assert conn.transport is not None
        conn.transport.close()

    async def main() -> ClientReport:
        report = ClientReport()
        started = asyncio.Event()
        tasks = [asyncio.create_task(one(report, started)) for _ in range(n)]
        await asyncio.sleep(0.2)
        return await _measured_phase(report, started, tasks, barrier)

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        out.put(runner.run(main()))


# -- the driver -------------------------------------------------------------------------------------


@dataclass
class Figures:
    name: str
    tps: float
    p50_ms: float
    p99_ms: float
    count: int
    codes: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    missing: int | None = None  # approved replies not found in the database
    cpu_us: float | None = None  # host process CPU (user + system) per request
    client_cpu_us: float | None = None  # client processes' CPU per sale (or echo), summed over them
    commit: str = ""  # the group commit's shape, from the host's own metrics

    def line(self) -> str:
        extra = ""
        if self.codes:
            extra += "  codes " + ",".join(f"{k}:{v}" for k, v in sorted(self.codes.items()))
        if self.errors:
            extra += f"  errors {self.errors}"
        if self.missing is not None:
            extra += f"  missing-in-db {self.missing}"
        if self.cpu_us is not None:
            extra += f"  host-cpu {self.cpu_us:.0f} us/request"
        if self.client_cpu_us is not None:
            extra += f"  client-cpu {self.client_cpu_us:.0f} us/sale"
        if self.commit:
            extra += f"  {self.commit}"
        return f"{self.name:<28} {self.tps:>8.0f} /s  p50 {self.p50_ms:>6.1f} ms  p99 {self.p99_ms:>6.1f} ms  n={self.count}{extra}"


# CPU placement (see pin_plan): the server's CPUs and the load generator's, or None (not pinned).
PIN: tuple[set[int], set[int]] | None = None


def pin_plan(enabled: bool) -> tuple[set[int], set[int]] | None:
    """The server on the first CPU, the load generator on the others (Linux, 2 CPUs or more).

    Why: on a small machine the load generator and the server otherwise take turns on the same
    cores, and every migration costs the server its warm caches: on this project's 2-core
    machine, three runs each alternating with ``--no-pin``, the host's CPU per request was
    341-363 µs pinned against 391-399 µs not pinned. A server in production has its machine to itself; this
    gives it one core of its own, which is what a single-process host can use (one GIL).
    """
    if not enabled or not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[0]}, set(cpus[1:])


def pin_process(pid: int, cpus: set[int] | None) -> None:
    """Every thread of process ``pid`` onto ``cpus`` (threads it starts later inherit it)."""
    if cpus is None:
        return
    with contextlib.suppress(OSError):  # a thread that just ended
        for tid in os.listdir(f"/proc/{pid}/task"):
            os.sched_setaffinity(int(tid), cpus)


def _run_clients(target: Any, args_for: list[tuple[Any, ...]]) -> list[ClientReport]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(args_for))
    out = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*a, barrier, out)) for a in args_for]
    for p in procs:
        p.start()
        if PIN is not None and p.pid is not None:
            pin_process(p.pid, PIN[1])
    try:
        reports = [out.get(timeout=600) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    return reports


def _figures(name: str, reports: list[ClientReport]) -> Figures:
    lat = sorted(x for r in reports for x in r.latencies)
    elapsed = max(r.end for r in reports) - min(r.start for r in reports)
    codes: dict[str, int] = {}
    for r in reports:
        for k, v in r.codes.items():
            codes[k] = codes.get(k, 0) + v
    if not lat:
        return Figures(name, 0.0, 0.0, 0.0, 0, codes, sum(r.errors for r in reports))
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    figures = Figures(name, len(lat) / elapsed, statistics.median(lat) * 1000, p99 * 1000, len(lat), codes,
                      sum(r.errors for r in reports))  # fmt: skip
    # The clients' CPU over the same phase, per sale: with the host's CPU per request beside it
    # a reader sees whether the figure is the host's or the client's (two cores are shared).
    figures.client_cpu_us = sum(r.cpu for r in reports) / len(lat) * 1e6
    return figures


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _split(items: list[Any], k: int) -> list[list[Any]]:
    return [items[i::k] for i in range(k)]


def bench_host(name: str, db_url: str, workdir: Path, terminals: int, sales: int, clients: int,
               extra_args: tuple[str, ...] = (), rate: float = 0.0, client: str = "light") -> Figures:  # fmt: skip
    from posgate.fleet.fleet import TERMINALS_PER_CARD, provision
    from posgate.fleet.hostproc import HostProcess

    key_file = str(workdir / "master.key")
    os.environ["POSGATE_MASTER_KEY_FILE"] = key_file
    specs, cards = provision(db_url, terminals, key_file=key_file)
    pans = [cards[i // TERMINALS_PER_CARD][0] for i in range(len(specs))]
    host = HostProcess(db_url, port=_free_port(), demo=False, log_level="warning", log_path=workdir / f"{name.replace(' ', '-').replace('/', '_')}.log",
                       extra_args=extra_args, env={"POSGATE_MASTER_KEY_FILE": key_file})  # fmt: skip
    host.start(60)
    pin_process(host.pid, PIN[0] if PIN else None)
    try:
        cpu0 = _cpu_seconds(host.pid)
        groups = list(zip(_split(specs, clients), _split(pans, clients), strict=True))
        period = terminals / rate if rate else 0.0  # each terminal's interval between sales
        reports = _run_clients(_client_process, [(client, s, p, host.port, sales, period) for s, p in groups])
        cpu = _cpu_seconds(host.pid) - cpu0
        commit = _commit_figures(host.log_text())
    finally:
        code = host.stop(30)
    figures = _figures(name, reports)
    requests = figures.count + len(specs)  # the sales and the sign-ons
    figures.cpu_us = cpu / requests * 1e6 if requests else None
    figures.commit = commit
    if code not in (0, None):
        print(f"warning: the host exited with {code}; see {host.log_path}", file=sys.stderr)
    figures.missing = _missing_in_db(db_url, [a for r in reports for a in r.approved])
    return figures


def _commit_figures(log_text: str) -> str:
    """Mean requests per commit and mean commit time, read from the host's /metrics."""
    import re
    import urllib.request

    found = re.search(r"metrics at (http://[0-9.]+:[0-9]+/metrics)", log_text)
    if not found:
        return ""
    try:
        with urllib.request.urlopen(found.group(1), timeout=5) as r:  # noqa: S310 - the host we started, on loopback
            text = r.read().decode()
    except OSError:
        return ""

    def value(name: str) -> float:
        m = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    commits = value("posgate_commit_batch_size_count")
    if not commits:
        return ""
    # the host's own view of latency (frame in to reply out), p99 as the bucket that holds it
    buckets = [(float(le), float(v)) for le, v in re.findall(r'^posgate_transaction_seconds_bucket\{le="([0-9.e+-]+)"\} ([0-9.e+-]+)$', text, re.M)]
    total = value("posgate_transaction_seconds_count")
    p99 = next((le for le, v in buckets if total and v >= 0.99 * total), float("inf"))
    text_fsync = ""
    fsyncs = value("posgate_wal_fsync_seconds_count")
    if fsyncs:  # SQLite: the WAL fsync after which replies leave
        fb = [(float(le), float(v)) for le, v in re.findall(r'^posgate_wal_fsync_seconds_bucket\{le="([0-9.e+-]+)"\} ([0-9.e+-]+)$', text, re.M)]
        f99 = next((le for le, v in fb if v >= 0.99 * fsyncs), float("inf"))
        text_fsync = f", WAL fsync {value('posgate_wal_fsync_seconds_sum') / fsyncs * 1000:.2f} ms mean (p99 <= {f99 * 1000:g} ms)"
    return (f"batch {value('posgate_commit_batch_size_sum') / commits:.1f} req/commit, "
            f"commit {value('posgate_commit_seconds_sum') / commits * 1000:.1f} ms mean{text_fsync}, "
            f"host-side p99 <= {p99 * 1000:g} ms")  # fmt: skip


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` and its threads (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _missing_in_db(db_url: str, approved: list[tuple[str, str, str]]) -> int:
    """Approved sales a terminal saw that the database does not hold as approved (must be 0)."""
    from sqlalchemy import select

    from posgate.store import schema as s
    from posgate.store.engine import make_engine

    engine = make_engine(db_url)
    t = s.transactions.c
    with engine.connect() as conn:
        rows = conn.execute(select(t.terminal_id, t.batch_no, t.stan).where(t.mti == "0200", t.response_code == "00"))
        stored = {tuple(r) for r in rows}
    engine.dispose()
    return sum(1 for a in approved if a not in stored)


def bench_echo(connections: int, count: int, clients: int) -> Figures:
    import subprocess

    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="1048576", MALLOC_TRIM_THRESHOLD_="8388608")
    proc = subprocess.Popen([sys.executable, "-m", "posgate.bench.echo", "--port", "0"], stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        port = int(line.rsplit(":", 1)[1])
        pin_process(proc.pid, PIN[0] if PIN else None)
        body = bytes.fromhex("0200") + bytes(8) + b"x" * 130  # the size of a swiped sale with PIN and MAC
        per = _split(list(range(connections)), clients)
        reports = _run_clients(_echo_process, [(len(p), port, count, body) for p in per])
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
    return _figures("echo (same framing)", reports)


def main(argv: list[str] | None = None) -> int:
    from posgate.store.testing import pg_available, temp_pg_database

    p = argparse.ArgumentParser(description="Durable sales per second of posgate serve vs. the echo ceiling.")
    p.add_argument("--terminals", type=int, default=100)
    p.add_argument("--sales", type=int, default=200, help="Sales per terminal after its sign-on.")
    p.add_argument("--clients", type=int, default=1, help="Client processes driving the terminals.")
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument("--rate", type=float, default=0.0,
                   help="Offered sales/s in total, paced per terminal (open loop); 0 = back to back (saturation).")
    p.add_argument("--pg-workers", type=int, default=2, help="Commit workers of the host on PostgreSQL.")
    p.add_argument("--client", choices=CLIENTS, default="light",
                   help="light: core sign-on, then sales built and checked by bench.loadclient (a load generator); "
                        "core: every sale through the terminal core (~as much client CPU per sale as the host's).")  # fmt: skip
    p.add_argument("--no-pin", action="store_true",
                   help="Let the scheduler place the server and the clients (default: server on CPU 0, clients on the rest).")
    args = p.parse_args(argv)
    # "postgresql" (the word make bench-host DB= and bench.pipeline --db use) is "postgres" here.
    backends = [{"postgresql": "postgres"}.get(b.strip(), b.strip()) for b in args.backends.split(",") if b.strip()]
    results: list[Figures] = []
    global PIN
    PIN = pin_plan(not args.no_pin)
    placement = (f"server on CPU {','.join(map(str, sorted(PIN[0])))}, clients on CPU {','.join(map(str, sorted(PIN[1])))}"
                 if PIN else "not pinned")  # fmt: skip
    print(f"posgate host benchmark: {args.terminals} terminals x {args.sales} sales, {args.clients} client process(es), "
          f"client {args.client}, {os.cpu_count()} CPUs, {placement}", flush=True)  # fmt: skip
    suffix = f" @{args.rate:g}/s" if args.rate else ""
    with tempfile.TemporaryDirectory(prefix="posgate-bench-") as tmp:
        work = Path(tmp)
        if "sqlite" in backends:
            results.append(bench_host(f"host sqlite{suffix}", f"sqlite:///{work / 'bench.db'}", work, args.terminals,
                                      args.sales, args.clients, rate=args.rate, client=args.client))  # fmt: skip
            print(results[-1].line(), flush=True)
        if "postgres" in backends:
            if pg_available():
                with temp_pg_database("posgate_bench") as url:
                    results.append(bench_host(f"host postgres x{args.pg_workers}{suffix}", url, work, args.terminals,
                                              args.sales, args.clients, ("--workers", str(args.pg_workers)),
                                              rate=args.rate, client=args.client))  # fmt: skip
                print(results[-1].line(), flush=True)
            else:
                print("postgres: not reachable at 127.0.0.1:5432, skipped", flush=True)
        echo = bench_echo(args.terminals, args.sales, args.clients)
        print(echo.line(), flush=True)
    for r in results:
        print(f"ratio {r.name} / echo: {r.tps / echo.tps:.2f}" if echo.tps else "")
    bad = [r for r in results if r.missing or r.errors]
    if bad:
        print("FAILED: approved sales missing in the database or connection errors", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
