from __future__ import annotations

import pytest

from .netkit import Acquirer, NetworkThread


@pytest.fixture(autouse=True)
def _master_key(tmp_path, monkeypatch):
    monkeypatch.setenv("POSGATE_MASTER_KEY_FILE", str(tmp_path / "master.key"))


@pytest.fixture
def network(tmp_path):
    net = NetworkThread(tmp_path)
    yield net
    net.close()


@pytest.fixture
def acquirer(tmp_path, network):
    acq = Acquirer(tmp_path, network.address)
    acq.wait_up()
    yield acq
    acq.close()
