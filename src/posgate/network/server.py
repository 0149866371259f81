"""``posgate network``: a card network and its issuers behind the host-to-host dialect.

Theory of operation
-------------------
An asyncio TCP server speaking ``posgate.dialect.network`` (2-byte length + ISO 8583:1987
body). Each request is answered by :func:`posgate.network.core.answer` in one unit of work on
the network's own database (its issuers' cards, its ``network_transactions``), then the reply
goes out — possibly late, twice or never, as the fault modes say (:class:`Faults`). Requests
on one connection are answered independently (one task each), so with ``slow`` their replies
come back out of order, as they do from a real switch.

Faults (flags at start, or at run time through the control port, a line protocol on loopback:
``fault slow 0.5``, ``fault drop 0.2``, ``fault down on``, ``calm``, ``stats``):

* ``down`` — every connection is closed and new ones are refused (closed at once);
* ``slow S`` — each reply waits a random 0..S seconds (out of order);
* ``drop P`` — a reply is swallowed with probability P (the work was done: the acquirer must
  time out and reverse);
* ``late P`` — a reply is held ``late_by`` seconds (past the acquirer's timeout), then sent;
* ``duplicate P`` — a reply is sent twice.

Decisions come from a seeded :class:`random.Random`. Loopback only for the control port.

MAC (docs/upstream.md "MAC and key change"): each connection is a session with its own MAC key
(:mod:`posgate.network.keys`), drawn at sign-on and sent in the sign-on reply under the zone
master key. Every other message must carry field 128 under it (or under the key it replaced,
for ``key_grace`` seconds after a key change); one that does not verify is **not acted on**:
it is answered ``A0`` (MAC'd when the session has a key), counted (``stats["mac_failures"]``)
and logged with the PAN masked. Replies are MAC'd when they are written, so the key that signs
each frame follows the order of the frames on the connection. Key change (0800, 70 = 101):
asked by the acquirer (answered with the new key, the reply still MAC'd under the old one), or
pushed by the network — every ``rekey_every`` seconds per connection, and on demand with
``rekey`` on the control port (``posgate network rekey``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select, update

from posgate.crypto import generate_working_keys, kcv
from posgate.crypto.tdes import des_encrypt
from posgate.dialect import network as h2h
from posgate.domain.masking import mask_pan
from posgate.host.issuer import BuiltinIssuer
from posgate.iso8583 import CodecError, Message
from posgate.network import records as r
from posgate.network.core import answer
from posgate.network.keys import SessionKeys, new_mak, wrap
from posgate.network.wire import read_frame, write_frame
from posgate.store import schema as s
from posgate.store.database import Database
from posgate.store.keyring import Keyring

log = logging.getLogger("posgate.network")

DEFAULT_PORT = 9583
NETWORK_ID = "00010000"  # field 100 / 33: the network's institution id


@dataclass
class Faults:
    down: bool = False
    slow: float = 0.0
    drop: float = 0.0
    late: float = 0.0
    late_by: float = 5.0
    duplicate: float = 0.0

    def set(self, name: str, value: str) -> None:
        if name not in ("down", "slow", "drop", "late", "late_by", "duplicate"):
            raise ValueError(f"no fault {name!r}: one of down, slow, drop, late, late_by, duplicate")
        if name == "down":
            if value not in ("on", "off", "1", "0", "true", "false"):
                raise ValueError("down takes on or off")
            self.down = value in ("on", "1", "true")
            return
        number = float(value)
        if number < 0 or (name in ("drop", "late", "duplicate") and number > 1):
            raise ValueError(f"{name} must be {'a probability 0..1' if name != 'slow' else 'seconds >= 0'}")
        setattr(self, name, number)


def load_zmk(path: Path) -> bytes:
    """The zone master key shared by the acquirer and the network (a 16-byte key file, 0600)."""
    from posgate.keyfile import create_key_file

    if not path.exists():
        made = create_key_file(path, 16)
        if made is not None:
            return made
    key = path.read_bytes()
    if len(key) != 16:
        raise ValueError(f"{path}: a zone master key file holds 16 bytes")
    return key


class SqlRecords:
    """:class:`posgate.network.core.RecordStore` on the network's database connection."""

    def __init__(self, conn: Connection, keyring: Keyring) -> None:
        self.conn = conn
        self.keyring = keyring

    def _row(self, where: Any) -> dict[str, Any] | None:
        row = self.conn.execute(select(r.network_transactions).where(*where).order_by(r.network_transactions.c.id)).first()
        return dict(row._mapping) if row is not None else None

    def find(self, acquirer_id: str, rrn: str, stan: str, mti: str) -> dict[str, Any] | None:
        c = r.network_transactions.c
        return self._row((c.acquirer_id == acquirer_id, c.rrn == rrn, c.stan == stan, c.mti == mti))

    def find_original(self, acquirer_id: str, rrn: str, stan: str) -> dict[str, Any] | None:
        c = r.network_transactions.c
        return self._row((c.acquirer_id == acquirer_id, c.rrn == rrn, c.stan == stan, c.kind != "reversal"))

    def reversal_of(self, acquirer_id: str, rrn: str, stan: str) -> dict[str, Any] | None:
        c = r.network_transactions.c
        return self._row((c.acquirer_id == acquirer_id, c.original_rrn == rrn, c.original_stan == stan,
                          c.kind == "reversal"))  # fmt: skip

    def insert(self, row: dict[str, Any]) -> int:
        res = self.conn.execute(r.network_transactions.insert().values(**row))
        return int(res.inserted_primary_key[0])  # type: ignore[index]

    def mark_reversed(self, row_id: int) -> None:
        self.conn.execute(update(r.network_transactions).where(r.network_transactions.c.id == row_id).values(reversed=True))

    def pan_token(self, pan: str) -> str:
        return self.keyring.pan_hash(pan)

    def card_kind(self, pan: str) -> str:
        c = s.cards.c
        row = self.conn.execute(select(c.kind, c.organisation).where(c.pan_hash == self.keyring.pan_hash(pan))).first()
        if row is None:
            return "debit"
        return "foreign" if row.organisation != "CUP" else str(row.kind)


@dataclass
class NetworkConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    control_port: int | None = None  # None: no control port
    network_id: str = NETWORK_ID
    timezone: str = "Asia/Shanghai"
    seed: int = 0
    faults: Faults = field(default_factory=Faults)
    rekey_every: float = 86_400.0  # seconds a connection's MAC key lives before the network changes it (0: never)
    key_grace: float = 30.0  # seconds the key a change replaced still verifies (messages in flight)


class _Session:
    """One acquirer connection: its writer and MAC key (None until it signs on)."""

    __slots__ = ("writer", "keys")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.keys: SessionKeys | None = None


class Network:
    """The network process's server. ``await start()``, then ``await close()``."""

    def __init__(self, db: Database, zmk: bytes, config: NetworkConfig | None = None) -> None:
        self.db = db
        self.config = config or NetworkConfig()
        self.faults = self.config.faults
        self.rng = random.Random(self.config.seed)
        self.stats: Counter[str] = Counter()
        self._zmk = zmk
        self._zpk = generate_working_keys("003", secrets.token_bytes).pik
        self._writers: set[asyncio.StreamWriter] = set()
        self._sessions: set[_Session] = set()
        self._stan = random.Random().randrange(900_000)
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.AbstractServer | None = None
        self._control: asyncio.AbstractServer | None = None
        self.address: tuple[str, int] = (self.config.host, self.config.port)
        self.control_address: tuple[str, int] | None = None
        r.metadata.create_all(db.engine)

    @property
    def zpk(self) -> bytes:
        return self._zpk

    def _zpk_under_zmk(self) -> str:
        return (des_encrypt(self._zmk, self._zpk).hex() + kcv(self._zpk).hex()[:8]).upper()

    async def start(self) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._serve, self.config.host, self.config.port)
        sock = self._server.sockets[0].getsockname()
        self.address = (sock[0], sock[1])
        if self.config.control_port is not None:
            self._control = await asyncio.start_server(self._serve_control, "127.0.0.1", self.config.control_port)
            c = self._control.sockets[0].getsockname()
            self.control_address = (c[0], c[1])
        if self.config.rekey_every > 0:
            self._spawn(self._rekey_periodically())
        return self.address

    async def close(self) -> None:
        for srv in (self._server, self._control):
            if srv is not None:
                srv.close()
        self._sever()
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(BaseException):
                await t
        for srv in (self._server, self._control):
            if srv is not None:
                with contextlib.suppress(Exception):
                    await srv.wait_closed()
        for _ in range(3):  # let the transports finish closing
            await asyncio.sleep(0)

    def _sever(self) -> None:
        for w in list(self._writers):
            w.close()
        self._writers.clear()

    def set_fault(self, name: str, value: str) -> None:
        self.faults.set(name, value)
        if self.faults.down:
            self._sever()

    def calm(self) -> None:
        self.faults.__init__()  # type: ignore[misc]

    # ------------------------------------------------------------------ MAC keys
    def rekey(self) -> int:
        """Push a key change to every signed-on connection now; how many."""
        sessions = [x for x in self._sessions if x.keys is not None and not x.writer.is_closing()]
        for session in sessions:
            self._spawn(self._push_key_change(session))
        return len(sessions)

    async def _rekey_periodically(self) -> None:
        loop = asyncio.get_running_loop()
        every = self.config.rekey_every
        while True:
            await asyncio.sleep(min(every, 1.0))
            for session in list(self._sessions):
                if session.keys is not None and loop.time() - session.keys.since >= every and not session.writer.is_closing():
                    await self._push_key_change(session)

    def _next_stan(self) -> str:
        self._stan = self._stan % 999_999 + 1
        return f"{self._stan:06d}"

    async def _push_key_change(self, session: _Session) -> None:
        """0800, 70 = 101, 48 = the new key: MAC'd under the current key, which it then replaces."""
        keys = session.keys
        if keys is None:
            return
        mak = new_mak(secrets.token_bytes)
        msg = Message("0800", {7: datetime.now(UTC).strftime("%m%d%H%M%S"), 11: self._next_stan(),
                               33: self.config.network_id, 48: wrap(self._zmk, mak), 70: h2h.KEY_CHANGE})  # fmt: skip
        body = keys.sign(msg)
        keys.rotate(mak, asyncio.get_running_loop().time(), self.config.key_grace)
        self.stats["key_changes_sent"] += 1
        log.info("MAC key change pushed to a connection (check value %s)", keys.kcv)
        with contextlib.suppress(ConnectionError, OSError):
            await write_frame(session.writer, body)

    def _refuse_mac(self, session: _Session, msg: Message) -> None:
        """Not acted on: answered A0 (MAC'd if the session has a key), counted, logged masked."""
        self.stats["mac_failures"] += 1
        pan = msg.text(2)
        log.warning("MAC failure: MTI %s STAN %s RRN %s PAN %s %s; answered %s, not acted on", msg.mti, msg.text(11),
                    msg.text(37) or "-", mask_pan(pan) if pan else "-",
                    "no MAC" if 128 not in msg else ("no key (not signed on)" if session.keys is None else "MAC does not verify"),
                    h2h.MAC_FAILURE)  # fmt: skip
        fields: dict[int, Any] = {n: msg[n] for n in (3, 4, 7, 11, 32, 37, 41, 42, 49, 70) if n in msg}
        fields[39] = h2h.MAC_FAILURE
        if msg.mti != "0800":
            fields[100] = self.config.network_id
        self._spawn(self._send(session, msg, Message(h2h.reply_mti(msg.mti), dict(sorted(fields.items())))))

    def _on_response(self, session: _Session, msg: Message) -> None:
        """A response from the acquirer: the 0810 to a key change the network pushed."""
        loop = asyncio.get_running_loop()
        if session.keys is None or not session.keys.verify(msg, loop.time()):
            self.stats["mac_failures"] += 1
            log.warning("MAC failure on a %s response (STAN %s); ignored", msg.mti, msg.text(11))
            return
        if msg.mti == "0810" and msg.text(70) == h2h.KEY_CHANGE:
            self.stats["key_changes_confirmed" if msg.text(39) == "00" else "key_changes_refused"] += 1

    # ------------------------------------------------------------------ the host-to-host port
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.faults.down:
            writer.close()
            return
        self.stats["connections"] += 1
        self._writers.add(writer)
        session = _Session(writer)
        self._sessions.add(session)
        loop = asyncio.get_running_loop()
        try:
            while True:
                body = await read_frame(reader)
                if body is None:
                    break
                try:
                    msg = h2h.decode(body)
                except CodecError as e:
                    log.warning("undecodable host-to-host message: %s", e)
                    self.stats["undecodable"] += 1
                    continue
                if msg.mti[2] in "13":  # a response: to a key change the network pushed
                    self._on_response(session, msg)
                    continue
                if h2h.needs_mac(msg) and (session.keys is None or not session.keys.verify(msg, loop.time())):
                    self._refuse_mac(session, msg)
                    continue
                if msg.mti == "0800" and msg.text(70) == h2h.KEY_CHANGE:
                    self._spawn(self._key_change_asked(session, msg))
                    continue
                reply = self._answer(msg)
                if reply is None:
                    continue
                if msg.mti == "0800" and msg.text(70) == h2h.SIGN_ON and reply.text(39) == "00":
                    # The session's MAC key, under the ZMK after the zone PIN key (U2).
                    mak = new_mak(secrets.token_bytes)
                    session.keys = SessionKeys(mak, loop.time())
                    reply = reply.with_fields({48: reply.text(48) + wrap(self._zmk, mak)})
                    self.stats["sign_ons"] += 1
                self._spawn(self._send(session, msg, reply))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            self._sessions.discard(session)
            writer.close()

    async def _key_change_asked(self, session: _Session, msg: Message) -> None:
        """The acquirer asks for a new key: the 0810 carries it (MAC'd under the old key, which it replaces)."""
        mak = new_mak(secrets.token_bytes)
        reply = Message("0810", {7: msg.text(7), 11: msg.text(11), 39: "00", 48: wrap(self._zmk, mak),
                                 70: h2h.KEY_CHANGE})  # fmt: skip
        self.stats["key_changes_asked"] += 1
        await self._send(session, msg, reply, new_key=mak)

    def _answer(self, msg: Message) -> Message | None:
        now = datetime.now(UTC)
        try:
            with self.db.unit_of_work() as store:
                issuer = BuiltinIssuer(store, self._zpk, self.config.timezone)
                reply = answer(msg, SqlRecords(store.conn, self.db.keyring), issuer, now,
                               network_id=self.config.network_id, zpk_under_zmk=self._zpk_under_zmk,
                               tz=self.config.timezone)  # fmt: skip
        except Exception:  # noqa: BLE001 - a failing request gets no reply (the acquirer times out)
            log.exception("request failed; no reply")
            self.stats["errors"] += 1
            return None
        self.stats[f"answered_{msg.mti}"] += 1
        return reply

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, session: _Session, request: Message, reply: Message, new_key: bytes | None = None) -> None:
        writer = session.writer
        f, rng = self.faults, self.rng
        network_mgmt = request.mti == "0800"
        if f.slow and not network_mgmt:
            await asyncio.sleep(rng.uniform(0, f.slow))
        if not network_mgmt and f.drop and rng.random() < f.drop:
            self.stats["dropped"] += 1
            return
        if not network_mgmt and f.late and rng.random() < f.late:
            self.stats["late"] += 1
            await asyncio.sleep(f.late_by)
        copies = 2 if (not network_mgmt and f.duplicate and rng.random() < f.duplicate) else 1
        if copies == 2:
            self.stats["duplicated"] += 1
        # MAC'd now, as it is written: the key that signs it is the one in force at its place on the wire.
        keys = session.keys
        body = keys.sign(reply) if keys is not None and h2h.needs_mac(reply) else h2h.encode(reply)
        if new_key is not None and keys is not None:
            keys.rotate(new_key, asyncio.get_running_loop().time(), self.config.key_grace)
            log.info("MAC key changed at the acquirer's request (check value %s)", keys.kcv)
        for _ in range(copies):
            if writer.is_closing():
                return
            try:
                await write_frame(writer, body)
            except ConnectionError:
                return

    # ------------------------------------------------------------------ the control port
    async def _serve_control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                writer.write((self.control(line.decode("utf-8", "replace").strip()) + "\n").encode())
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    def control(self, command: str) -> str:
        """One control command → one line of JSON (``{"ok": ...}`` or ``{"error": ...}``)."""
        words = command.split()
        try:
            if words[:1] == ["fault"] and len(words) == 3:
                self.set_fault(words[1], words[2])
            elif words == ["calm"]:
                self.calm()
            elif words == ["rekey"]:
                n = self.rekey()
                return json.dumps({"ok": True, "rekeyed": n, "stats": dict(self.stats)})
            elif words != ["stats"]:
                raise ValueError("commands: fault NAME VALUE | calm | rekey | stats")
        except ValueError as e:
            return json.dumps({"error": str(e)})
        keyed = sum(1 for x in self._sessions if x.keys is not None)
        return json.dumps({"ok": True, "faults": asdict(self.faults), "stats": dict(self.stats), "keyed_connections": keyed})
