"""The benchmark tools' moving parts: CPU quotas for host processes, a fleet holding terminals."""

from __future__ import annotations

import subprocess
import sys

import pytest

from posgate.bench.cgroup import CpuQuota, detect, process_cpu_seconds
from posgate.fdlimit import raise_fd_limit


def test_cpu_quota_holds_a_process_and_cleans_up():
    fs = detect()
    if isinstance(fs, str):
        pytest.skip(fs)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with CpuQuota(0.5, fs) as quota:
            group = quota.add(child.pid)
            assert str(child.pid) in (group / "cgroup.procs").read_text().split()
            if fs.version == 1:
                assert (group / "cpu.cfs_quota_us").read_text().strip() == "50000"
                assert (group / "cpu.cfs_period_us").read_text().strip() == "100000"
            else:
                assert (group / "cpu.max").read_text().split() == ["50000", "100000"]
            assert "nr_periods" in CpuQuota.stats(group)
        assert not group.exists()  # removed, the process moved back to the root group
        assert child.poll() is None
        assert process_cpu_seconds(child.pid) >= 0
    finally:
        child.kill()
        child.wait()


def test_fd_limit_is_raised_to_the_hard_limit():
    import resource

    soft = raise_fd_limit()
    now_soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft == now_soft
    assert hard == resource.RLIM_INFINITY or now_soft == hard


def test_bench_fleet_holds_every_terminal_connected(capsys, tmp_path, monkeypatch):
    from posgate.bench.fleet import main

    monkeypatch.setenv("POSGATE_MASTER_KEY_FILE", str(tmp_path / "master.key"))
    assert main(["--terminals", "12", "--concurrency", "5", "--hold", "0.2", "--sample", "4"]) == 0
    out = capsys.readouterr().out
    assert "12 terminals signed on" in out and "not signed on: 0" in out
    assert "connected after 0.2 s: 12 of 12" in out
    assert "approved 4, same connection 4" in out
    assert "memory per terminal: fleet" in out
