"""A ``posgate serve`` process under our control: start, SIGKILL, restart on the same port.

Theory of operation
-------------------
:class:`HostProcess` runs ``python -m posgate.cli serve --no-console`` as a child process with
its output going to a log file (never a pipe: a pipe nobody reads would block the host). The
terminal port is either chosen up front (``port``; then the host is restarted on that same
port after a kill, so terminals and the fault proxy need not be told) or left to the host
(``port=0``; then the first log line, ``posgate host listening on HOST:PORT``, gives it).
Readiness means a TCP connect to the port succeeds.

Also reports what the hostile-input tests watch: the child's open file descriptors
(``/proc/<pid>/fd``) and resident memory (``/proc/<pid>/status`` VmRSS).

Only ever listens on loopback; the child is killed when the object is closed, whatever happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from posgate.fleet.net import require_loopback

_NO_UVLOOP = "import sys; sys.modules['uvloop'] = None; sys.argv[0] = 'posgate'; from posgate.cli import main; main()"


def _die_with_parent() -> None:
    """In the child: SIGKILL it when the process that started it dies (Linux), so that a soak
    killed by a timeout leaves no host behind."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class HostStartError(RuntimeError):
    """The host process exited or did not listen in time; the message quotes its log."""


class HostProcess:
    def __init__(
        self,
        db_url: str,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        demo: bool = True,
        log_path: Path | str | None = None,
        log_level: str = "warning",
        extra_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        uvloop: bool = True,
        console_port: int | None = None,
    ) -> None:
        self.db_url = db_url
        self.host = require_loopback(host)
        self.port = port
        self.demo = demo
        self.log_level = log_level if port else "info"  # port 0: the listening line is INFO
        self.extra_args = extra_args
        self.env = env
        self.uvloop = uvloop
        self.console_port = console_port  # None: --no-console (metrics only, on a free port)
        self.log_path = Path(log_path) if log_path else Path(tempfile.gettempdir()) / f"posgate-host-{os.getpid()}-{id(self)}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0

    # -- lifecycle
    def command(self) -> list[str]:
        # uvloop=False runs the host on asyncio's own loop (for comparisons, or to step around a
        # uvloop-specific problem): an import of uvloop then fails and posgate falls back.
        launcher = ["-m", "posgate.cli"] if self.uvloop else ["-c", _NO_UVLOOP]
        cmd = [sys.executable, *launcher, "serve", "--db", self.db_url, "--host", self.host,
               "--port", str(self.port), "--log-level", self.log_level]  # fmt: skip
        if self.console_port is None:
            cmd += ["--no-console", "--console-port", "0"]
        else:
            cmd += ["--console-port", str(self.console_port)]
        if self.demo:
            cmd.append("--demo")
        return cmd + list(self.extra_args)

    def start(self, timeout: float = 30.0) -> HostProcess:
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("the host is already running")
        env = dict(os.environ)
        env.setdefault("MALLOC_MMAP_THRESHOLD_", "1048576")
        env.setdefault("MALLOC_TRIM_THRESHOLD_", "8388608")
        if self.env:
            env.update(self.env)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                         preexec_fn=_die_with_parent)  # fmt: skip
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HostStartError(f"posgate serve exited with {self.proc.returncode}:\n{self.log_tail(offset)}")
            if not self.port:
                found = self._port_from_log(offset)
                if found:
                    self.port = found
            if self.port and self._accepts():
                return self
            time.sleep(0.05)
        self.kill()
        raise HostStartError(f"posgate serve did not listen within {timeout:g} s:\n{self.log_tail(offset)}")

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, nothing flushed — a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.kills += 1

    def restart(self, timeout: float = 30.0) -> HostProcess:
        self.kill()
        return self.start(timeout)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM and wait (graceful); SIGKILL if it does not stop in time."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop(5)
        self.kill()

    def __enter__(self) -> HostProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- observation
    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def log_tail(self, offset: int = 0, lines: int = 30) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def log_text(self) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")
        except OSError:
            return ""

    def _port_from_log(self, offset: int) -> int:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                for raw in f:
                    try:
                        rec = json.loads(raw)
                    except ValueError:
                        continue
                    if isinstance(rec, dict) and "listening on" in str(rec.get("msg", "")) and rec.get("port"):
                        return int(rec["port"])
        except OSError:
            pass
        return 0

    def _accepts(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            try:
                s.connect((self.host, self.port))
            except OSError:
                return False
            return True


class NetworkProcess(HostProcess):
    """``posgate network serve`` as a subprocess (chaos, benchmarks): same life cycle as a host.
    ``port`` and ``control_port`` are fixed (a restarted network comes back where the links
    expect it)."""

    def __init__(self, db_url: str, *, port: int, control_port: int, zmk_file: Path | str, log_path: Path | str | None = None,
                 env: dict[str, str] | None = None, extra_args: tuple[str, ...] = ()) -> None:  # fmt: skip
        super().__init__(db_url, port=port, log_path=log_path, env=env, extra_args=extra_args)
        self.control_port = control_port
        self.zmk_file = str(zmk_file)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "posgate.cli", "network", "serve", "--db", self.db_url, "--host", self.host,
                "--port", str(self.port), "--control-port", str(self.control_port), "--zmk-file", self.zmk_file,
                "--log-level", "warning", *self.extra_args]  # fmt: skip
