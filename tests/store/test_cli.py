"""``posgate db`` and ``posgate admin``: what they print, what they refuse, their exit codes."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from posgate.cli import app
from posgate.crypto.tdes import kcv
from posgate.store import schema as s
from posgate.store.database import Database

MID = "898100012340009"


@pytest.fixture
def cli(tmp_path):
    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'cli.db'}"

    def run(*args: str, input: str | None = None):
        return runner.invoke(app, [*args, "--db", url], input=input)

    run.url = url
    return run


def test_db_upgrade(cli):
    from posgate.store.migrate import head_revisions

    r = cli("db", "upgrade")
    assert r.exit_code == 0 and f"database at revision {head_revisions()[0]}" in r.output


def test_merchants_terminals_cards(cli):
    r = cli("admin", "merchant", "add", MID, "--name", "测试店", "--mcc", "5411", "--fee", "0.55", "--name-en", "Test")
    assert r.exit_code == 0, r.output
    again = cli("admin", "merchant", "add", MID, "--name", "x", "--mcc", "5411")
    assert again.exit_code == 1 and "exists already" in again.output
    assert cli("admin", "merchant", "add", "123", "--name", "x", "--mcc", "5411").exit_code == 1
    listed = cli("admin", "merchant", "list")
    assert MID in listed.output and "55" in listed.output

    tmk = "0123456789ABCDEFFEDCBA9876543210"
    r = cli("admin", "terminal", "add", "30000001", "--merchant", MID, "--tmk", tmk, "--serial", "SN1")
    assert r.exit_code == 0 and kcv(bytes.fromhex(tmk)).hex().upper() in r.output and tmk not in r.output
    r = cli("admin", "terminal", "add", "30000002", "--merchant", MID)
    assert r.exit_code == 0 and "generated TMK" in r.output
    assert cli("admin", "terminal", "add", "30000003", "--merchant", MID, "--tmk", "zz").exit_code == 1
    assert cli("admin", "terminal", "add", "30000004", "--merchant", "898100012349999").exit_code == 1
    listed = cli("admin", "terminal", "list", "--json")
    assert '"30000001"' in listed.output and tmk not in listed.output

    pan = "6212142000000000012"
    r = cli("admin", "card", "add", pan, "--expiry", "3012", "--pin", "123456", "--balance", "100.00", "--limit", "50.00")
    assert r.exit_code == 0 and "621214*********0012" in r.output and pan not in r.output
    assert cli("admin", "card", "add", "6212142000000000013", "--expiry", "3012", "--pin", "1").exit_code == 1  # Luhn
    listed = cli("admin", "card", "list")
    assert "621214*********0012" in listed.output and pan not in listed.output and "10000" in listed.output

    assert cli("admin", "terminal", "approve-device", "30000001", "SN2").exit_code == 0
    assert cli("admin", "terminal", "approve-device", "30000001", "SN1").exit_code == 1  # already its device
    assert cli("admin", "terminal", "resign", "30000001").exit_code == 0
    assert cli("admin", "terminal", "resign", "39999999").exit_code == 1
    db = Database.open(cli.url)
    with db.unit_of_work() as store:
        t = store.terminal("30000001")
        assert t.approved_serial == "SN2" and t.resign_requested and t.resign_reason == "support"
    db.close()


def test_reinstate(cli):
    cli("admin", "merchant", "add", MID, "--name", "测试店", "--mcc", "5411")
    r = cli("admin", "merchant", "reinstate", MID, "--reason", "paid")
    assert r.exit_code == 1 and "active already" in r.output
    db = Database.open(cli.url)
    with db.unit_of_work() as store:
        store.update_merchant(MID, status="suspended", suspended_reason="D6", suspended_by="system:D6")
    r = cli("admin", "merchant", "reinstate", MID, "--reason", "called the merchant; terminal repaired")
    assert r.exit_code == 0, r.output
    with db.unit_of_work() as store:
        assert store.merchant(MID).status == "active"
        assert store.merchant_last_sign_on_day(MID) is not None  # D6 counts from today
    with db.engine.connect() as conn:
        actions = conn.execute(select(s.audit_log.c.action, s.audit_log.c.detail)).all()
    assert ("merchant.reinstate", "called the merchant; terminal repaired") in actions
    db.close()
    assert cli("admin", "merchant", "reinstate", "898100012349999", "--reason", "x").exit_code == 1


def test_wrong_master_key_is_exit_2(cli, tmp_path, monkeypatch):
    assert cli("db", "upgrade").exit_code == 0
    monkeypatch.setenv("POSGATE_MASTER_KEY_FILE", str(tmp_path / "another.key"))
    r = cli("admin", "merchant", "list")
    assert r.exit_code == 2 and "master key" in r.output


def test_terminal_set_profile(cli):
    assert cli("admin", "merchant", "add", MID, "--name", "缴费点", "--mcc", "4900").exit_code == 0
    assert cli("admin", "terminal", "add", "30000001", "--merchant", MID).exit_code == 0
    r = cli("admin", "terminal", "set-profile", "30000001", "gz-bill")
    assert r.exit_code == 0 and "now speaks gz-bill (was cup)" in r.output
    again = cli("admin", "terminal", "set-profile", "30000001", "gz-bill")
    assert again.exit_code == 0 and "nothing changed" in again.output
    bad = cli("admin", "terminal", "set-profile", "30000001", "nope")
    assert bad.exit_code == 2 and "cup, x919, gz-bill" in bad.output
    assert cli("admin", "terminal", "set-profile", "39999999", "cup").exit_code == 1
    assert '"dialect": "gz-bill"' in cli("admin", "terminal", "list", "--json").output
    db = Database.open(cli.url)
    with db.unit_of_work() as store:
        assert store.terminal("30000001").dialect == "gz-bill"
    with db.engine.connect() as conn:
        from sqlalchemy import select

        from posgate.store import schema as s

        rows = list(conn.execute(select(s.audit_log).where(s.audit_log.c.action == "terminal.set_profile")))
    db.close()
    assert len(rows) == 1 and rows[0].actor == "cli"  # the no-op and the refusals wrote nothing
