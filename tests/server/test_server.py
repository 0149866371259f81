"""The host over a real socket (echo stand-in processor): framing, isolation between terminals,
timeouts, limits, graceful shutdown. SQLite always, PostgreSQL where reachable."""

from __future__ import annotations

import asyncio
import threading

from serverkit import BODY, HEADER, TPDU, closed_by_peer, connect, read_frame, roundtrip

from posgate.framing import encode_frame
from posgate.host.server import EchoReply, WalSyncer, echo_process


async def test_reply_swaps_tpdu_and_keeps_header(make_host):
    assert type(asyncio.get_running_loop()).__module__.startswith("uvloop")
    host = await make_host()
    try:
        r, w = await connect(host)
        tpdu, header, body = await roundtrip(r, w)
        assert tpdu == bytes.fromhex("6000000003")  # D1: destination and source swapped
        assert header == HEADER and body == BODY
        # several frames in one write, and one frame byte by byte
        w.write(encode_frame(TPDU, HEADER, BODY + b"1") + encode_frame(TPDU, HEADER, BODY + b"2"))
        assert (await read_frame(r))[2] == BODY + b"1"
        assert (await read_frame(r))[2] == BODY + b"2"
        for byte in encode_frame(TPDU, HEADER, BODY + b"3"):
            w.write(bytes([byte]))
            await w.drain()
        assert (await read_frame(r))[2] == BODY + b"3"
        w.close()
    finally:
        await host.shutdown()


async def _other_terminal_still_served(host) -> None:
    r, w = await connect(host)
    assert (await roundtrip(r, w))[2] == BODY
    w.close()


async def test_malformed_and_oversized_frames_close_only_that_connection(make_host):
    host = await make_host()
    try:
        bystander_r, bystander_w = await connect(host)
        for bad in (
            b"\x00\x05" + b"12345",  # too short to hold a TPDU, a header and an MTI
            b"\xff\xff" + b"x" * 100,  # longer than the maximum frame
            b"\x10\x01" + b"x" * 10,  # 4097 > 4096
        ):
            r, w = await connect(host)
            w.write(bad)
            await w.drain()
            assert await closed_by_peer(r)
            assert (await roundtrip(bystander_r, bystander_w))[2] == BODY
        await _other_terminal_still_served(host)
        # garbage inside a well-framed message reaches the processor (the pipeline answers 30);
        # here the echo stand-in answers it: the server itself never decodes
        r, w = await connect(host)
        assert (await roundtrip(r, w, b"\xff" * 40))[2] == b"\xff" * 40
    finally:
        await host.shutdown()


async def test_truncated_frame_then_disconnect(make_host):
    host = await make_host()
    try:
        r, w = await connect(host)
        w.write(encode_frame(TPDU, HEADER, BODY)[:-3])
        await w.drain()
        w.close()
        await asyncio.sleep(0.05)
        await _other_terminal_still_served(host)
        assert host._in_flight == 0
    finally:
        await host.shutdown()


async def test_slow_drip_and_idle_timeouts(make_host):
    host = await make_host(frame_timeout=0.3, idle_timeout=0.6)
    try:
        drip_r, drip_w = await connect(host)
        idle_r, _idle_w = await connect(host)
        frame = encode_frame(TPDU, HEADER, BODY)
        drip_w.write(frame[:5])  # then nothing more: a partial frame pending
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        assert await closed_by_peer(drip_r, timeout=3)
        assert 0.3 <= loop.time() - t0 < 2.5
        await _other_terminal_still_served(host)
        assert await closed_by_peer(idle_r, timeout=3)
        assert loop.time() - t0 >= 0.6
    finally:
        await host.shutdown()


async def test_connection_limit(make_host):
    host = await make_host(max_connections=3)
    try:
        conns = [await connect(host) for _ in range(3)]
        await asyncio.sleep(0.05)
        r, _ = await connect(host)
        assert await closed_by_peer(r)
        for cr, cw in conns:
            assert (await roundtrip(cr, cw))[2] == BODY
    finally:
        await host.shutdown()


async def test_connection_flood_does_not_block_others(make_host):
    host = await make_host(max_connections=500)
    try:
        flood = await asyncio.gather(*(connect(host) for _ in range(200)))
        for _, w in flood[:100]:
            w.write(b"\x00")  # half a length prefix each
        r, w = await connect(host)
        assert (await roundtrip(r, w, timeout=5))[2] == BODY
        for _, fw in flood:
            fw.close()
    finally:
        await host.shutdown()


async def test_processor_failure_closes_only_that_request(make_host):
    def flaky(header, body, store, issuer, env):
        if body.endswith(b"boom"):
            raise RuntimeError("bug")
        if body.endswith(b"err"):
            return EchoReply(header, body[:-3] + b"96", error="ValueError")
        return EchoReply(header, body)

    host = await make_host(processor=flaky)
    try:
        r1, w1 = await connect(host)
        w1.write(encode_frame(TPDU, HEADER, BODY + b"boom"))
        assert await closed_by_peer(r1)
        r2, w2 = await connect(host)
        assert (await roundtrip(r2, w2, BODY + b"err"))[2] == BODY + b"96"  # answered, writes rolled back
        assert (await roundtrip(r2, w2))[2] == BODY
    finally:
        await host.shutdown()


async def test_graceful_shutdown_answers_in_flight_requests(make_host, db_url, monkeypatch):
    gate = threading.Event()

    def slow(header, body, store, issuer, env):
        gate.wait(5)
        return EchoReply(header, body)

    # In flight = received and not yet answered. PostgreSQL: still in the commit worker's
    # process(). SQLite processes on the loop thread (a slow processor there would stall the
    # test's own loop): its requests are committed and wait for the WAL fsync.
    real_sync = WalSyncer.sync

    def slow_sync(self):
        gate.wait(5)
        real_sync(self)

    monkeypatch.setattr(WalSyncer, "sync", slow_sync)
    host = await make_host(processor=echo_process if db_url.startswith("sqlite") else slow)
    conns = [await connect(host) for _ in range(5)]
    for _, w in conns:
        w.write(encode_frame(TPDU, HEADER, BODY))
        await w.drain()
    # All five received (in flight) before the stop: a request still unread in its socket when
    # reading pauses would never be answered. A bound on a hang, not a timed assertion.
    deadline = asyncio.get_running_loop().time() + 30
    while host._in_flight < 5:
        assert asyncio.get_running_loop().time() < deadline, f"{host._in_flight} of 5 requests in flight"
        await asyncio.sleep(0.01)
    stopping = asyncio.create_task(host.shutdown())
    await asyncio.sleep(0)  # shutdown's first step: the server is closed, the wait for in-flight begins
    try:
        await asyncio.wait_for(connect(host), 1)
        refused = False
    except OSError:
        refused = True
    assert refused  # no longer accepting
    assert not stopping.done()  # waiting for the in-flight requests
    gate.set()
    for r, _ in conns:
        assert (await read_frame(r))[2] == BODY
        assert await closed_by_peer(r)
    await asyncio.wait_for(stopping, 5)


async def test_replies_only_after_commit(make_host, db_url):
    """The reply to a request that wrote a row is sent after that row is committed."""
    from sqlalchemy import create_engine, text

    from posgate.store.engine import normalise_url

    def writer(header, body, store, issuer, env):
        store.audit(env.now(), "test", "wrote", detail=body[-6:].decode())
        return EchoReply(header, body)

    host = await make_host(processor=writer)
    observer = create_engine(normalise_url(db_url))
    try:
        r, w = await connect(host)
        for i in range(20):
            marker = f"m{i:05d}".encode()
            await roundtrip(r, w, BODY + marker)
            with observer.connect() as conn:
                seen = conn.execute(text("SELECT count(*) FROM audit_log WHERE detail = :d"), {"d": marker.decode()}).scalar()
            assert seen == 1
    finally:
        observer.dispose()
        await host.shutdown()


async def test_failure_inside_a_batch_rolls_back_that_request_only(make_host, db_url):
    """A batch with one failing request: the batch is re-run with savepoints; the others commit
    exactly once, the failing one leaves nothing behind and its terminal gets no reply."""
    from sqlalchemy import create_engine, text

    from posgate.store.engine import normalise_url

    gate = threading.Event()

    def writer(header, body, store, issuer, env):
        if body.endswith(b"gate"):
            gate.wait(5)
        store.audit(env.now(), "test", "wrote", detail=body[-4:].decode())
        if body.endswith(b"boom"):
            raise RuntimeError("bug after a write")
        return EchoReply(header, body)

    host = await make_host(processor=writer)
    try:
        first_r, first_w = await connect(host)
        first_w.write(encode_frame(TPDU, HEADER, BODY + b"gate"))  # holds the worker
        await asyncio.sleep(0.1)
        conns = [await connect(host) for _ in range(5)]
        tags = [b"ok01", b"ok02", b"boom", b"ok03", b"ok04"]
        for (_, w), tag in zip(conns, tags, strict=True):
            w.write(encode_frame(TPDU, HEADER, BODY + tag))
            await w.drain()
        await asyncio.sleep(0.2)  # all five queued: they form the next batch
        gate.set()
        assert (await read_frame(first_r))[2] == BODY + b"gate"
        for (r, _), tag in zip(conns, tags, strict=True):
            if tag == b"boom":
                assert await closed_by_peer(r)
            else:
                assert (await read_frame(r))[2] == BODY + tag
    finally:
        await host.shutdown()
    engine = create_engine(normalise_url(db_url))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT detail FROM audit_log WHERE actor = 'test' ORDER BY detail")).scalars().all()
    engine.dispose()
    assert rows == ["gate", "ok01", "ok02", "ok03", "ok04"]


async def test_sqlite_replies_wait_for_the_wal_fsync(sqlite_url, monkeypatch):
    """SQLite commits without fsync on the loop thread; the reply leaves only after WalSyncer
    has fsynced the write-ahead log (the file SQLite wrote the commit to)."""
    from posgate.host import server
    from posgate.store.database import Database

    gate = threading.Event()
    synced: list[str] = []
    real_fsync = server._fsync_path

    def gated_fsync(path, directory=False):
        if not directory:
            gate.wait(5)
            synced.append(path)
        real_fsync(path, directory)

    monkeypatch.setattr(server, "_fsync_path", gated_fsync)
    db = Database.open(sqlite_url)
    host = server.Host(db, server.ServerConfig(port=0), processor=echo_process, issuer_factory=None)
    await host.start()
    try:
        r, w = await connect(host)
        w.write(encode_frame(TPDU, HEADER, BODY))
        await w.drain()
        try:
            await asyncio.wait_for(read_frame(r), 0.5)
            early = True
        except TimeoutError:
            early = False
        assert not early  # committed, not yet durable: no reply
        gate.set()
        assert (await asyncio.wait_for(read_frame(r), 5))[2] == BODY
        assert synced and all(p.endswith("posgate.db-wal") for p in synced)
    finally:
        gate.set()
        await host.shutdown()
        db.close()


async def test_sqlite_rows_kept_between_batches_never_outlive_a_rollback(sqlite_url):
    """The SQLite writer keeps card rows between batches (SqlHostStore.keep_rows): a request whose
    writes are rolled back (a pipeline error) must not leave its balance in what is kept."""
    from posgate.host import server
    from posgate.store.database import Database
    from posgate.store.demo import provision_demo

    pan = "6212142000000000012"

    def debit(header, body, store, issuer, env):
        h = store.pan_hash(pan)
        card = store.card(h)
        store.update_card(h, balance=card.balance - 100)
        if body.endswith(b"err"):
            return EchoReply(header, body, error="ValueError")  # the batch runs again, this one rolled back
        return EchoReply(header, str(store.card(h).balance).encode())

    db = Database.open(sqlite_url)
    provision_demo(db.engine, db.keyring)
    with db.unit_of_work() as st:
        start = st.card(st.pan_hash(pan)).balance
    host = server.Host(db, server.ServerConfig(port=0), processor=debit, issuer_factory=None)
    await host.start()
    try:
        r, w = await connect(host)
        assert (await roundtrip(r, w, BODY))[2] == str(start - 100).encode()
        await roundtrip(r, w, BODY + b"err")
        assert (await roundtrip(r, w, BODY))[2] == str(start - 200).encode()  # not start - 300
    finally:
        await host.shutdown()
    with db.unit_of_work() as st:
        assert st.card(st.pan_hash(pan)).balance == start - 200
    db.close()


async def test_sqlite_wal_is_checkpointed_off_the_loop_and_restarted(sqlite_url, monkeypatch):
    """The writer commits with wal_autocheckpoint=0; WalCheckpointer copies the WAL back in its
    own thread and, past restart_frames, restarts it, so the WAL stays bounded under load."""
    import os

    from posgate.host import metrics, server
    from posgate.store.database import Database
    from posgate.store.demo import provision_demo

    monkeypatch.setattr(server.WalCheckpointer.__init__, "__defaults__", (0.0, 64))  # interval, restart_frames
    pan = "6212142000000000012"

    def debit(header, body, store, issuer, env):  # dirties a few pages per request
        h = store.pan_hash(pan)
        store.update_card(h, balance=store.card(h).balance - 1)
        store.audit(env.now(), "test", "debit", "card", None, None, detail="x" * 500)
        return EchoReply(header, body)

    db = Database.open(sqlite_url)
    provision_demo(db.engine, db.keyring)
    restarts = metrics.CHECKPOINTS.labels("restart")._value.get()
    host = server.Host(db, server.ServerConfig(port=0), processor=debit, issuer_factory=None)
    await host.start()
    wal = sqlite_url.removeprefix("sqlite:///") + "-wal"
    try:
        assert host.committer.runner.driver.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        r, w = await connect(host)
        for _ in range(400):
            await roundtrip(r, w, BODY)
            await asyncio.sleep(0)
        for _ in range(100):  # the checkpointer runs in its own thread: give it a moment
            if metrics.CHECKPOINTS.labels("restart")._value.get() > restarts:
                break
            await asyncio.sleep(0.02)
        assert metrics.CHECKPOINTS.labels("restart")._value.get() > restarts
        # 400 commits of several pages each, without restarts, would be far past 64 frames.
        frames = os.path.getsize(wal) // (4096 + 24)
        assert frames < 400
    finally:
        await host.shutdown()
    with db.unit_of_work() as st:
        assert st.card(st.pan_hash(pan)).balance > 0
    db.close()
