"""``posgate admin aid|capk``: IC parameters and CA public keys on the SQL store (docs/dialect.md
3.12): what they print, what they refuse (a CAPK whose check value does not match), the audit
trail and the terminals asked to download again."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from posgate.cli import app
from posgate.dialect.ic_params import UNIONPAY_TEST_CAPKS
from posgate.store import schema as s
from posgate.store.database import Database

MID = "898100012340009"
KEY = UNIONPAY_TEST_CAPKS[0]


@pytest.fixture
def cli(tmp_path):
    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'cli.db'}"

    def run(*args: str):
        return runner.invoke(app, [*args, "--db", url])

    run.url = url
    return run


def _pending(url: str) -> dict[str, tuple[bool, bool]]:
    db = Database.open(url)
    try:
        with db.engine.connect() as conn:
            rows = conn.execute(select(s.terminals.c.terminal_id, s.terminals.c.capk_pending, s.terminals.c.aid_pending))
            return {r[0]: (bool(r[1]), bool(r[2])) for r in rows}
    finally:
        db.close()


def _downloaded(url: str) -> None:
    """As when every terminal has downloaded the CA public keys and IC parameters (371, 381)."""
    db = Database.open(url)
    try:
        with db.engine.begin() as conn:
            conn.execute(update(s.terminals).values(capk_pending=False, aid_pending=False))
    finally:
        db.close()


def _audit(url: str) -> list[str]:
    db = Database.open(url)
    try:
        with db.engine.connect() as conn:
            return [r[0] for r in conn.execute(select(s.audit_log.c.action).order_by(s.audit_log.c.id))]
    finally:
        db.close()


def test_aids_add_list_change_remove_and_terminals_asked(cli):
    assert cli("admin", "merchant", "add", MID, "--name", "测试店", "--mcc", "5411").exit_code == 0
    assert cli("admin", "terminal", "add", "10000009", "--merchant", MID).exit_code == 0
    assert _pending(cli.url) == {"10000009": (True, True)}  # a new terminal downloads both
    _downloaded(cli.url)
    assert _pending(cli.url) == {"10000009": (False, False)}
    r = cli("admin", "aid", "add", "a000000333010101", "--no-cvm-limit", "1000.00")
    assert r.exit_code == 0, r.output
    assert "AID A000000333010101 saved: no-CVM limit 1000.00" in r.output
    assert _pending(cli.url) == {"10000009": (False, True)}
    rows = json.loads(cli("admin", "aid", "list", "--json").output)
    assert [(a["aid"], a["cvm_limit"], a["cl_transaction_limit"]) for a in rows] == [
        ("A000000333010101", "1000.00", "9999999999.99")]
    assert cli("admin", "aid", "add", "A000000333010101", "--no-cvm-limit", "300.00").exit_code == 0
    assert json.loads(cli("admin", "aid", "list", "--json").output)[0]["cvm_limit"] == "300.00"
    bad = cli("admin", "aid", "add", "A0000003", "--no-cvm-limit", "300.00")
    assert bad.exit_code == 1 and "AID (9F06) must be 5 to 16 bytes" in bad.output
    bad = cli("admin", "aid", "add", "A000000333010102", "--no-cvm-limit", "abc")
    assert bad.exit_code == 1
    assert len(json.loads(cli("admin", "aid", "list", "--json").output)) == 1  # nothing changed
    assert cli("admin", "aid", "remove", "A000000333010101").exit_code == 0
    gone = cli("admin", "aid", "remove", "A000000333010101")
    assert gone.exit_code == 1 and "no IC parameters for AID A000000333010101" in gone.output
    assert "no AIDs yet" in cli("admin", "aid", "list").output
    assert _audit(cli.url)[-3:] == ["ic.aid.add", "ic.aid.replace", "ic.aid.remove"]


def test_capk_with_a_wrong_check_value_is_refused_and_nothing_changes(cli):
    args = ["--rid", KEY.rid, "--index", KEY.index, "--modulus", KEY.modulus, "--expiry", KEY.expiry]
    wrong = "EE23B616C95C02652AD18860E48787C079E8E85B"
    r = cli("admin", "capk", "add", *args, "--check-value", wrong)
    assert r.exit_code == 1
    assert f"check value {wrong} does not match the key" in r.output and KEY.check_value in r.output
    assert "no CA public keys yet" in cli("admin", "capk", "list").output
    r = cli("admin", "capk", "add", *args, "--check-value", KEY.check_value.lower())
    assert r.exit_code == 0 and "A000000333/08 saved (check value verified)" in r.output, r.output
    listed = cli("admin", "capk", "list").output
    assert "B61645ED…FED2D1BF (1152 bits)" in listed and KEY.check_value in listed
    [row] = json.loads(cli("admin", "capk", "list", "--json").output)
    assert row["modulus"] == KEY.modulus and row["expiry"] == "20301231"
    assert cli("admin", "capk", "remove", "a000000333", "08").exit_code == 0
    r = cli("admin", "capk", "remove", "A000000333", "08")
    assert r.exit_code == 1 and "no CA public key A000000333/08" in r.output
    assert [a for a in _audit(cli.url) if a.startswith("ic.")] == ["ic.capk.add", "ic.capk.remove"]
