"""Chaos with faults on both links (issue 13): terminals → fault proxy → acquirer (killed once)
→ ``posgate network`` (slow, down, dropped, late and duplicate replies, MAC key changes). Terminals, acquirer,
network and issuer balances must agree: nothing lost, nothing charged twice."""

from __future__ import annotations

import pytest

from posgate.fleet.chaos import ChaosConfig, format_chaos, run_chaos


@pytest.mark.slow
def test_half_a_minute_of_chaos_on_both_links_loses_nothing() -> None:
    report = run_chaos(ChaosConfig(minutes=0.5, terminals=6, seed=5, timeout=2.0, fault_every=0.6, host_kills=1,
                                   network=True))  # fmt: skip
    text = "\n".join(format_chaos(report))
    faults = report["faults"]
    assert report["network"] and report["network_records"] > 50, text
    assert faults.get("host_kill") == 1, text
    assert sum(v for k, v in faults.items() if k.startswith("network_")) >= 5, text
    assert (report["lost"], report["double_charged"], report["unbalanced_settlements"], report["balance_discrepancies"],
            report["network_differences"]) == (0, 0, 0, 0, 0), text  # fmt: skip
    assert report["network_mac_failures"] == 0, text  # every message MAC'd, key changes included
    assert report["ok"]
