"""A backup downloaded from the console is restored by ``posgate restore`` and the host runs on
it: keys and card numbers decrypt with the operator's master key file; the wrong key (or none)
is refused with a clear message before anything is written, and no key file is ever made."""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import httpx

from pair.harness import PairTerminal
from posgate.store.database import Database

from .helpers import Live, api_token
from .test_host_integration import _sql_issuer_ready, make_world


def _posgate(*args: str) -> subprocess.CompletedProcess[str]:
    import posgate

    exe = str(Path(sys.executable).with_name("posgate"))
    env = {"PATH": "/usr/bin", "PYTHONPATH": str(Path(posgate.__file__).parent.parent)}
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120, env=env)


def _download(live: Live, dest: Path) -> Path:
    c = live.env.client()
    h = api_token(c, "admin")
    with httpx.Client(base_url=live.url, headers=h) as http:
        assert http.post("/api/v1/backups").status_code == 201
        row = http.get("/api/v1/backups").json()[0]
        r = http.get(f"/api/v1/backups/{row['id']}/download")
    assert r.status_code == 200
    name = r.headers["content-disposition"].split('filename="')[1].rstrip('"')
    assert name.endswith(".tar")
    (dest / name).write_bytes(r.content)
    return dest / name


def test_console_download_restores_with_the_cli_and_the_host_runs_on_it(live: Live, tmp_path: Path) -> None:
    archive = _download(live, tmp_path)
    with tarfile.open(archive) as tar:
        names = sorted(tar.getnames())
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert names == ["manifest.json", "posgate.sqlite"]  # self-contained, and no master key inside
    assert manifest["keyring_check"] and manifest["database_sha256"]
    key = live.env.path.with_name("posgate.db.key")
    assert key.read_bytes() not in archive.read_bytes()

    target = tmp_path / "restored" / "posgate.db"
    r = _posgate("restore", str(archive), "--db", f"sqlite:///{target}", "--key-file", str(key))
    assert r.returncode == 0, r.stderr
    assert "verified" in r.stdout and f"POSGATE_MASTER_KEY_FILE={key}" in r.stdout
    assert not target.with_name("posgate.db.key").exists()  # no new key file beside the restored database

    db = Database.open(f"sqlite:///{target}", key_file=key)  # what `posgate serve` does first
    try:
        with db.unit_of_work() as store:
            t = store.terminal("10000001")
            assert t is not None and len(t.tmk) in (16, 24)  # the TMK decrypts
        if _sql_issuer_ready():
            pos = PairTerminal(make_world(db), "10000001")  # type: ignore[arg-type]
            assert pos.sign_on().code == "00"
            assert pos.sale(amount=12_00).code == "00"  # the card's PIN verifier and balance: card data readable
    finally:
        db.close()


def test_restore_with_the_wrong_key_or_none_changes_nothing(live: Live, tmp_path: Path) -> None:
    tmp_path = tmp_path / "operator"  # the fixture's own files live in tmp_path
    tmp_path.mkdir()
    archive = _download(live, tmp_path)
    target = tmp_path / "existing.db"
    target.write_bytes(b"the operator's current database")
    before = hashlib.sha256(target.read_bytes()).hexdigest()
    wrong = tmp_path / "other.key"
    wrong.write_bytes(secrets.token_bytes(32))

    r = _posgate("restore", str(archive), "--db", f"sqlite:///{target}", "--key-file", str(wrong))
    assert r.returncode == 1 and "not the key of this backup" in r.stderr and "nothing was restored" in r.stderr
    r = _posgate("restore", str(archive), "--db", f"sqlite:///{target}")
    assert r.returncode == 2 and "--key-file is required" in r.stderr
    missing = tmp_path / "nowhere.key"
    r = _posgate("restore", str(archive), "--db", f"sqlite:///{target}", "--key-file", str(missing))
    assert r.returncode == 1 and "not found" in r.stderr
    assert not missing.exists()  # never a new key
    assert hashlib.sha256(target.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["existing.db", "other.key", archive.name])


def test_cli_and_console_make_the_same_archive(live: Live, tmp_path: Path) -> None:
    from_console = _download(live, tmp_path)
    r = _posgate("backup", "--db", f"sqlite:///{live.env.path}", "--dir", str(tmp_path / "cli"), "--json")
    assert r.returncode == 0, r.stderr
    from_cli = Path(json.loads(r.stdout)["path"])
    assert stat.S_IMODE(from_cli.stat().st_mode) == 0o600
    for a in (from_console, from_cli):
        with tarfile.open(a) as tar:
            assert sorted(tar.getnames()) == ["manifest.json", "posgate.sqlite"]
            assert all(stat.S_IMODE(m.mode) == 0o600 for m in tar.getmembers())
    with tarfile.open(from_cli) as tar:
        body = tar.extractfile("manifest.json").read()  # type: ignore[union-attr]
    assert json.loads(body)["format"] == "sqlite"
    assert io.BytesIO(body).read(1) == b"{"


def test_host_on_a_restored_database_without_its_key_makes_no_new_key(live: Live, tmp_path: Path) -> None:
    """Starting the host on a database written with a key, without that key file, is refused
    with a clear message, and no new (wrong) key file is made beside it."""
    import pytest

    from posgate.store.keyring import KeyringError

    tmp_path = tmp_path / "operator"
    tmp_path.mkdir()
    archive = _download(live, tmp_path)
    target = tmp_path / "restored" / "posgate.db"
    key = live.env.path.with_name("posgate.db.key")
    assert _posgate("restore", str(archive), "--db", f"sqlite:///{target}", "--key-file", str(key)).returncode == 0
    with pytest.raises(KeyringError, match="not found"):
        Database.open(f"sqlite:///{target}")
    assert not target.with_name("posgate.db.key").exists()
