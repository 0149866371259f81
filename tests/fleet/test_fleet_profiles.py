"""The fleet speaking non-baseline dialect profiles: a clean run of the whole mix, and the chaos
loop in miniature (fault proxy, power losses, settle, three-ledger audit) — a profile changes
encodings and algorithms, and nothing may get lost or double-charged because of it."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from posgate.fleet.fleet import Fleet, FleetConfig, _run_loop, demo_specs, parse_mix, with_profiles
from posgate.fleet.proxy import FaultPlan, FaultProxy
from terminal.hostd import HostThread

from .test_fleet import CUP_ONLY, memory_ledgers, run_audit

MIX = "gz-bill,x919,pin3"


def _assign(host: HostThread, text: str) -> list:
    specs = with_profiles(demo_specs(3), text)
    for s in specs:
        host.store.update_terminal(s.terminal_id, dialect=s.dialect)
    return specs


def test_with_profiles_deals_a_weighted_mix_in_turn() -> None:
    specs = with_profiles(demo_specs(3), "cup=2,gz-bill")
    assert [s.dialect for s in specs] == ["cup", "cup", "gz-bill"]
    assert specs[2].config().dialect == "gz-bill"
    with pytest.raises(ValueError, match="no dialect profile"):
        with_profiles(demo_specs(1), "nope")
    with pytest.raises(ValueError, match="positive integer"):
        with_profiles(demo_specs(1), "cup=0")


def test_fleet_in_three_profiles_runs_the_mix_and_settles(tmp_path: Path) -> None:
    with HostThread() as host:
        specs = _assign(host, MIX)
        cfg = FleetConfig(port=host.port, terminals=3, duration=None, transactions=90, timeout=5, state_dir=tmp_path,
                          mix=parse_mix("sale=50,void=10,refund=10,balance=10,preauth=10,offline=5,signature=5"),
                          cards=CUP_ONLY, ramp=0, specs=specs)  # fmt: skip
        fleet = Fleet(cfg)
        before = memory_ledgers(host)[2]
        report = _run_loop(fleet.run())
        # Every operation approved, but for the workload's own business declines (as with the
        # baseline: a void drawn for a sale already partly refunded is 12).
        for op, d in report["by_operation"].items():
            assert set(d["codes"]) <= ({"00", "12"} if op in ("void", "refund") else {"00"}), (op, d["codes"])
        assert report["settlements"]["results"] == {"11/207": 3}
        result = run_audit(fleet, host, before, [])
        assert result.ok, result.as_dict()
        dialects = {t: host.store.terminal(t).dialect for t in ("10000001", "10000002", "20000001")}  # type: ignore[union-attr]
        assert sorted(dialects.values()) == sorted(MIX.split(","))


def test_chaos_in_miniature_with_non_baseline_profiles(tmp_path: Path) -> None:
    async def scenario(host: HostThread, specs: list) -> tuple[Fleet, list[str], int]:
        plan = FaultPlan(rates={"cut_request": 0.04, "cut_reply": 0.04, "corrupt_reply": 0.03, "drop_reply": 0.02,
                                "delay_reply": 0.02}, delay=1.2)  # fmt: skip
        async with FaultProxy(("127.0.0.1", host.port), plan=plan, seed=4) as proxy:
            cfg = FleetConfig(port=proxy.port, terminals=3, duration=None, transactions=150, timeout=0.6,
                              state_dir=tmp_path, mix=parse_mix("sale=60,void=10,balance=10,preauth=10,offline=5,signature=5"),
                              cards=CUP_ONLY, ramp=0, settle=False, settle_every=60, seed=8, specs=specs)  # fmt: skip
            fleet = Fleet(cfg)
            rng = random.Random(6)

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
            faults = sum(
                proxy.stats[k]
                for k in ("cut_request", "cut_reply", "corrupt_reply", "drop_reply", "delay_reply")
            )
            unsettled = [
                t.terminal_id for t, r in zip(fleet.terminals, results, strict=True) if not r.approved
            ]
            return fleet, unsettled, faults

    with HostThread() as host:
        specs = _assign(host, MIX)
        before = memory_ledgers(host)[2]
        fleet, unsettled, faults = _run_loop(scenario(host, specs))
        result = run_audit(fleet, host, before, unsettled)
        assert faults >= 10
        assert fleet.stats.reversals_sent >= 1
        assert result.ok, result.as_dict()
        assert not unsettled  # every terminal, whatever its profile, settled after the faults
