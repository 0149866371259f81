"""``posgate clearing ...`` end to end: the network's database → ``network-file`` → ``import`` →
``report``, on SQLite and PostgreSQL; what they print, refuse, and their exit codes."""

from __future__ import annotations

import json

from sqlalchemy import func, select
from typer.testing import CliRunner

from posgate.cli import app
from posgate.store import clearing_schema as cs

from .seed import DATE, EXPECTED, PAN, acquirer_day, write_network_day

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def test_network_file_import_report(db, network_url, tmp_path) -> None:
    with db.engine.begin() as conn:
        acquirer_day(conn, db.keyring)
    write_network_day(network_url)
    out = tmp_path / "IND25060101ACOM"
    r = run(
        "clearing", "network-file", "--date", "2025-06-01", "--network-db", network_url, "--out", str(out)
    )
    assert r.exit_code == 0, r.output
    assert "6 records" in r.output and "debits 5 / 295.00" in r.output and "credits 1 / 8.00" in r.output
    assert out.read_bytes().startswith(b"H ACOM 01 20250601 CUPNETWORK")
    assert PAN.encode() not in out.read_bytes() and b"621214*********0012" in out.read_bytes()  # masked only

    r = run("clearing", "import", str(out), "--db", db.url, "--by", "night-ops", "--json")
    assert r.exit_code == 0, r.output
    body = json.loads(r.output)
    assert body["outcomes"] == EXPECTED and body["differences"] == 5 and body["business_date"] == DATE

    again = run("clearing", "import", str(out), "--db", db.url)
    assert again.exit_code == 1 and "imported already" in again.output and "nothing changed" in again.output

    r = run("clearing", "report", "--date", DATE, "--db", db.url)
    assert r.exit_code == 0, r.output
    assert "import #1 of IND25060101ACOM from CUPNETWORK by night-ops" in r.output
    assert "5 difference(s):" in r.output and "missing_theirs" in r.output and "-20.00" in r.output
    rep = json.loads(run("clearing", "report", "--date", "2025-06-01", "--db", db.url, "--json").output)
    assert [d["status"] for d in rep["differences"]] == ["open"] * 5


def test_refusals_and_exit_codes(db, tmp_path) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"H ACOM 01 20250601 X\n")
    r = run("clearing", "import", str(bad), "--db", db.url)
    assert r.exit_code == 1 and "bad: line 1" in r.output and "nothing was imported" in r.output
    r = run("clearing", "import", str(tmp_path / "absent"), "--db", db.url)
    assert r.exit_code == 2 and "cannot read" in r.output
    r = run("clearing", "report", "--date", "20261130", "--db", db.url)
    assert r.exit_code == 1 and "No clearing file of 20261130" in r.output
    r = run(
        "clearing",
        "network-file",
        "--date",
        "2026-13",
        "--network-db",
        "sqlite://",
        "--out",
        str(tmp_path / "x"),
    )
    assert r.exit_code == 2 and "YYYYMMDD" in r.output
    r = run("clearing", "network-file", "--date", DATE, "--network-db", f"sqlite:///{tmp_path / 'none.db'}",
            "--out", str(tmp_path / "x"))  # fmt: skip
    assert r.exit_code == 2 and "network's records" in r.output and not (tmp_path / "x").exists()
    with db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(cs.clearing_files)).scalar_one() == 0
