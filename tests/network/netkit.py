"""Test kit for upstream: a real ``posgate network`` in a thread, and an acquirer whose pipeline
runs over a real SQLite database with the routing issuer (the pair terminal drives it)."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from posgate.crypto import generate_working_keys
from posgate.host.issuer import BuiltinIssuer
from posgate.host.pipeline import HostReply, process
from posgate.host.ports import Env
from posgate.network.server import Network, NetworkConfig
from posgate.network.upstream import LinkConfig, Upstream
from posgate.store import admin, demo
from posgate.store.database import Database

HEADER = bytes.fromhex("603100000000")
ZMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


def provision(db: Database) -> None:
    """The demo's merchants, terminals and cards (not its console users: hashing their
    passwords is the slow part and nothing here signs in to the console)."""
    with db.engine.begin() as conn:
        demo._provision(conn, db.keyring)


class NetworkThread:
    """A :class:`Network` on its own event loop in a thread (the acquirer's pipeline blocks its
    own thread while it waits, as the host's does)."""

    def __init__(self, tmp: Path, **config: Any) -> None:
        self.db = Database.open(f"sqlite:///{tmp / 'network.db'}", key_file=tmp / "network.key")
        provision(self.db)
        self.config = NetworkConfig(port=0, **config)
        self.network = Network(self.db, ZMK, self.config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.address = self.call(self.network.start())

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def do(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the network's loop (fault switches)."""
        async def run() -> Any:
            return fn()

        return self.call(run())

    def restart(self) -> None:
        """Stop listening and start again on the same port (a network restart)."""
        self.call(self.network.close())
        self.network = Network(self.db, ZMK, NetworkConfig(port=self.address[1], seed=self.config.seed))
        self.address = self.call(self.network.start())

    def close(self) -> None:
        self.call(self.network.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        self.db.close()

    def rows(self) -> list[dict[str, Any]]:
        from sqlalchemy import select

        from posgate.network.records import network_transactions as nt

        with self.db.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(nt).order_by(nt.c.id))]

    def balance(self, pan: str) -> int:
        with self.db.unit_of_work() as store:
            card = store.card(store.pan_hash(pan))
            assert card is not None
            return card.balance


class Acquirer:
    """The host's pipeline over a real database with the routing issuer: ``process(body)`` as
    the server runs it (one unit of work per request)."""

    def __init__(self, tmp: Path, network_address: tuple[str, int] | None, *, timeout: float = 1.0,
                 grace: float = 10.0, routes: tuple[tuple[str, str], ...] = (("621214", "cupnet"),),
                 name: str = "acquirer", echo_every: float = 30.0) -> None:  # fmt: skip
        self.tmp = tmp
        self.db = Database.open(f"sqlite:///{tmp / (name + '.db')}", key_file=tmp / (name + ".key"))
        provision(self.db)
        with self.db.engine.begin() as conn:
            have = {(r["bin_low"], r["target"]) for r in admin.list_routes(conn)}
            for prefix, target in routes:
                if (prefix, target) not in have:
                    admin.add_route(conn, prefix, None, target)
        self.env = Env(now=lambda: datetime.now(UTC), randbytes=secrets.token_bytes)
        self.clock = self.env.now  # what the terminal drivers of tests/pair read
        self.zone_key = generate_working_keys("003", secrets.token_bytes).pik
        links = [LinkConfig("cupnet", *network_address)] if network_address else []
        self.upstream = Upstream(self.db, links, ZMK, journal_path=tmp / (name + "-journal.db"), timeout=timeout,
                                 grace=grace, echo_every=echo_every)
        self.upstream.start()

    def issuer(self, store: Any) -> Any:
        return self.upstream.issuer_factory(lambda s: BuiltinIssuer(s, self.zone_key, self.env.timezone))(store)

    def process(self, body: bytes, header: bytes = HEADER) -> HostReply:
        with self.db.unit_of_work() as store:
            return process(header, body, store, self.issuer(store), self.env)

    def wait_up(self, timeout: float = 10) -> None:
        wait_for(lambda: all(lk.up for lk in self.upstream.links.values()), timeout, "the link to sign on")

    def close(self) -> None:
        self.upstream.stop()
        self.db.close()

    def txns(self) -> list[dict[str, Any]]:
        from sqlalchemy import select

        from posgate.store import schema as s

        with self.db.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(s.transactions).order_by(s.transactions.c.id))]

    def saf(self) -> dict[str, int]:
        return self.upstream.journal.counts()


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class FrameProxy:
    """A real TCP proxy between the acquirer and the network, frame by frame (2-byte length +
    body), on its own loop in a thread: it records every frame and lets a test alter one on
    the way (``tamper_up`` acquirer → network, ``tamper_down`` network → acquirer: a function of
    the body returning the body to forward)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.frames: list[tuple[str, bytes]] = []  # ("up" | "down", body as forwarded)
        self.tamper_up: Callable[[bytes], bytes] | None = None
        self.tamper_down: Callable[[bytes], bytes] | None = None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.AbstractServer = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self.loop).result(10)  # fmt: skip
        self.address: tuple[str, int] = self.server.sockets[0].getsockname()[:2]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers += [writer, up_writer]
        await asyncio.gather(self._pump("up", reader, up_writer), self._pump("down", up_reader, writer),
                             return_exceptions=True)  # fmt: skip
        writer.close()
        up_writer.close()

    async def _pump(self, direction: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from posgate.network.wire import read_frame, write_frame

        try:
            while (body := await read_frame(reader)) is not None:
                hook = self.tamper_up if direction == "up" else self.tamper_down
                if hook is not None:
                    body = hook(body)
                self.frames.append((direction, body))
                await write_frame(writer, body)
        finally:
            writer.close()

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            for w in self._writers:
                w.close()
            await asyncio.sleep(0.05)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def tamper_once(mti: str, field_value: bytes, replacement: bytes) -> tuple[Callable[[bytes], bytes], list[bytes]]:
    """A hook that alters the first frame of ``mti`` whose body holds ``field_value`` (the BCD
    bytes of a field) — the bytes after the bitmaps — once; and the list it appends the original to."""
    done: list[bytes] = []

    def hook(body: bytes) -> bytes:
        if done or body[:2].hex() != mti:
            return body
        at = body.find(field_value, 18)
        if at < 0:
            return body
        done.append(body)
        return body[:at] + replacement + body[at + len(field_value):]

    return hook, done
