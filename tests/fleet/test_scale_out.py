"""Scale-out soak: two ``posgate serve`` processes on one PostgreSQL behind HAProxy, host
processes killed one at a time, one minute — the same four zeros as the single-host soak.
Skipped when PostgreSQL or HAProxy is absent (Debian: ``apt-get install -y haproxy``).
PostgreSQL itself is not restarted here (others share the server): that is the long soak's job."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from posgate.fleet.chaos import ChaosConfig, format_chaos, run_chaos
from posgate.fleet.haproxy import haproxy_available
from posgate.store.testing import pg_available, temp_pg_database


@pytest.mark.slow
@pytest.mark.postgres
def test_two_hosts_behind_haproxy_lose_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not haproxy_available():
        pytest.skip("haproxy is not installed (apt-get install -y haproxy)")
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    monkeypatch.setenv("POSGATE_MASTER_KEY_FILE", str(tmp_path / "master.key"))
    with temp_pg_database(f"posgate_chaos_{os.getpid()}") as url:
        report = run_chaos(ChaosConfig(minutes=1.0, db=url, hosts=2, terminals=12, seed=21, timeout=3.0,
                                       restart_postgres=False, host_kills=2))
    text = "\n".join(format_chaos(report))
    assert report["haproxy"] and report["hosts"] == 2, text
    assert report["faults"].get("host_kill", 0) == 2, text
    assert (report["lost"], report["double_charged"], report["unbalanced_settlements"], report["balance_discrepancies"]) \
        == (0, 0, 0, 0), text
