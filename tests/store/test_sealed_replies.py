"""The stored reply (``transactions.reply``) is card data — it echoes fields 2 and 14 in BCD — and
is kept sealed under the master key (docs/decisions.md S1): on SQLite and PostgreSQL, written
by the real pipeline on the SQL store, replayed byte for byte to a retransmission (D8, R2), and
sealed by migration 0004 when written in clear by an older host."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select, text, update

from pair.harness import CARDS, HEADER, Clock, PairTerminal
from posgate.crypto import generate_working_keys
from posgate.dialect.cup import CODEC
from posgate.host.issuer import BuiltinIssuer
from posgate.host.pipeline import HostReply, process
from posgate.host.ports import Env
from posgate.store import schema as s
from posgate.store.database import Database
from posgate.store.demo import provision_demo
from posgate.store.keyring import KeyringError, load_keyring
from posgate.store.migrate import alembic_config, current_revisions, head_revisions, upgrade

BEFORE = "0003_drop_terminal_batch_index"


class SqlWorld:
    """The pair harness's host side on the SQL store: one unit of work per request, as the
    server's commit worker does."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.clock = Clock()
        self.env = Env(now=self.clock, randbytes=random.Random(7).randbytes)
        self.zone_key = generate_working_keys("003", random.Random(8).randbytes).pik

    def process(self, body: bytes, header: bytes = HEADER) -> HostReply:
        with self.db.unit_of_work() as store:
            return process(header, body, store, BuiltinIssuer(store, self.zone_key, self.env.timezone), self.env)


def _bcd(pan: str) -> bytes:
    return bytes.fromhex(pan[: len(pan) - len(pan) % 2])


def _stored_replies(db: Database) -> list[bytes]:
    with db.engine.connect() as conn:
        return [bytes(r) for r in conn.execute(select(s.transactions.c.reply).where(s.transactions.c.reply.is_not(None))).scalars()]


@pytest.fixture
def world(db: Database) -> SqlWorld:
    provision_demo(db.engine, db.keyring)
    return SqlWorld(db)


def test_the_stored_reply_is_sealed_and_replayed_byte_for_byte(world: SqlWorld) -> None:
    t = PairTerminal(world)  # type: ignore[arg-type]
    assert t.sign_on().code == "00"
    pan = CARDS["credit"][0]
    r = t.sale("credit", 1_000, manual=True)  # keyed: fields 2 and 14, echoed in the reply
    assert r.code == "00" and r.reply is not None and r.reply.text(2) == pan  # field 2 is echoed
    stored = _stored_replies(world.db)
    assert stored and all(_bcd(pan) not in blob and pan.encode() not in blob for blob in stored)
    assert world.db.keyring.open_message(stored[-1]) == r.host.header + (r.host.body or b"")
    again = world.process(CODEC.encode(r.request, mac=t.mac))
    assert (again.header, again.body) == (r.host.header, r.host.body)  # D8: the stored reply, byte for byte


def _as_written_by_0003(db: Database) -> list[bytes]:
    """Turn the database back into what a host before 0004 left: clear replies, revision 0003.
    The revisions after 0004 are downgraded properly first (their columns would exist twice)."""
    cfg = alembic_config()
    with db.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004_seal_stored_replies")
        conn.commit()
    clear = []
    with db.engine.begin() as conn:
        for i, blob in conn.execute(select(s.transactions.c.id, s.transactions.c.reply).where(s.transactions.c.reply.is_not(None))).all():
            raw = db.keyring.open_message(bytes(blob))
            clear.append(raw)
            conn.execute(update(s.transactions).where(s.transactions.c.id == i).values(reply=raw))
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": BEFORE})
    return clear


def test_migration_0004_seals_replies_written_in_clear(world: SqlWorld) -> None:
    t = PairTerminal(world)  # type: ignore[arg-type]
    t.sign_on()
    pan = CARDS["ok"][0]
    r = t.sale("ok", 2_000, manual=True)
    clear = _as_written_by_0003(world.db)
    assert any(_bcd(pan) in raw for raw in clear)  # what an older host stored
    upgrade(world.db.engine, keyring=world.db.keyring)
    assert current_revisions(world.db.engine) == head_revisions()
    stored = _stored_replies(world.db)
    assert len(stored) == len(clear) and all(_bcd(pan) not in blob for blob in stored)
    assert sorted(world.db.keyring.open_message(b) for b in stored) == sorted(clear)
    again = world.process(CODEC.encode(r.request, mac=t.mac))
    assert (again.header, again.body) == (r.host.header, r.host.body)


def test_migration_0004_without_the_right_key_changes_nothing(world: SqlWorld, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    t = PairTerminal(world)  # type: ignore[arg-type]
    t.sign_on()
    t.sale("ok", 2_000, manual=True)
    clear = _as_written_by_0003(world.db)
    monkeypatch.setenv("POSGATE_MASTER_KEY_FILE", str(tmp_path / "missing.key"))
    with pytest.raises(KeyringError, match="master key"):
        upgrade(world.db.engine)
    other = load_keyring(tmp_path / "other.key")
    with pytest.raises(KeyringError, match="not the one this database was written with"):
        upgrade(world.db.engine, keyring=other)
    assert current_revisions(world.db.engine) == (BEFORE,)
    assert sorted(_stored_replies(world.db)) == sorted(clear)
