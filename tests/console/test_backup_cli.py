"""Backups (console, API, CLI), verified restores, the scheduled jobs, and ``posgate admin user``."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import stat
import subprocess
import tarfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from typer.testing import CliRunner

from posgate.cli import app as cli_app
from posgate.console import backup as backup_mod
from posgate.console import scheduler
from posgate.store import schema as s
from posgate.store.console_schema import backups, unsigned_alerts

from .helpers import Env, api_token, csrf_of, login


def _key(env: Env) -> Path:
    return env.path.with_name("posgate.db.key")


def test_backup_from_the_console_and_verified_restore(env: Env, tmp_path: Path) -> None:
    c = login(env.client(), "admin")
    r = c.post("/backups", data={"csrf_token": csrf_of(c, "/backups")}, follow_redirects=False)
    assert r.status_code == 303
    h = api_token(env.client(), "admin")
    rows = env.client().get("/api/v1/backups", headers=h).json()
    assert rows and rows[0]["status"] == "ok" and rows[0]["kind"] == "manual"
    dl = env.client().get(f"/api/v1/backups/{rows[0]['id']}/download", headers=h)
    assert dl.status_code == 200 and tarfile.is_tarfile(io.BytesIO(dl.content))
    assert env.client().get(f"/api/v1/backups/{rows[0]['id']}/download", headers=api_token(env.client(), "support")).status_code == 403
    path = Path(rows[0]["path"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    target = tmp_path / "restored.db"
    result = backup_mod.restore(path, f"sqlite:///{target}", _key(env))
    assert result["verified"] and result["row_counts"]["transactions"] == rows[0]["row_counts"]["transactions"]
    # a damaged archive is refused before anything is written
    bad = tmp_path / path.name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the database member
    bad.write_bytes(bytes(data))
    with pytest.raises(backup_mod.BackupError, match="does not match its manifest"):
        backup_mod.restore(bad, f"sqlite:///{tmp_path / 'other.db'}", _key(env))
    assert not (tmp_path / "other.db").exists()


def _rewrite(archive: Path, change: Any) -> None:
    """Rewrite the archive's members through ``change(name, bytes) -> bytes`` (a forger's tool)."""
    with tarfile.open(archive) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]
    with tarfile.open(archive, "w") as tar:
        for m, body in members:
            body = change(m.name, body)
            m.size = len(body)
            tar.addfile(m, io.BytesIO(body))


def test_restore_detects_a_changed_ledger(env: Env, tmp_path: Path) -> None:
    manifest = backup_mod.make_backup(env.db.engine, tmp_path / "b")
    path = Path(manifest["path"])
    # forge: alter one transaction inside the backup and fix the member's hash in the manifest
    work = tmp_path / "forge"
    work.mkdir()
    _, db_file = backup_mod.read_archive(path, work)
    assert db_file is not None
    eng = create_engine(f"sqlite:///{db_file}")
    with eng.begin() as conn:
        conn.execute(text("UPDATE transactions SET amount = amount + 1 WHERE id = 1"))
    eng.dispose()
    forged = db_file.read_bytes()

    def change(name: str, body: bytes) -> bytes:
        if name == "manifest.json":
            m = json.loads(body)
            m["database_sha256"] = hashlib.sha256(forged).hexdigest()
            return json.dumps(m).encode()
        return forged

    _rewrite(path, change)
    with pytest.raises(backup_mod.BackupError, match="checksum differs"):
        backup_mod.restore(path, f"sqlite:///{tmp_path / 'r.db'}", _key(env))


def test_cli_backup_restore_and_users(env: Env, tmp_path: Path) -> None:
    runner = CliRunner()
    url = f"sqlite:///{env.path}"
    env.db.engine.dispose()
    r = runner.invoke(cli_app, ["backup", "--db", url, "--dir", str(tmp_path / "bk"), "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert stat.S_IMODE(Path(info["path"]).stat().st_mode) == 0o600
    r = runner.invoke(cli_app, ["restore", info["path"], "--db", f"sqlite:///{tmp_path / 'restored.db'}",
                                "--key-file", str(env.path.with_name("posgate.db.key"))])
    assert r.exit_code == 0 and "verified" in r.output, r.output
    r = runner.invoke(cli_app, ["admin", "user", "add", "night-clerk", "--role", "merchant_clerk", "--merchant",
                                "898100012340001", "--db", url])  # fmt: skip
    assert r.exit_code == 0, r.output
    one_time = r.output.split("one-time password: ")[1].split()[0]
    r = runner.invoke(cli_app, ["admin", "user", "list", "--db", url, "--json"])
    assert "night-clerk" in {u["username"] for u in json.loads(r.output)}
    r = runner.invoke(cli_app, ["admin", "user", "add", "x", "--role", "merchant_clerk", "--db", url])
    assert r.exit_code == 1
    # the one-time password works once, and only for changing it
    c = login(env.client(), "night-clerk", one_time)
    assert c.get("/", follow_redirects=False).headers["location"] == "/password"
    r = c.post("/password", data={"csrf_token": csrf_of(c, "/password"), "current": one_time, "new": "my-own-password-1",
                                  "confirm": "my-own-password-1"}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    assert c.get("/").status_code == 200


def test_scheduled_jobs(env: Env) -> None:
    state = env.app.state.console
    assert scheduler.unsigned_check(state) == 1  # only the 3-day-old slip is past the 24 h default
    with env.db.engine.connect() as conn:
        flagged = conn.execute(select(unsigned_alerts.c.transaction_id)).scalars().all()
    assert flagged == [env.ids.mart_old_unsigned]
    c = login(env.client(), "mart-clerk")
    assert "逾期" in c.get("/unsigned").text
    assert scheduler.unsigned_check(state) == 0  # flagged once
    state.settings.backup_time = "00:00"
    assert scheduler.daily_backup(state) is True
    assert scheduler.daily_backup(state) is False  # once a day
    with env.db.engine.begin() as conn:
        conn.execute(backups.update().values(at=datetime.now(UTC) - timedelta(days=30)))
    assert backup_mod.prune(env.db.engine, 7) == 1
    with env.db.engine.connect() as conn:
        assert conn.execute(select(backups.c.status)).scalars().all() == ["pruned"]
        assert conn.execute(select(func.count()).select_from(s.audit_log).where(s.audit_log.c.action == "backup.pruned")).scalar() == 1


@pytest.mark.postgres
def test_postgres_backup_and_restore(tmp_path: Path) -> None:
    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump not installed")
    from posgate.store.database import Database
    from posgate.store.demo import provision_demo

    from .helpers import seed

    base = "postgresql://postgres@127.0.0.1:5432"
    names = [f"console_bk_{uuid.uuid4().hex[:8]}", f"console_rs_{uuid.uuid4().hex[:8]}"]
    admin = create_engine(f"{base.replace('postgresql://', 'postgresql+psycopg://')}/test", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for n in names:
                conn.execute(text(f'CREATE DATABASE "{n}"'))
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"PostgreSQL not reachable: {e}")
    try:
        db = Database.open(f"{base}/{names[0]}", key_file=tmp_path / "k.key")
        provision_demo(db.engine, db.keyring)
        seed(db.engine, db.keyring)
        manifest = backup_mod.make_backup(db.engine, tmp_path / "bk")
        db.close()
        assert manifest["format"] == "pg_dump" and manifest["row_counts"]["transactions"] > 5
        result = backup_mod.restore(Path(manifest["path"]), f"{base}/{names[1]}", tmp_path / "k.key")
        assert result["verified"] and result["txn_checksum"] == manifest["txn_checksum"]
    finally:
        with admin.connect() as conn:
            for n in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)'))
        admin.dispose()


def test_pg_tools_are_found() -> None:
    # the Makefile needs no postgresql-client install when the machine has it
    assert shutil.which("pg_dump") is None or subprocess.run(["pg_dump", "--version"], capture_output=True).returncode == 0
