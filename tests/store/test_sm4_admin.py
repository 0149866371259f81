"""SM4 (国密) terminals in the store: ``posgate admin terminal add --algorithm sm4`` and
``set-algorithm`` (check values under SM4, refusals that change nothing), the TMK and keys at
rest encrypted like every other key, the demo terminal 40000001, and migration 0005."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from posgate.cli import app
from posgate.crypto import SM4, kcv
from posgate.store import schema as s
from posgate.store.database import Database
from posgate.store.demo import provision_demo
from posgate.store.migrate import alembic_config, current_revisions, head_revisions, upgrade

MID = "898100012340009"
TMK = "0123456789ABCDEFFEDCBA9876543210"


@pytest.fixture
def cli(tmp_path):
    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'cli.db'}"

    def run(*args: str):
        return runner.invoke(app, [*args, "--db", url])

    run.url = url
    assert run("admin", "merchant", "add", MID, "--name", "测试店", "--mcc", "5411").exit_code == 0
    return run


def _row(url: str, tid: str):
    db = Database.open(url)
    try:
        with db.engine.connect() as conn:
            return conn.execute(select(s.terminals).where(s.terminals.c.terminal_id == tid)).one()
    finally:
        db.close()


def test_add_sm4_terminal_prints_the_sm4_check_value(cli):
    r = cli("admin", "terminal", "add", "40000009", "--merchant", MID, "--tmk", TMK, "--algorithm", "sm4")
    assert r.exit_code == 0, r.output
    sm4_cv = SM4.kcv(bytes.fromhex(TMK)).hex().upper()
    assert sm4_cv in r.output and TMK not in r.output and "SM4" in r.output
    row = _row(cli.url, "40000009")
    assert row.algorithm == "sm4" and row.tmk_kcv == sm4_cv
    assert bytes.fromhex(TMK) not in bytes(row.tmk_enc)  # encrypted at rest like every key
    listed = cli("admin", "terminal", "list", "--json")
    assert '"sm4"' in listed.output and TMK not in listed.output
    # A generated SM4 TMK is printed once, like a DES one.
    gen = cli("admin", "terminal", "add", "40000010", "--merchant", MID, "--algorithm", "sm4")
    assert gen.exit_code == 0 and "generated TMK" in gen.output


def test_add_refuses_bad_algorithm_and_a_triple_length_sm4_tmk(cli):
    bad = cli("admin", "terminal", "add", "40000011", "--merchant", MID, "--algorithm", "aes")
    assert bad.exit_code == 1 and "algorithm" in bad.output
    long = cli("admin", "terminal", "add", "40000012", "--merchant", MID, "--tmk", TMK + "0123456789ABCDEF",
               "--algorithm", "sm4")  # fmt: skip
    assert long.exit_code == 1 and "16 bytes" in long.output
    listed = cli("admin", "terminal", "list", "--json")
    assert "40000011" not in listed.output and "40000012" not in listed.output


def test_set_algorithm_switches_drops_the_keys_and_asks_for_a_sign_on(cli):
    assert cli("admin", "terminal", "add", "30000001", "--merchant", MID, "--tmk", TMK).exit_code == 0
    assert _row(cli.url, "30000001").tmk_kcv == kcv(bytes.fromhex(TMK)).hex().upper()
    r = cli("admin", "terminal", "set-algorithm", "30000001", "sm4")
    assert r.exit_code == 0, r.output
    row = _row(cli.url, "30000001")
    assert row.algorithm == "sm4" and row.tmk_kcv == SM4.kcv(bytes.fromhex(TMK)).hex().upper()
    assert row.resign_requested and row.mak_enc is None and row.key_scheme is None
    again = cli("admin", "terminal", "set-algorithm", "30000001", "sm4")
    assert again.exit_code == 1 and "already" in again.output
    assert cli("admin", "terminal", "set-algorithm", "30000001", "rot13").exit_code == 1
    assert cli("admin", "terminal", "set-algorithm", "39999999", "des").exit_code == 1
    back = cli("admin", "terminal", "set-algorithm", "30000001", "des")
    assert back.exit_code == 0 and _row(cli.url, "30000001").algorithm == "des"


def test_demo_provisions_the_sm4_terminal(db):
    provision_demo(db.engine, db.keyring)
    with db.unit_of_work() as store:
        t = store.terminal("40000001")
        assert t is not None
        assert (t.merchant_id, t.tmk.hex().upper(), t.device_serial, t.algorithm) == (
            "898100012340002", TMK, "DEMO0004", "sm4")  # fmt: skip
        assert store.terminal("20000001").algorithm == "des"  # type: ignore[union-attr]
    with db.engine.connect() as conn:
        cv = conn.execute(select(s.terminals.c.tmk_kcv).where(s.terminals.c.terminal_id == "40000001")).scalar()
    assert cv == SM4.kcv(bytes.fromhex(TMK)).hex().upper()


def test_migration_0005_adds_the_column_and_its_downgrade_suspends_sm4_terminals(db):
    from alembic import command

    provision_demo(db.engine, db.keyring)
    cfg = alembic_config()
    with db.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004_seal_stored_replies")
        conn.commit()
    with db.engine.connect() as conn:
        cols = list(conn.execute(text("SELECT * FROM terminals")).keys())
        assert "algorithm" not in cols
        status = dict(conn.execute(text("SELECT terminal_id, status FROM terminals")).all())
    assert status["40000001"] == "suspended" and status["10000001"] == "active"
    upgrade(db.engine, keyring=db.keyring)
    assert current_revisions(db.engine) == head_revisions()
    with db.engine.connect() as conn:
        algs = dict(conn.execute(select(s.terminals.c.terminal_id, s.terminals.c.algorithm)).all())
    assert set(algs.values()) == {"des"}  # the suspended terminal must be set to SM4 again by hand
