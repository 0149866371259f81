"""``posgate serve --upstream`` and ``posgate network serve`` as real processes: the link's state
and the store-and-forward queue in the console's API, ``/health`` and ``/metrics`` through an
outage switched with ``posgate network fault``, a routed sale timed out by the network."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

EXE = str(Path(sys.executable).with_name("posgate"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def until(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = cond()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def posgate(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=60, env=env)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    net_port, control, port, http = free_port(), free_port(), free_port(), free_port()
    zmk = str(tmp_path / "zmk.key")
    host_env = dict(os.environ, POSGATE_MASTER_KEY_FILE=str(tmp_path / "master.key"))
    net_env = dict(os.environ, POSGATE_MASTER_KEY_FILE=str(tmp_path / "network-master.key"))
    db = f"sqlite:///{tmp_path / 'posgate.db'}"
    net_log, host_log = (tmp_path / "network.log").open("wb"), (tmp_path / "serve.log").open("wb")
    net = subprocess.Popen([EXE, "network", "serve", "--demo", "--db", f"sqlite:///{tmp_path / 'network.db'}", "--port",
                            str(net_port), "--control-port", str(control), "--zmk-file", zmk],
                           stdout=net_log, stderr=subprocess.STDOUT, env=net_env)  # fmt: skip
    host = None
    try:
        r = posgate("admin", "route", "add", "621214", "cupnet", "--db", db, env=host_env)
        assert r.returncode == 0, r.stdout + r.stderr
        host = subprocess.Popen([EXE, "serve", "--demo", "--db", db, "--port", str(port), "--console-port", str(http),
                                 "--upstream", f"cupnet=127.0.0.1:{net_port}", "--upstream-timeout", "1",
                                 "--zmk-file", zmk], stdout=host_log, stderr=subprocess.STDOUT, env=host_env)  # fmt: skip
        base = f"http://127.0.0.1:{http}"
        until(lambda: httpx.get(f"{base}/health", timeout=1).status_code in (200, 503) or host.poll() is not None, 60,
              "posgate serve to start")  # fmt: skip
        assert host.poll() is None, (tmp_path / "serve.log").read_text()
        yield {"base": base, "port": port, "control": f"127.0.0.1:{control}", "env": host_env, "tmp": tmp_path}
    finally:
        if host is not None:
            stop(host)
        stop(net)
        net_log.close()
        host_log.close()


def test_link_state_and_queue_through_an_outage(world: dict[str, Any]) -> None:
    base, env = world["base"], world["env"]
    tok = httpx.post(f"{base}/api/v1/auth/token", json={"username": "support", "password": "support-demo-pass"}).json()
    h = {"Authorization": f"Bearer {tok['access_token']}"}

    def link() -> dict[str, Any]:
        body = httpx.get(f"{base}/api/v1/upstream", headers=h, timeout=5).json()
        assert body["configured"] is True and body["in_host"] is True
        return body["links"][0]

    def health() -> tuple[int, dict[str, Any]]:
        r = httpx.get(f"{base}/health", timeout=5)
        return r.status_code, r.json()

    def metric(name: str, **labels: str) -> float:
        text = httpx.get(f"{base}/metrics", timeout=5).text
        sel = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        m = re.search(rf"^{name}\{{{re.escape(sel)}\}} (\S+)$", text, re.M)
        assert m, f"{name}{{{sel}}} not in /metrics"
        return float(m[1])

    until(lambda: link()["state"] == "signed_on", 20, "the link to sign on")
    code, h0 = health()
    assert code == 200 and h0["status"] == "ok" and h0["upstream"]["cupnet"]["state"] == "signed_on"
    assert metric("posgate_upstream_link_up", link="cupnet") == 1.0
    assert metric("posgate_upstream_saf_pending", link="cupnet", kind="reversal") == 0.0

    # the network swallows its replies: the routed sale times out (98) and a reversal is queued
    fault = ["network", "fault", "--control", world["control"]]
    assert posgate(*fault, "drop", "1", env=env).returncode == 0
    term = ["terminal", "--state", str(world["tmp"] / "pos"), "--port", str(world["port"])]
    r = posgate(*term, "signon", "--json", env=env)
    assert '"approved": true' in r.stdout, r.stdout + r.stderr
    r = posgate(*term, "sale", "12.34", "--card", "6212142000000000012", "--pin", "123456", "--json", env=env)
    sale = json.loads(r.stdout[r.stdout.index("{"): r.stdout.rindex("}") + 1])
    assert sale["approved"] is False and "98" in json.dumps(sale), r.stdout
    q = until(lambda: link()["queue"] if link()["queue"]["reversals"] == 1 else None, 10, "the reversal to be queued")
    (item,) = q["items"]
    assert item["pan_masked"] == "621214*********0012" and item["amount"] == 1234 and item["kind"] == "reversal"

    # the network goes down: the link is down, /health degraded (still 200), the queue waits
    assert posgate(*fault, "down", "on", env=env).returncode == 0
    until(lambda: link()["state"] == "down", 30, "the link to be down")
    code, h1 = health()
    assert code == 200 and h1["status"] == "degraded"
    assert h1["upstream"]["cupnet"]["state"] == "down" and h1["upstream"]["cupnet"]["saf_pending"] == 1
    assert metric("posgate_upstream_link_up", link="cupnet") == 0.0
    assert metric("posgate_upstream_link_state", link="cupnet", state="down") == 1.0
    assert metric("posgate_upstream_saf_pending", link="cupnet", kind="reversal") == 1.0
    assert link()["queue"]["items"][0]["next_try_at"] is None
    notes = {n["key"] for n in httpx.get(f"{base}/api/v1/notices", headers=h).json()}
    assert "upstream_down" in notes

    # back: signed on, the reversal goes up, healthy again
    assert posgate(*fault, "calm", env=env).returncode == 0
    assert posgate(*fault, "down", "off", env=env).returncode == 0
    until(lambda: link()["state"] == "signed_on" and link()["queue"]["pending"] == 0, 30, "the queue to drain")
    code, h2 = health()
    assert code == 200 and h2["status"] == "ok"
    assert metric("posgate_upstream_saf_pending", link="cupnet", kind="reversal") == 0.0
