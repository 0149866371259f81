"""The terminal's durable journal: one SQLite file per terminal under a state directory.

Theory of operation: the core (:mod:`posgate.terminal.machine`) works on immutable
:class:`~posgate.terminal.state.TerminalState` values; the shell calls :meth:`Journal.save`
with every new state **before** it sends the request that state goes with, so the reversal
record of section 8 is on disk before the request leaves and a power loss between send and
reply leads to the reversal after restart (:meth:`Journal.load`). ``save`` compares the state
with the one it last wrote and writes only what changed, in one short transaction (WAL,
``synchronous=FULL``: a committed save survives a power cut).

What is kept: the configuration (TID, MID, device serial, key scheme, the TMK — device key
material, stored but never printed), the working keys (wrapped under the TMK, as the 0810
carried them), batch, STAN, sign-on date, owed make-up sign-on, clock offset, parameters
(3.12), the pending reversal (the 0400 without MAC: no track, no PIN block — section 8 removes
them), the transaction log of every batch (a queued advice with its request as first sent:
fields 2/14, never a track or a PIN block) (settled ones are kept for reprint and the
journal listing), e-signatures waiting for upload, the event register (every sign-on attempt
and its cause, reversal outcomes, settlements) and the operators (argon2 hashes, lockout).
Track data, PINs and PIN blocks are never written: they exist only in the in-flight flow.

Card data at rest (PCI DSS 3.4, docs/decisions.md S1): what the terminal must keep of a card —
the PAN and expiry (void, refund, batch upload, offline advices, reprint), field 55 as sent
(its tags 5A/57/5F24 may carry them) and a queued advice's request (fields 2 and 14) — is
sealed with AES-256-GCM under the journal key, 32 random bytes in ``terminal-<TID>.key`` beside
the journal (created mode 0600). A row keeps in clear only the masked PAN and what is not card
data; the pending reversal's 0400 is sealed whole. The associated data names the row
(``txn/<batch>/<STAN>``, ``reversal``), so a sealed value cannot be moved to another row. A copy
of the journal without its key file reveals no card number. ``secure_delete`` is on, so the
space a rewritten row frees is zeroed rather than left readable.

A journal of schema 1 (card data in clear) is migrated when it is opened: its rows are sealed
in one transaction, then the WAL is truncated and the file vacuumed, so no clear copy stays in
the file's free pages or in the WAL. A sealed journal whose key file is missing or wrong is
refused (:class:`JournalKeyError`) with a message saying so; nothing is changed.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from posgate.crypto import CryptoError, WorkingKeys, scheme_cipher
from posgate.dialect.cup import CODEC
from posgate.keyfile import create_key_file
from posgate.terminal.state import Event, PendingReversal, TerminalConfig, TerminalState, TxnEntry

SCHEMA_VERSION = "2"  # 2: card data sealed under the journal key; 1: in clear (migrated on open)
KEY_LEN = 32
_BLOB_VERSION = b"\x01"
_NONCE_LEN = 12
DEFAULT_LOCKOUT_MINUTES = 10
MAX_FAILED_SIGNINS = 3

DEMO_OPERATORS = (
    ("99", "sysadmin", "12345678"),
    ("00", "supervisor", "123456"),
    ("01", "operator", "0000"),
    ("02", "operator", "0000"),
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS working_keys (id INTEGER PRIMARY KEY CHECK (id = 1), scheme TEXT NOT NULL,
    pik BLOB NOT NULL, mak BLOB NOT NULL, tdk BLOB);
CREATE TABLE IF NOT EXISTS reversal (id INTEGER PRIMARY KEY CHECK (id = 1), body BLOB NOT NULL, operation TEXT NOT NULL,
    stan TEXT NOT NULL, amount INTEGER NOT NULL, category TEXT NOT NULL, attempts INTEGER NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS txns (batch TEXT NOT NULL, stan TEXT NOT NULL, settled INTEGER NOT NULL DEFAULT 0,
    operation TEXT NOT NULL, status TEXT NOT NULL, at TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (batch, stan));
CREATE TABLE IF NOT EXISTS signatures (stan TEXT PRIMARY KEY, jbig BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, kind TEXT NOT NULL,
    cause TEXT NOT NULL, result TEXT NOT NULL, detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS operators (code TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL,
    failed INTEGER NOT NULL DEFAULT 0, locked_until TEXT);
"""

_SCALARS = ("batch", "stan", "signed_on_date", "sign_on_owed", "clock_offset", "key_scheme")


class JournalKeyError(RuntimeError):
    """The journal key file is missing, unreadable, malformed or not this journal's."""


class _Sealer:
    """AES-256-GCM under the journal key. A blob is ``version (1) || nonce (12) || ciphertext
    || tag (16)``; ``label`` (the row it belongs to) is the associated data. No key in a repr."""

    __slots__ = ("_aead", "path")

    def __init__(self, key: bytes, path: Path) -> None:
        self._aead = AESGCM(key)
        self.path = path

    def __repr__(self) -> str:
        return f"_Sealer(path={str(self.path)!r})"

    def seal(self, data: bytes, label: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE_LEN)
        return _BLOB_VERSION + nonce + self._aead.encrypt(nonce, data, label.encode())

    def open(self, blob: bytes, label: str) -> bytes:
        blob = bytes(blob)
        if len(blob) < 1 + _NONCE_LEN + 16 or blob[:1] != _BLOB_VERSION:
            raise JournalKeyError(f"a sealed journal value ({label}) is damaged")
        try:
            return self._aead.decrypt(blob[1 : 1 + _NONCE_LEN], blob[1 + _NONCE_LEN :], label.encode())
        except InvalidTag:
            raise JournalKeyError(
                f"the journal's card data cannot be decrypted with {self.path} "
                "(the key file of another terminal or state directory, or the journal was altered)"
            ) from None


def key_path(directory: Path, terminal_id: str) -> Path:
    return Path(directory) / f"terminal-{terminal_id}.key"


def _load_key(path: Path, *, create: bool) -> _Sealer:
    """Read the journal key (creating it, mode 0600, when absent and ``create``)."""
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        if not create:
            raise JournalKeyError(
                f"the journal key file {path} is missing: the card data in this terminal's journal cannot be "
                "read without it (restore it from where the state directory was backed up)"
            ) from None
        created = create_key_file(path, KEY_LEN)
        if created is None:  # another process created it first: use theirs
            return _load_key(path, create=False)
        key = created
    except PermissionError:
        raise JournalKeyError(f"the journal key file {path} is not readable by this user") from None
    if len(key) != KEY_LEN:
        raise JournalKeyError(f"the journal key file {path} must hold exactly {KEY_LEN} bytes (it holds {len(key)})")
    return _Sealer(key, path)


class OperatorError(ValueError):
    """Operator sign-in or management refused; the message is what the cashier sees."""


@dataclass(frozen=True, slots=True)
class Operator:
    code: str
    role: str  # sysadmin | supervisor | operator
    failed: int
    locked_until: str | None


def _hasher() -> Any:
    from argon2 import PasswordHasher

    # OWASP's minimum argon2id profile: cheap enough for a terminal, still memory-hard.
    return PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


def _config_json(c: TerminalConfig) -> str:
    d = asdict(c)
    d["tmk"] = c.tmk.hex().upper()
    return json.dumps(d, ensure_ascii=False, sort_keys=True)


def _config_from(text: str) -> TerminalConfig:
    d = json.loads(text)
    d["tmk"] = bytes.fromhex(d["tmk"])
    known = {f.name for f in fields(TerminalConfig)}
    return TerminalConfig(**{k: v for k, v in d.items() if k in known})


# The fields of a TxnEntry that are card data: sealed, never written in clear.
_CARD_FIELDS = ("pan", "expiry", "icc", "request")


def _txn_label(batch: str, stan: str) -> str:
    return f"txn/{batch}/{stan}"


def _entry_json(t: TxnEntry, sealer: _Sealer) -> str:
    d = asdict(t)
    for k in _CARD_FIELDS:
        del d[k]
    card = {"pan": t.pan, "expiry": t.expiry, "icc": t.icc.hex(), "request": t.request.hex()}
    d["pan_masked"] = t.pan_masked if t.pan else ""
    d["sealed"] = sealer.seal(json.dumps(card, sort_keys=True).encode(), _txn_label(t.batch, t.stan)).hex()
    return json.dumps(d, ensure_ascii=False, sort_keys=True)


def _entry_from(text: str, sealer: _Sealer | None) -> TxnEntry:
    d = json.loads(text)
    sealed = d.pop("sealed", None)
    if sealed is not None:
        if sealer is None:  # pragma: no cover - a schema-2 journal is always opened with its key
            raise JournalKeyError("the journal's card data is sealed and no key was loaded")
        d.update(json.loads(sealer.open(bytes.fromhex(sealed), _txn_label(d["batch"], d["stan"]))))
    d["icc"] = bytes.fromhex(d.get("icc", ""))  # schema 1 (in clear): read as it is, to migrate
    d["request"] = bytes.fromhex(d.get("request", ""))
    known = {f.name for f in fields(TxnEntry)}
    return TxnEntry(**{k: v for k, v in d.items() if k in known})


def journal_path(directory: Path, terminal_id: str) -> Path:
    return Path(directory) / f"terminal-{terminal_id}.sqlite"


class Journal:
    """One terminal's journal. Not thread-safe: use it from one thread at a time (which thread
    may change); one process writes it at a time."""

    def __init__(self, path: Path, conn: sqlite3.Connection, created: bool, sealer: _Sealer | None = None) -> None:
        self.path = path
        self.conn = conn
        self.created = created  # True when this open made the file (first use of the state dir)
        self._sealer = sealer  # set by open(); card data is never written without it
        self._last: TerminalState | None = None
        self._events_written: tuple[Event, ...] = ()

    # ------------------------------------------------------------------ open / close
    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        terminal_id: str | None = None,
        config: TerminalConfig | None = None,
    ) -> Journal:
        """Open (or create) the journal of ``terminal_id`` (or ``config.terminal_id``) in
        ``directory``. Without either, the directory's only journal is opened, or a new one
        for ``TerminalConfig()`` (the demo terminal)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        tid = terminal_id or (config.terminal_id if config else None)
        if tid is None:
            found = sorted(d.glob("terminal-*.sqlite"))
            tid = (
                found[0].name[len("terminal-") : -len(".sqlite")]
                if len(found) == 1
                else TerminalConfig().terminal_id
            )
        path = journal_path(d, tid)
        created = not path.exists()
        # One user at a time, but not always the same thread (run_sync may hop to a worker).
        conn = sqlite3.connect(path, isolation_level=None, timeout=10, check_same_thread=False)
        try:
            if created:
                os.chmod(path, 0o600)
            conn.execute("PRAGMA secure_delete=ON")  # freed space is zeroed, not left readable
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
            j = cls(path, conn, created)
            fresh = created or j._meta("config") is None
            schema = SCHEMA_VERSION if fresh else (j._meta("schema") or "1")
            if schema not in ("1", SCHEMA_VERSION):
                raise JournalKeyError(f"{path} has journal schema {schema}, newer than this posgate ({SCHEMA_VERSION})")
            # A new or clear (schema 1) journal gets a key; a sealed one must find its own.
            j._sealer = _load_key(key_path(d, tid), create=schema == "1" or fresh)
            if fresh:
                with j._tx():
                    j._set_meta("schema", SCHEMA_VERSION)
                    j._set_meta("config", _config_json(config or TerminalConfig(terminal_id=tid)))
            elif schema == "1":
                j._seal_clear_rows()
            if j._meta("scrub_owed"):
                j._scrub()
        except BaseException:
            conn.close()
            raise
        return j

    def _seal_clear_rows(self) -> None:
        """Schema 1 → 2: seal the card data of every transaction and the pending reversal, then
        truncate the WAL and vacuum so that no clear copy is left in the WAL or in free pages."""
        sealer = self._sealer
        assert sealer is not None
        with self._tx() as c:
            rows = c.execute("SELECT rowid, data FROM txns").fetchall()
            for rowid, data in rows:
                c.execute("UPDATE txns SET data = ? WHERE rowid = ?", (_entry_json(_entry_from(data, None), sealer), rowid))
            row = c.execute("SELECT body FROM reversal WHERE id = 1").fetchone()
            if row is not None:
                c.execute("UPDATE reversal SET body = ? WHERE id = 1", (sealer.seal(bytes(row[0]), "reversal"),))
            self._set_meta("schema", SCHEMA_VERSION)
            self._set_meta("scrub_owed", "1")  # until _scrub succeeds, at this open or a later one

    def _scrub(self) -> None:
        """Rewrite the file without the clear copies that the seal left in free pages and in the
        WAL (VACUUM runs outside a transaction, so it is owed by a flag until it has run)."""
        c = self.conn
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        c.execute("VACUUM")
        with self._tx():
            c.execute("DELETE FROM meta WHERE key = 'scrub_owed'")
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @property
    def _seal(self) -> _Sealer:
        s = self._sealer
        if s is None:
            raise JournalKeyError("this journal was not opened with Journal.open (no key loaded)")
        return s

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")

    def _meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # ------------------------------------------------------------------ config
    @property
    def config(self) -> TerminalConfig:
        text = self._meta("config")
        return _config_from(text) if text else TerminalConfig()

    def set_config(self, config: TerminalConfig) -> None:
        with self._tx():
            self._set_meta("config", _config_json(config))
        if self._last is not None:
            self._last = replace(self._last, config=config)

    def get(self, key: str, default: str = "") -> str:
        v = self._meta("x." + key)
        return default if v is None else v

    def put(self, key: str, value: str) -> None:
        with self._tx():
            self._set_meta("x." + key, value)

    def next_atc(self, pan: str) -> int:
        """The next application transaction counter (ATC) of a simulated chip card, persisted so
        that it goes up across runs as a real card's does (the issuer declines an ATC it has
        seen). Kept in one sealed value: the counters are keyed by PAN, which is card data."""
        label = "card_atc"
        raw = self._meta(label)
        counters: dict[str, int] = json.loads(self._seal.open(bytes.fromhex(raw), label)) if raw else {}
        n = counters.get(pan, 0) + 1
        counters[pan] = n
        with self._tx():
            self._set_meta(label, self._seal.seal(json.dumps(counters).encode(), label).hex())
        return n

    # ------------------------------------------------------------------ state
    def load(self) -> TerminalState:
        """The terminal as last saved (no flow in progress: an interrupted request's
        reversal, if any, is pending)."""
        c = self.conn
        config = self.config
        kw: dict[str, Any] = {"config": config}
        for k in _SCALARS:
            v = self._meta("s." + k)
            if v is not None:
                kw[k] = int(v) if k in ("stan", "clock_offset") else v
        params = self._meta("s.params")
        kw["params"] = json.loads(params) if params else {}
        ic = self._meta("s.ic")
        kw["ic"] = json.loads(ic) if ic else {}
        last = self._meta("s.last_settlement")
        kw["last_settlement"] = json.loads(last) if last else {}
        row = c.execute("SELECT scheme, pik, mak, tdk FROM working_keys WHERE id = 1").fetchone()
        if row is not None:
            tmk = config.tmk
            try:  # the keys are kept under the TMK with their own cipher (SM4 for scheme 006)
                cipher = scheme_cipher(row[0])
            except CryptoError:
                cipher = scheme_cipher("004")
            kw["keys"] = WorkingKeys(
                pik=cipher.decrypt(tmk, row[1]),
                mak=cipher.decrypt(tmk, row[2]),
                tdk=cipher.decrypt(tmk, row[3]) if row[3] else None,
                cipher=cipher,
            )
        row = c.execute(
            "SELECT body, operation, stan, amount, category, attempts, created_at FROM reversal WHERE id = 1"
        ).fetchone()
        if row is not None:
            kw["reversal"] = PendingReversal(
                CODEC.decode(self._seal.open(row[0], "reversal")), row[1], row[2], row[3], row[4], row[5], row[6]
            )
        sealer = self._seal
        kw["txns"] = tuple(
            _entry_from(r[0], sealer) for r in c.execute("SELECT data FROM txns WHERE settled = 0 ORDER BY rowid")
        )
        kw["signatures"] = {
            r[0]: bytes(r[1]) for r in c.execute("SELECT stan, jbig FROM signatures ORDER BY rowid")
        }
        state = TerminalState(**kw)
        self._last = state
        self._events_written = ()
        return state

    def save(self, state: TerminalState) -> TerminalState:
        """Persist what changed since the last save; returns ``state`` with its events drained."""
        last = self._last
        with self._tx() as c:
            if last is None or last.config != state.config:
                self._set_meta("config", _config_json(state.config))
            for k in _SCALARS:
                if last is None or getattr(last, k) != getattr(state, k):
                    self._set_meta("s." + k, str(getattr(state, k)))
            if last is None or last.params != state.params:
                self._set_meta("s.params", json.dumps(dict(state.params), ensure_ascii=False))
            if last is None or last.ic != state.ic:  # IC public keys and parameters: public data
                self._set_meta("s.ic", json.dumps(dict(state.ic), sort_keys=True))
            if last is None or last.last_settlement != state.last_settlement:
                self._set_meta(
                    "s.last_settlement", json.dumps(dict(state.last_settlement), ensure_ascii=False)
                )
            if last is None or last.keys is not state.keys:
                c.execute("DELETE FROM working_keys")
                wk = state.keys
                if wk is not None:
                    tmk = state.config.tmk
                    enc = wk.cipher.encrypt
                    c.execute(
                        "INSERT INTO working_keys(id, scheme, pik, mak, tdk) VALUES (1, ?, ?, ?, ?)",
                        (
                            state.key_scheme,
                            enc(tmk, wk.pik),
                            enc(tmk, wk.mak),
                            enc(tmk, wk.tdk) if wk.tdk else None,
                        ),
                    )
            if last is None or last.reversal != state.reversal:
                c.execute("DELETE FROM reversal")
                r = state.reversal
                if r is not None:
                    c.execute(
                        "INSERT INTO reversal(id, body, operation, stan, amount, category, attempts, created_at) VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            self._seal.seal(CODEC.encode(r.message), "reversal"),
                            r.operation,
                            r.stan,
                            r.amount,
                            r.category,
                            r.attempts,
                            r.created_at,
                        ),
                    )
            if last is None or last.txns is not state.txns:
                old = {(t.batch, t.stan): t for t in (last.txns if last else ())}
                new_keys = set()
                for t in state.txns:
                    key = (t.batch, t.stan)
                    new_keys.add(key)
                    if old.get(key) != t:
                        c.execute(
                            "INSERT INTO txns(batch, stan, settled, operation, status, at, data) VALUES (?, ?, 0, ?, ?, ?, ?) "
                            "ON CONFLICT(batch, stan) DO UPDATE SET settled = 0, operation = excluded.operation, "
                            "status = excluded.status, at = excluded.at, data = excluded.data",
                            (t.batch, t.stan, t.operation, t.status, t.at, _entry_json(t, self._seal)),
                        )
                for key in old.keys() - new_keys:
                    # Settled. A signature that never went up stays "unsigned" for good (D13).
                    t = old[key]
                    if t.signature == "pending":
                        t = replace(t, signature="unsigned")
                    c.execute(
                        "UPDATE txns SET settled = 1, data = ? WHERE batch = ? AND stan = ?",
                        (_entry_json(t, self._seal), *key),
                    )
            if last is None or last.signatures is not state.signatures:
                before = dict(last.signatures) if last else {}
                for stan, jbig in state.signatures.items():
                    if before.get(stan) != jbig:
                        c.execute("INSERT OR REPLACE INTO signatures(stan, jbig) VALUES (?, ?)", (stan, jbig))
                for stan in before.keys() - state.signatures.keys():
                    c.execute("DELETE FROM signatures WHERE stan = ?", (stan,))
            w = self._events_written
            same = len(state.events) >= len(w) and all(a is b for a, b in zip(state.events, w, strict=False))
            new_events = state.events[len(w) :] if w and same else state.events
            for e in new_events:
                c.execute(
                    "INSERT INTO events(at, kind, cause, result, detail) VALUES (?, ?, ?, ?, ?)",
                    (e.at, e.kind, e.cause, e.result, e.detail),
                )
        # A caller that keeps using ``state`` (not the drained copy) must not get its events
        # written twice: remember the very Event objects written.
        self._events_written = state.events
        self._last = state
        return state.drained()

    # ------------------------------------------------------------------ queries
    def events(self, kind: str | None = None, limit: int = 200) -> list[Event]:
        q = "SELECT at, kind, cause, result, detail FROM events"
        args: tuple[Any, ...] = ()
        if kind:
            q += " WHERE kind = ?"
            args = (kind,)
        rows = self.conn.execute(q + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [Event(*r) for r in reversed(rows)]

    def transactions(
        self, *, include_settled: bool = False, batch: str | None = None
    ) -> list[tuple[TxnEntry, bool]]:
        q = "SELECT data, settled FROM txns"
        cond, args = [], []
        if not include_settled:
            cond.append("settled = 0")
        if batch:
            cond.append("batch = ?")
            args.append(batch)
        if cond:
            q += " WHERE " + " AND ".join(cond)
        sealer = self._seal
        return [(_entry_from(r[0], sealer), bool(r[1])) for r in self.conn.execute(q + " ORDER BY rowid", args)]

    def find(self, stan: str) -> TxnEntry | None:
        row = self.conn.execute(
            "SELECT data FROM txns WHERE stan = ? ORDER BY rowid DESC LIMIT 1", (stan.zfill(6),)
        ).fetchone()
        return _entry_from(row[0], self._seal) if row else None

    # ------------------------------------------------------------------ operators
    def seed_demo_operators(self) -> None:
        """The demo operators of docs/demo-data.md (99/00/01/02). Only for a fresh state dir."""
        for code, role, password in DEMO_OPERATORS:
            if self.operator(code) is None:
                self.add_operator(code, role, password)

    def operator(self, code: str) -> Operator | None:
        row = self.conn.execute(
            "SELECT code, role, failed, locked_until FROM operators WHERE code = ?", (code,)
        ).fetchone()
        return Operator(*row) if row else None

    def operators(self) -> list[Operator]:
        return [
            Operator(*r)
            for r in self.conn.execute("SELECT code, role, failed, locked_until FROM operators ORDER BY code")
        ]

    def add_operator(self, code: str, role: str, password: str) -> None:
        if not (len(code) == 2 and code.isdigit()):
            raise OperatorError("操作员号为两位数字 / the operator code is two digits")
        if role not in ("sysadmin", "supervisor", "operator"):
            raise OperatorError("role must be sysadmin, supervisor or operator")
        if len(password) < 4 or not password.isdigit():
            raise OperatorError("密码至少4位数字 / the password must be at least 4 digits")
        if self.operator(code) is not None:
            raise OperatorError(f"操作员 {code} 已存在 / operator {code} exists")
        with self._tx() as c:
            c.execute(
                "INSERT INTO operators(code, role, hash) VALUES (?, ?, ?)",
                (code, role, _hasher().hash(password)),
            )

    def set_password(self, code: str, password: str) -> None:
        if len(password) < 4 or not password.isdigit():
            raise OperatorError("密码至少4位数字 / the password must be at least 4 digits")
        if self.operator(code) is None:
            raise OperatorError(f"无此操作员 / no operator {code}")
        with self._tx() as c:
            c.execute(
                "UPDATE operators SET hash = ?, failed = 0, locked_until = NULL WHERE code = ?",
                (_hasher().hash(password), code),
            )

    def local_time(self, stamp: str) -> str:
        """A stored (UTC) time as the terminal's wall clock — its configured zone (the demo
        acquirer's Asia/Shanghai by default), named, so a cashier never has to convert."""
        from zoneinfo import ZoneInfo

        zone = self.config.timezone
        at = datetime.fromisoformat(stamp)
        return f"{at.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M:%S} ({zone})"

    def verify_operator(
        self, code: str, password: str, now: datetime, *, role: str | None = None
    ) -> Operator:
        """Check a password; 3 failures in a row lock the operator for N minutes (x.lockout_minutes)."""
        from argon2.exceptions import VerificationError

        op = self.operator(code)
        if op is None:
            raise OperatorError(f"无此操作员 / no operator {code}")
        if role is not None and op.role != role:
            raise OperatorError(
                f"操作员 {code} 不是{'主管' if role == 'supervisor' else role} / operator {code} is not a {role}"
            )
        if op.locked_until and datetime.fromisoformat(op.locked_until) > now:
            until = self.local_time(op.locked_until)
            raise OperatorError(f"操作员已锁定，请于 {until} 后重试 / operator {code} is locked until {until}")
        row = self.conn.execute("SELECT hash FROM operators WHERE code = ?", (code,)).fetchone()
        try:
            _hasher().verify(row[0], password)
        except VerificationError:
            failed = op.failed + 1
            locked = None
            if failed >= MAX_FAILED_SIGNINS:
                minutes = int(self.get("lockout_minutes", str(DEFAULT_LOCKOUT_MINUTES)))
                locked = (now + timedelta(minutes=minutes)).isoformat()
                failed = 0
            with self._tx() as c:
                c.execute(
                    "UPDATE operators SET failed = ?, locked_until = ? WHERE code = ?", (failed, locked, code)
                )
            if locked:
                until = self.local_time(locked)
                raise OperatorError(
                    f"密码错误次数过多，操作员已锁定至 {until} / too many wrong passwords: operator {code} locked until {until}"
                ) from None
            raise OperatorError(
                f"密码错 / wrong password for operator {code} ({MAX_FAILED_SIGNINS - failed} tries left)"
            ) from None
        if op.failed or op.locked_until:
            with self._tx() as c:
                c.execute("UPDATE operators SET failed = 0, locked_until = NULL WHERE code = ?", (code,))
        return Operator(op.code, op.role, 0, None)
