"""``posgate serve`` end to end with the real pipeline: the exact command outside checks run, a
terminal core signing on and selling over a real socket, metrics and health, graceful exit."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from posgate.bench.host import CoreTerminal
from posgate.fleet.fleet import card_for, demo_specs
from posgate.terminal.machine import Input


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_serve(db_url: str, tmp_path, console_port: int) -> tuple[subprocess.Popen, int, list[str]]:
    env = dict(os.environ, POSGATE_MASTER_KEY_FILE=str(tmp_path / "master.key"))
    cmd = [sys.executable, "-m", "posgate.cli", "serve", "--demo", "--db", db_url, "--host", "127.0.0.1",
           "--port", "0", "--console-port", str(console_port)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=tmp_path, text=True)
    assert proc.stdout is not None
    lines = [proc.stdout.readline()]
    assert "posgate host listening on 127.0.0.1:" in lines[0], lines  # the FIRST line names the port
    port = int(lines[0].split("listening on 127.0.0.1:")[1].split('"')[0])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if "terminals connect to" in line or not line:
            break
    assert "terminals connect to" in lines[-1], lines
    return proc, port, lines


def _http(port: int, path: str) -> tuple[int, str]:
    for _ in range(100):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:  # noqa: S310 - loopback
                return r.status, r.read().decode()
        except ConnectionRefusedError:
            time.sleep(0.1)
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except urllib.error.URLError:
            time.sleep(0.1)
    raise AssertionError(f"nothing answers on {port}")


def test_serve_demo_end_to_end(db_url, tmp_path):
    console_port = _free_port()
    proc, port, lines = _start_serve(db_url, tmp_path, console_port)
    try:
        spec = demo_specs(1)[0]

        async def session() -> tuple:
            term = CoreTerminal(spec, port)
            try:
                signon = await term.run(Input("sign_on"))
                sale = await term.run(Input("sale", amount=1234, card=card_for("6212142000000000012")))
                low = await term.run(Input("sale", amount=2000, card=card_for("6217000000000000020")))
                return signon, sale, low
            finally:
                term.close()

        signon, sale, low = asyncio.run(session())
        assert signon.approved, signon
        assert sale.approved and len(sale.rrn) == 12 and len(sale.auth_code) == 6, sale
        assert low.response_code == "51"
        status, health = _http(console_port, "/health")
        assert status == 200 and '"status": "ok"' in health.replace('":"', '": "')
        status, text = _http(console_port, "/metrics")
        assert 'posgate_transactions_total{operation="sale",response_code="00"} 1.0' in text
        assert 'posgate_transactions_total{operation="sale",response_code="51"} 1.0' in text
        assert "posgate_commit_batch_size_count" in text
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "host stopped" in out
    logged = "".join(lines) + out
    # one line per transaction (the sale's STAN follows the IC parameter download after sign-on)
    assert f'"msg": "0200 sale stan={sale.stan} tid=10000001 amount=000000001234"' in logged
    assert "6212142000000000012" not in logged and "2000000000012" not in logged  # never a PAN or track
