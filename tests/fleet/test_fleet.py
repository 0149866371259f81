"""posgate fleet against the real host pipeline (memory store, behind a small TCP server), and
the three-ledger audit on what it leaves behind — with and without injected faults."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from posgate.crypto.luhn import luhn_valid
from posgate.fleet import audit as au
from posgate.fleet.fleet import (
    DEMO_CARDS,
    Fleet,
    FleetConfig,
    _run_loop,
    fleet_pan,
    fleet_specs,
    fleet_tmk,
    format_report,
    parse_mix,
)
from posgate.fleet.proxy import FaultPlan, FaultProxy
from terminal.hostd import HostThread

CUP_ONLY = [DEMO_CARDS[0]]


def memory_ledgers(host: HostThread) -> tuple[list[au.HostRecord], list[au.SettlementRow], dict[str, au.CardBalance]]:
    store = host.store
    records = [au.HostRecord(i, r.terminal_id, r.batch_no, r.stan, r.mti, r.operation, r.amount, r.response_code, r.status,
                             r.pan_hash, r.original_id) for i, r in store.txns.items()]
    settlements = [au.SettlementRow(i, s.terminal_id, s.batch_no, s.status, s.upload_end, s.domestic_result, s.foreign_result)
                   for i, s in store.settlements.items()]
    cards = {c.pan_hash: au.CardBalance(c.pan_hash, c.pan_masked, c.balance, c.held) for c in store.cards.values()}
    return records, settlements, cards


def run_audit(fleet: Fleet, host: HostThread, before: dict[str, au.CardBalance], unsettled: list[str]) -> au.AuditResult:
    records, settlements, after = memory_ledgers(host)
    entries = [au.TerminalRecord(e.terminal_id, e.batch, e.stan, e.operation, e.amount, e.status)
               for t in fleet.terminals for e in t.ledger_entries()]
    return au.audit(entries, records, settlements, before, after, unsettled_terminals=unsettled)


def test_parse_mix() -> None:
    assert parse_mix("sale=70, void=5") == {"sale": 70, "void": 5}
    for bad in ("sale=x", "teleport=3", "sale", "sale=0"):
        with pytest.raises(ValueError):
            parse_mix(bad)


def test_provisioned_identities_are_valid_and_stable() -> None:
    specs = fleet_specs(120)
    assert len({s.terminal_id for s in specs}) == 120 and all(len(s.terminal_id) == 8 for s in specs)
    assert len({s.merchant_id for s in specs}) == 3 and all(len(s.merchant_id) == 15 for s in specs)
    assert specs[0].tmk == fleet_tmk(specs[0].terminal_id) and len(specs[0].tmk) == 16
    assert all(bin(b).count("1") % 2 == 1 for b in specs[0].tmk)  # odd parity
    assert all(luhn_valid(fleet_pan(i)) and len(fleet_pan(i)) == 19 for i in range(1, 50))


def test_fleet_runs_the_mix_and_settles(tmp_path: Path) -> None:
    with HostThread() as host:
        # The four demo terminals: the SM4 (国密) terminal 40000001 trades alongside the DES ones.
        cfg = FleetConfig(port=host.port, terminals=4, duration=None, transactions=90, timeout=5, state_dir=tmp_path,
                          mix=parse_mix("sale=45,void=10,refund=10,balance=10,preauth=10,offline=5,signature=5,qr=5"),
                          cards=CUP_ONLY, ramp=0)
        fleet = Fleet(cfg)
        before = memory_ledgers(host)[2]
        report = _run_loop(fleet.run())
        ops = report["by_operation"]
        assert set(ops) >= {"sign_on", "sale", "void", "refund", "balance", "preauth", "offline", "signature", "settlement"}
        # ``qr`` draws sales paid by scanned codes: in the host's ledger with entry mode 032.
        assert any(r.entry_mode == "032" and r.response_code == "00" for r in host.store.txns.values())
        assert ops["sign_on"]["approved"] == 4 and report["settlements"]["count"] == 4
        assert report["settlements"]["results"] == {"11/207": 4}  # balanced on both sides
        assert "40000001" in {t.terminal_id for t in fleet.terminals}
        assert sum(d["count"] for k, d in ops.items() if k not in ("sign_on", "settlement")) == 90
        assert report["reversals"] == 0 and report["timeouts"] == 0
        for d in ops.values():
            lat = d["latency_ms"]
            assert 0 <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
        assert any("TPS" in line for line in format_report(report))
        # Every terminal's journal on disk holds its settled batch.
        entries = {t.terminal_id: t.ledger_entries() for t in fleet.terminals}
        assert all(es and all(e.settled for e in es) for es in entries.values())
        result = run_audit(fleet, host, before, [])
    assert result.ok, result.as_dict()
    assert result.settlements == 4 and result.terminal_entries > 0


def test_own_card_gives_each_terminal_its_own_cardholder() -> None:
    """--own-card: terminal i pays only with cards[i] (benchmarks: no issuer row shared by
    terminals); by default every terminal draws from all the cards."""
    cards = list(DEMO_CARDS)  # two cardholders for two terminals

    def used(own: bool) -> dict[str, set[str]]:
        with HostThread() as host:
            cfg = FleetConfig(port=host.port, terminals=2, duration=None, transactions=60, timeout=5,
                              mix=parse_mix("sale=1"), cards=cards, ramp=0, settle=False, own_card=own, seed=3)
            _run_loop(Fleet(cfg).run())
            by_terminal: dict[str, set[str]] = {}
            for r in host.store.txns.values():
                if r.operation == "sale":
                    by_terminal.setdefault(r.terminal_id, set()).add(r.pan_hash)
        return by_terminal

    own = used(True)
    assert len(own) == 2 and all(len(h) == 1 for h in own.values())
    assert len(set().union(*own.values())) == 2  # two terminals, two different cardholders
    shared = used(False)
    assert any(len(h) > 1 for h in shared.values())


def test_audit_survives_faults_power_losses_and_finds_planted_errors(tmp_path: Path) -> None:
    """The chaos loop in miniature (no subprocess): the real pipeline, the fault proxy, power
    losses; after settling, the three ledgers agree. Then the audit must catch what we plant."""

    async def scenario(host: HostThread) -> tuple[Fleet, list[str], dict[str, int]]:
        plan = FaultPlan(rates={"cut_request": 0.04, "cut_reply": 0.04, "corrupt_reply": 0.03, "drop_reply": 0.02,
                                "delay_reply": 0.02}, delay=1.2)
        async with FaultProxy(("127.0.0.1", host.port), plan=plan, seed=3) as proxy:
            cfg = FleetConfig(port=proxy.port, terminals=3, duration=None, transactions=150, timeout=0.6, state_dir=tmp_path,
                              mix=parse_mix("sale=60,void=10,balance=10,preauth=10,offline=5,signature=5"),
                              cards=CUP_ONLY, ramp=0, settle=False, settle_every=60, seed=7)
            fleet = Fleet(cfg)
            rng = random.Random(5)

            async def power_cuts() -> None:
                for _ in range(6):
                    await asyncio.sleep(0.3)
                    rng.choice(fleet.terminals).arm_power_loss()

            cuts = asyncio.create_task(power_cuts())
            await fleet.run(close=False)
            await cuts
            proxy.calm()
            for t in fleet.terminals:
                t.session.power_loss_armed = False
            results = [await fleet.settle(t, attempts=5) for t in fleet.terminals]
            await fleet.close()
            faults = {k: proxy.stats[k] for k in ("cut_request", "cut_reply", "corrupt_reply", "drop_reply", "delay_reply")}
            return fleet, [t.terminal_id for t, r in zip(fleet.terminals, results, strict=True) if not r.approved], faults

    with HostThread() as host:
        before = memory_ledgers(host)[2]
        fleet, unsettled, faults = _run_loop(scenario(host))
        result = run_audit(fleet, host, before, unsettled)
        assert sum(faults.values()) >= 10, faults
        assert fleet.stats.power_losses >= 1 and fleet.stats.reversals_sent >= 1
        assert result.ok, result.as_dict()

        # Plant errors in copies of the ledgers: the audit must see each one.
        records, settlements, after = memory_ledgers(host)
        entries = [au.TerminalRecord(e.terminal_id, e.batch, e.stan, e.operation, e.amount, e.status)
                   for t in fleet.terminals for e in t.ledger_entries()]
        sale = next(r for r in records if r.standing and r.operation == "sale")
        dropped = [e for e in entries if (e.terminal_id, e.batch, e.stan) != sale.key]
        assert len(au.audit(dropped, records, settlements, before, after).lost) == 1
        twice = [*records, au.HostRecord(10**9, *sale.key, "0320", "sale", sale.amount, "00", "approved", sale.pan_hash, None)]
        assert len(au.audit(entries, twice, settlements, before, after).double_charged) == 1
        reversed_ = [au.HostRecord(**{**r.__dict__, "status": "reversed"}) if r.id == sale.id else r for r in records]
        res = au.audit(entries, reversed_, settlements, before, after)
        assert len(res.lost) == 1 and len(res.balance_discrepancies) == 1
        bad = [au.SettlementRow(s.id, s.terminal_id, s.batch_no, "unbalanced", s.upload_end, "2", "1") for s in settlements]
        assert au.audit(entries, records, bad, before, after).unbalanced_settlements
