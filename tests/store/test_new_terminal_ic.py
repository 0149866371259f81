"""A terminal added with ``posgate admin terminal add`` holds no CA public keys or IC parameters
yet: it is flagged to download both, so the host's first reply to it asks for them in the header
(requirement 4, then 5 once the keys are in; docs/dialect.md 3.12). The demo's terminals are not
flagged (they fetch the lists at their first sign-on)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from pair import harness
from pair.harness import MART, PairTerminal
from posgate.cli import app
from posgate.store import schema as s
from posgate.store.database import Database
from posgate.store.demo import provision_demo
from store.test_sealed_replies import SqlWorld

NEW_TID = "10000009"
TMK = "159D86C7C1F779EA29F77A6858E0DA2A"


def _requirement(r: harness.Result) -> str:
    return f"{r.host.header[2] & 0x0F}"


def _flags(db: Database, tid: str) -> tuple[bool, bool]:
    with db.engine.connect() as conn:
        row = conn.execute(select(s.terminals.c.capk_pending, s.terminals.c.aid_pending)
                           .where(s.terminals.c.terminal_id == tid)).one()  # fmt: skip
    return bool(row[0]), bool(row[1])


def test_a_new_terminal_is_asked_to_download_ic_keys_and_parameters(
    db_url: str, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    provision_demo(db.engine, db.keyring)
    r = CliRunner().invoke(app, ["admin", "terminal", "add", NEW_TID, "--merchant", MART, "--tmk", TMK,
                                 "--serial", "NEW00009", "--db", db_url])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert _flags(db, NEW_TID) == (True, True)
    assert _flags(db, "10000001") == (False, False)  # the demo terminals are not flagged

    world = SqlWorld(db)
    monkeypatch.setitem(harness.TERMINALS, NEW_TID, (MART, bytes.fromhex(TMK), "NEW00009"))
    new = PairTerminal(world, NEW_TID)  # type: ignore[arg-type]
    signed = new.sign_on()
    assert signed.code == "00" and _requirement(signed) == "4"  # CA public keys first
    demo = PairTerminal(world, "10000001")  # type: ignore[arg-type]
    signed = demo.sign_on()
    assert signed.code == "00" and _requirement(signed) == "0"
    with db.engine.begin() as conn:  # as when its CA public key download has ended (371)
        conn.execute(update(s.terminals).where(s.terminals.c.terminal_id == NEW_TID).values(capk_pending=False))
    assert _requirement(new.sign_on()) == "5"  # then the IC parameters
