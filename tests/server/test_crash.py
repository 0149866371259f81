"""Durability under a crash, and identifiers across host processes, with real hosts in subprocesses.

* SIGKILL mid-load, then restart: every approved reply a terminal received is in the database,
  and nothing is half-written (each card's balance moved by exactly its approved sales; every
  approved record is complete; SQLite's integrity check passes); the terminals carry on.
* Two ``posgate serve`` on one PostgreSQL: no RRN or auth code is ever handed out twice.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time

import pytest
from sqlalchemy import func, select, text

from posgate.bench.host import CoreTerminal
from posgate.fleet.fleet import FLEET_CARD_BALANCE, TERMINALS_PER_CARD, card_for, provision
from posgate.fleet.hostproc import HostProcess
from posgate.store import schema as s
from posgate.store.engine import make_engine
from posgate.store.testing import pg_available, temp_pg_database
from posgate.terminal.machine import Input

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _host(db_url: str, tmp_path, name: str, *args: str) -> HostProcess:
    key = str(tmp_path / "master.key")
    return HostProcess(db_url, port=_free_port(), demo=False, log_level="warning", log_path=tmp_path / f"{name}.log",
                       extra_args=args, env={"POSGATE_MASTER_KEY_FILE": key})  # fmt: skip


async def _sales(terms: list[CoreTerminal], pans: list[str], approved: list[tuple], stop_after: float | None,
                 count: int | None = None) -> None:  # fmt: skip
    """Each terminal sells back to back until the host goes away (or ``count`` sales each)."""
    t_end = None if stop_after is None else time.monotonic() + stop_after

    async def one(term: CoreTerminal, pan: str) -> None:
        n = 0
        while (t_end is None or time.monotonic() < t_end + 30) and (count is None or n < count):
            r = await term.run(Input("sale", amount=100 + n, card=card_for(pan)))
            n += 1
            if r.approved:
                approved.append((term.spec.terminal_id, r.batch, r.stan, r.rrn, r.auth_code))
            elif r.error:
                return

    await asyncio.gather(*(one(t, p) for t, p in zip(terms, pans, strict=True)))


def _check_database(db_url: str, approved: list[tuple], pans: set[str]) -> None:
    engine = make_engine(db_url)
    t = s.transactions.c
    with engine.connect() as conn:
        stored = {
            (r.terminal_id, r.batch_no, r.stan): r
            for r in conn.execute(select(s.transactions).where(t.operation == "sale"))
        }
        for tid, batch, stan, rrn, auth in approved:
            row = stored.get((tid, batch, stan))
            assert row is not None, f"approved sale {tid}/{batch}/{stan} missing after the crash"
            assert (row.response_code, row.rrn, row.auth_code) == ("00", rrn, auth)
        for row in stored.values():
            if row.response_code == "00":
                assert row.rrn and row.auth_code and row.reply and row.pan_hash and row.request_digest
        # the issuer's debit and the acquirer's record are one unit: balances match the approved sales
        debited = dict(conn.execute(
            select(t.pan_hash, func.sum(t.amount)).where(t.operation == "sale", t.status == "approved").group_by(t.pan_hash)
        ).all())  # fmt: skip
        for pan_hash, balance in conn.execute(select(s.cards.c.pan_hash, s.cards.c.balance)):
            assert FLEET_CARD_BALANCE - balance == debited.get(pan_hash, 0)
        if engine.dialect.name == "sqlite":
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    engine.dispose()


def test_sigkill_mid_load_then_restart(db_url, tmp_path):
    specs, cards = provision(db_url, 20, key_file=str(tmp_path / "master.key"))
    pans = [cards[i // TERMINALS_PER_CARD][0] for i in range(len(specs))]
    host = _host(db_url, tmp_path, "crash")
    host.start(60)
    approved: list[tuple] = []
    terms = [CoreTerminal(spec, host.port) for spec in specs]
    try:

        async def under_load() -> None:
            for term in terms:
                assert (await term.run(Input("sign_on"))).approved
            load = asyncio.create_task(_sales(terms, pans, approved, stop_after=0))
            await asyncio.sleep(1.5)
            await asyncio.get_running_loop().run_in_executor(None, host.kill)  # SIGKILL mid-load
            await asyncio.wait_for(load, 60)
            for term in terms:
                term.close()

        asyncio.run(under_load())
        assert len(approved) > 20, "the load did not get going before the kill"
        _check_database(db_url, approved, set(pans))
        # Restart from this thread: the fleet's host child dies with the thread that started it.
        host.start(60)

        async def carry_on() -> list[tuple]:
            # pending reversals go first, then new sales are approved
            after: list[tuple] = []
            await _sales(terms, pans, after, stop_after=None, count=2)
            for term in terms:
                term.close()
            return after

        after = asyncio.run(carry_on())
        assert len(after) == 2 * len(terms)
        approved.extend(after)
        _check_database(db_url, approved, set(pans))
    finally:
        assert host.stop(30) == 0, host.log_tail()


@pytest.mark.postgres
def test_two_hosts_on_one_postgres_never_share_an_rrn(tmp_path):
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    with temp_pg_database() as url:
        os.environ.setdefault("POSGATE_MASTER_KEY_FILE", str(tmp_path / "master.key"))
        specs, cards = provision(url, 20, key_file=str(tmp_path / "master.key"))
        pans = [cards[i // TERMINALS_PER_CARD][0] for i in range(len(specs))]
        hosts = [_host(url, tmp_path, f"pg{i}", "--workers", "2") for i in range(2)]
        for h in hosts:
            h.start(60)
        try:

            async def scenario() -> list[tuple]:
                terms = [CoreTerminal(spec, hosts[i % 2].port) for i, spec in enumerate(specs)]
                for term in terms:
                    assert (await term.run(Input("sign_on"))).approved
                approved: list[tuple] = []
                await _sales(terms, pans, approved, stop_after=None, count=15)
                for term in terms:
                    term.close()
                return approved

            approved = asyncio.run(scenario())
        finally:
            codes = [h.stop(30) for h in hosts]
        assert codes == [0, 0]
        assert len(approved) == 20 * 15
        engine = make_engine(url)
        t = s.transactions.c
        with engine.connect() as conn:
            rows = conn.execute(select(t.rrn, t.auth_code).where(t.operation == "sale", t.response_code == "00")).all()
        engine.dispose()
        rrns = [r.rrn for r in rows]
        auths = [r.auth_code for r in rows]
        assert len(rrns) == 300 and len(set(rrns)) == 300
        assert len(set(auths)) == 300
