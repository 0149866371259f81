"""Chip cards on the SQL store (issue 14), SQLite and PostgreSQL: the issuer master keys are
kept sealed under the local master key, the built-in issuer verifies an ARQC with them and the
last ATC it saw survives from one unit of work to the next (a replay is declined)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from sqlalchemy import select, update

from posgate.domain.chip import DEMO_CHIP_CARDS
from posgate.host.issuer import BuiltinIssuer
from posgate.host.ports import IssuerRequest
from posgate.store import schema as s
from posgate.store.database import Database
from posgate.store.demo import provision_demo
from posgate.terminal.cards import read_card

PAN = "6225880000000000010"
NOW = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
ZONE = bytes(range(16))


def _row(db: Database) -> tuple[bytes | None, int | None]:
    with db.engine.connect() as conn:
        r = conn.execute(select(s.cards.c.icc_keys_enc, s.cards.c.icc_atc)
                         .where(s.cards.c.pan_hash == db.keyring.pan_hash(PAN))).one()  # fmt: skip
    return (bytes(r[0]) if r[0] is not None else None), r[1]


def _ask(db: Database, atc: int) -> str:
    card = read_card(PAN, "insert", amount=1_00, when=NOW, randbytes=random.Random(atc).randbytes, atc=atc)
    assert card.icc is not None
    with db.unit_of_work() as store:
        request = IssuerRequest("debit", PAN, None, 1_00, icc=card.icc.raw, pan_seq=card.seq)
        return BuiltinIssuer(store, ZONE).authorize(request, NOW).response_code


def test_demo_chip_keys_are_sealed_at_rest(db: Database) -> None:
    provision_demo(db.engine, db.keyring)
    blob, atc = _row(db)
    keys = DEMO_CHIP_CARDS[PAN].keys
    assert blob is not None and atc is None
    assert all(keys[i : i + 8] not in blob for i in range(0, 48, 8))
    assert db.keyring.decrypt_key(blob, b"icc") == keys


def test_issuer_on_sql_verifies_arqc_and_remembers_the_atc(db: Database) -> None:
    provision_demo(db.engine, db.keyring)
    assert _ask(db, 9) == "00"
    assert _row(db)[1] == 9
    assert _ask(db, 9) == "59"  # replayed in a later unit of work
    assert _ask(db, 10) == "00"


def test_demo_provisioning_gives_an_older_chip_card_its_keys(db: Database) -> None:
    provision_demo(db.engine, db.keyring)
    with db.engine.begin() as conn:  # as a database provisioned before 0007 has it
        conn.execute(update(s.cards).values(icc_keys_enc=None))
    assert _ask(db, 3) == "00"  # no keys: not checked (the legacy behaviour)
    provision_demo(db.engine, db.keyring)
    assert _row(db)[0] is not None
    assert _ask(db, 2) == "00" and _row(db)[1] == 2  # now checked, and its ATC recorded
    assert _ask(db, 2) == "59"
