"""HAProxy in front of several ``posgate serve`` processes (TCP mode, loopback only).

Theory of operation: :class:`HAProxy` renders ``deploy/haproxy/haproxy.cfg``'s shape with the
ports of this run (a listening port and one ``server`` line per host), writes it to a work
directory and runs ``haproxy -f <cfg> -db`` (foreground) as a child process; :meth:`HAProxy.stop`
ends it. A host that is down or restarting is taken out by the health check (a TCP connect
every 500 ms, two failures) and a connect that reaches it meanwhile is redispatched to another
host (``retries 3`` + ``option redispatch``): terminals only notice the connections that were
open on the host that died. :func:`haproxy_available` tells whether the Debian package is installed.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from posgate.fleet.hostproc import _die_with_parent
from posgate.fleet.net import free_port, require_loopback

CONFIG = """\
global
    maxconn 8000

defaults
    mode tcp
    timeout connect 2s
    timeout client 330s
    timeout server 330s
    retries 3
    option redispatch

frontend cup_terminals
    bind {listen_host}:{listen_port}
    maxconn 8000
    default_backend posgate_hosts

backend posgate_hosts
    balance leastconn
    default-server check inter 500ms fall 2 rise 2 maxconn 4000
{servers}
"""


def haproxy_available() -> bool:
    return shutil.which("haproxy") is not None


def render(backends: list[tuple[str, int]], listen: tuple[str, int]) -> str:
    servers = "\n".join(f"    server host{i + 1} {require_loopback(h)}:{p}" for i, (h, p) in enumerate(backends))
    return CONFIG.format(listen_host=require_loopback(listen[0]), listen_port=listen[1], servers=servers)


class HAProxy:
    def __init__(self, backends: list[tuple[str, int]], *, workdir: Path, port: int = 0, host: str = "127.0.0.1") -> None:
        self.backends = backends
        self.host = require_loopback(host)
        self.port = port or free_port(host)
        self.workdir = Path(workdir)
        self.config_path = self.workdir / "haproxy.cfg"
        self.log_path = self.workdir / "haproxy.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> HAProxy:
        exe = shutil.which("haproxy")
        if exe is None:
            raise RuntimeError("haproxy is not installed (Debian: apt-get install -y haproxy)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(render(self.backends, (self.host, self.port)))
        check = subprocess.run([exe, "-c", "-f", str(self.config_path)], capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy refuses the configuration:\n{check.stdout}{check.stderr}")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([exe, "-f", str(self.config_path), "-db"], stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"haproxy exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            with socket.socket() as s:
                s.settimeout(0.5)
                if s.connect_ex((self.host, self.port)) == 0:
                    return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"haproxy did not listen on {self.host}:{self.port} within {timeout:g} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)  # soft stop: finish open connections
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> HAProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
