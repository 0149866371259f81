"""A console inside a host with an upstream link, as ``posgate serve --upstream`` wires it: a
real ``posgate network`` (in a thread), a real :class:`~posgate.network.upstream.Upstream` over
the console's database, the console application handed that upstream, and the host's pipeline
with the routing issuer for the pair terminal to drive."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from network.netkit import ZMK, NetworkThread, wait_for
from pair.harness import HEADER
from posgate.console.app import create_app
from posgate.console.settings import ConsoleSettings
from posgate.host.issuer import BuiltinIssuer
from posgate.host.pipeline import HostReply, process
from posgate.host.ports import Env as HostEnv
from posgate.network.upstream import LinkConfig, Upstream
from posgate.store import admin

from .helpers import Env

OK_PAN = "6212142000000000012"


@dataclass
class Linked:
    env: Env
    app: Any
    network: NetworkThread
    upstream: Upstream
    host_env: HostEnv
    zone_key: bytes

    @property
    def clock(self) -> Any:  # what the pair terminal reads
        return self.host_env.now

    def process(self, body: bytes, header: bytes = HEADER) -> HostReply:
        with self.env.db.unit_of_work() as store:
            issuer = self.upstream.issuer_factory(lambda s: BuiltinIssuer(s, self.zone_key, self.host_env.timezone))(store)
            return process(header, body, store, issuer, self.host_env)

    def state(self) -> str:
        return self.upstream.links["cupnet"].status().state

    def fault(self, name: str, value: str) -> None:
        self.network.do(lambda: self.network.network.set_fault(name, value))

    def calm(self) -> None:
        self.network.do(self.network.network.calm)


def start_linked(env: Env, tmp: Path) -> Linked:
    (tmp / "net").mkdir(exist_ok=True)
    net = NetworkThread(tmp / "net")
    with env.db.engine.begin() as conn:
        admin.add_route(conn, "621214", None, "cupnet")
    # down_after 1 s: "down" is shown a second after the last connection went (5 s by default)
    up = Upstream(env.db, [LinkConfig("cupnet", *net.address)], ZMK, journal_path=tmp / "upstream-journal.db",
                  timeout=1.0, down_after=1.0).start()  # fmt: skip
    settings = ConsoleSettings(engine=env.db.engine, keyring=env.db.keyring, backup_dir=tmp / "backups",
                               scheduler=False, upstream=up, in_host=True)  # fmt: skip
    rnd = random.Random(5)
    linked = Linked(env, create_app(settings), net, up, HostEnv(now=lambda: datetime.now(UTC), randbytes=rnd.randbytes),
                    rnd.randbytes(16))  # fmt: skip
    wait_for(lambda: linked.state() == "signed_on", 10, "the link to sign on")
    return linked


@pytest.fixture
def linked(env: Env, tmp_path: Path) -> Iterator[Linked]:
    lk = start_linked(env, tmp_path)
    env.app = lk.app  # env.client() and the live server serve the console that sees the link
    yield lk
    lk.upstream.stop()
    lk.network.close()
