"""The short chaos soak: one minute of a fleet against ``posgate serve`` (temporary SQLite) under
every kind of fault, then settlement and the three-ledger audit. The four figures must be zero.
The long soak is ``posgate chaos --minutes 30`` (README, docs/scale-out.md)."""

from __future__ import annotations

import pytest

from posgate.fleet.chaos import ChaosConfig, format_chaos, run_chaos


@pytest.mark.slow
def test_one_minute_of_chaos_loses_nothing() -> None:
    report = run_chaos(ChaosConfig(minutes=1.0, terminals=12, seed=11, timeout=2.0, fault_every=0.8, host_kills=2))
    text = "\n".join(format_chaos(report))
    assert report["transactions"] > 500, text
    faults = report["faults"]
    assert {"cut_request", "cut_reply", "delay_reply", "corrupt_reply", "power_loss", "host_kill"} <= set(faults), text
    assert report["reversals_sent"] > 0 and report["settlements"] >= 12, text
    assert (report["lost"], report["double_charged"], report["unbalanced_settlements"], report["balance_discrepancies"]) \
        == (0, 0, 0, 0), text
    assert report["ok"]
