"""One ``posgate serve --demo`` subprocess on a temporary SQLite database for the module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from posgate.fleet.hostproc import HostProcess


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    d: Path = tmp_path_factory.mktemp("host")
    # Short frame timeout so the slow-drip test sees its connection closed quickly.
    proc = HostProcess(f"sqlite:///{d / 'host.db'}", port=0, log_path=d / "host.log",
                       extra_args=("--frame-timeout", "2", "--max-connections", "3000"))  # fmt: skip
    proc.start()
    try:
        yield proc
    finally:
        alive = proc.alive
        proc.close()
        assert alive, f"the host died during the module:\n{proc.log_tail(lines=40)}"
