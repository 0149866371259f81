"""CPU quotas for benchmark processes: each host process held to the same share of a core.

A scale-out figure on a shared 2-core machine means little when one host process can take
whatever the neighbours leave: two processes then compete for the same cores and the ratio
measures the scheduler. Holding every host process to the same CPU quota (``cfs_quota_us`` /
``cfs_period_us`` on cgroup v1, ``cpu.max`` on cgroup v2) makes each one a fixed-size
"machine", so two of them can show what scale-out adds.

:class:`CpuQuota` detects the cgroup version, creates one child group per process under the
CPU controller's root (``posgate-bench-<pid>-<n>``), moves the process in (all its threads
follow), reads back the group's CPU usage and throttling, and removes the groups on close
(any process still inside is moved back to the root group first). Without write access to the
cgroup file system :func:`detect` says why, and the caller skips the quota.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 100_000


@dataclass(frozen=True)
class CgroupFs:
    version: int  # 1 or 2
    root: Path  # the CPU controller's root group


def detect(root: Path = CGROUP_ROOT) -> CgroupFs | str:
    """The writable CPU controller, or a sentence saying why there is none."""
    v2 = root / "cgroup.controllers"
    if v2.exists():
        if "cpu" not in v2.read_text().split():
            return "cgroup v2 without the cpu controller"
        fs = CgroupFs(2, root)
    elif (root / "cpu" / "cpu.cfs_quota_us").exists():
        fs = CgroupFs(1, root / "cpu")
    else:
        return f"no CPU cgroup controller under {root}"
    if not os.access(fs.root, os.W_OK):
        return f"no permission to create cgroups under {fs.root} (run as root)"
    return fs


class CpuQuota:
    """Creates groups each limited to ``cores`` of a CPU; ``with CpuQuota(0.5) as q: q.add(pid)``."""

    def __init__(self, cores: float, fs: CgroupFs | None = None, *, weight: float = 1.0) -> None:
        """``weight``: the groups' share of contended CPU against other groups, as a multiple of
        the default (1024 ``cpu.shares`` on v1, ``cpu.weight`` 100 on v2). Above 1, a neighbour's
        busy processes cannot starve a host below its quota; the quota still caps it."""
        found = fs or detect()
        if isinstance(found, str):
            raise PermissionError(found)
        self.fs = found
        self.cores = cores
        self.weight = weight
        self.groups: list[Path] = []

    def add(self, pid: int) -> Path:
        """A new group limited to the quota, with process ``pid`` (and its threads) in it."""
        group = self.fs.root / f"posgate-bench-{os.getpid()}-{len(self.groups) + 1}"
        if self.fs.version == 2:
            control = self.fs.root / "cgroup.subtree_control"
            if "cpu" not in control.read_text().split():
                control.write_text("+cpu")
        group.mkdir()
        self.groups.append(group)
        quota = int(PERIOD_US * self.cores)
        if self.fs.version == 1:
            (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(quota))
            (group / "cpu.shares").write_text(str(max(2, int(1024 * self.weight))))
        else:
            (group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
            (group / "cpu.weight").write_text(str(min(10_000, max(1, int(100 * self.weight)))))
        (group / "cgroup.procs").write_text(str(pid))
        return group

    @staticmethod
    def stats(group: Path) -> dict[str, int]:
        """``cpu.stat`` of a group: periods, throttled periods, throttled time (and usage on v2)."""
        out: dict[str, int] = {}
        with contextlib.suppress(OSError):
            for line in (group / "cpu.stat").read_text().splitlines():
                k, _, v = line.partition(" ")
                if v.strip().isdigit():
                    out[k] = int(v)
        return out

    def close(self) -> None:
        for group in reversed(self.groups):
            with contextlib.suppress(OSError):
                for pid in (group / "cgroup.procs").read_text().split():
                    with contextlib.suppress(OSError):
                        (self.fs.root / "cgroup.procs").write_text(pid)
            with contextlib.suppress(OSError):
                group.rmdir()
        self.groups.clear()

    def __enter__(self) -> CpuQuota:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (``/proc/<pid>/stat``), threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
