"""Backups and verified restores.

* SQLite: the online backup API (``sqlite3.Connection.backup``), a consistent copy while the
  host keeps writing; the manifest's row counts are read from the copy itself.
* PostgreSQL: ``pg_dump -Fc`` run on a snapshot exported from a REPEATABLE READ transaction
  (``--snapshot``), in which the manifest's row counts are taken too, so the two agree exactly.

Each backup file ``posgate-YYYYmmdd-HHMMSS.{sqlite,dump}`` has a ``.manifest.json`` beside it: the
row count of every table, a SHA-256 over the transactions (id, terminal, batch, STAN, MTI, operation,
amount, response code, status, RRN, refunded amount, signed), and the file's own SHA-256. A restore
checks the file's hash first, restores, then recomputes counts and checksum on the restored
database and reports success only when all match.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, inspect, select, text
from sqlalchemy.engine import make_url

from posgate.console.audit import audit
from posgate.console.db import Database
from posgate.console.fmt import aware, utcnow
from posgate.store.console_schema import backups

TXN_COLS = ("id", "terminal_id", "batch_no", "stan", "mti", "operation", "amount", "response_code", "status", "rrn",
            "refunded_amount", "signed")  # fmt: skip


class BackupError(RuntimeError):
    pass


def _tables(conn: Connection) -> list[str]:
    return sorted(inspect(conn).get_table_names())


def counts_and_checksum(conn: Connection) -> tuple[dict[str, int], str]:
    counts = {t: int(conn.execute(text(f'SELECT COUNT(*) FROM "{t}"')).scalar_one()) for t in _tables(conn)}  # noqa: S608
    h = hashlib.sha256()
    if "transactions" in counts:
        cols = ", ".join(TXN_COLS)
        for row in conn.execute(text(f"SELECT {cols} FROM transactions ORDER BY id")):  # noqa: S608
            h.update(("|".join("" if v is None else str(int(v) if isinstance(v, bool) else v) for v in row) + "\n").encode())
    return counts, h.hexdigest()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def libpq_url(engine_or_url: Engine | str) -> str:
    url = make_url(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url.url
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def pg_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not installed: apt-get install postgresql-client (the version of your server)")
    return path


def make_backup(engine: Engine, backup_dir: Path, *, now: datetime | None = None) -> dict[str, Any]:
    """Write a backup and its manifest; returns the manifest (with ``path``)."""
    now = now or utcnow()
    backup_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = now.strftime("%Y%m%d-%H%M%S")
    if engine.dialect.name == "sqlite":
        src = engine.url.database
        if not src or src == ":memory:":
            raise BackupError("an in-memory database cannot be backed up")
        dest = _unique(backup_dir / f"posgate-{stamp}.sqlite")
        _create_private(dest)
        source = sqlite3.connect(src)
        target = sqlite3.connect(dest)
        try:
            with target:
                source.backup(target)
        finally:
            source.close()
            target.close()
        check = _sqlite_engine(dest)
        try:
            with check.connect() as conn:
                counts, checksum = counts_and_checksum(conn)
        finally:
            check.dispose()
        fmt = "sqlite"
    elif engine.dialect.name == "postgresql":
        dest = _unique(backup_dir / f"posgate-{stamp}.dump")
        _create_private(dest)  # pg_dump -f truncates it and keeps the mode
        with engine.connect() as conn:
            conn.exec_driver_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
            counts, checksum = counts_and_checksum(conn)
            proc = subprocess.run([pg_tool("pg_dump"), "-Fc", f"--snapshot={snapshot}", "-f", str(dest), libpq_url(engine)],
                                  capture_output=True, text=True, timeout=3600)  # fmt: skip
            conn.exec_driver_sql("COMMIT")
        if proc.returncode != 0:
            dest.unlink(missing_ok=True)
            raise BackupError(f"pg_dump failed: {proc.stderr.strip()[:500]}")
        fmt = "pg_dump"
    else:
        raise BackupError(f"backups of {engine.dialect.name} databases are not supported")
    manifest = {"format": fmt, "created_at": now.isoformat(), "file": dest.name, "sha256": _sha256_file(dest),
                "size": dest.stat().st_size, "row_counts": counts, "txn_checksum": checksum}  # fmt: skip
    _create_private(_manifest_path(dest))
    _manifest_path(dest).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    manifest["path"] = str(dest)
    return manifest


def _create_private(path: Path) -> None:
    """Create ``path`` empty, mode 0600, before anything is written to it: a backup is the whole
    database (encrypted keys and card numbers, hashes, the audit log), for its owner only.
    ``os.open``'s mode, not a umask, which is process-wide and the console has threads."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _unique(path: Path) -> Path:
    n = 1
    candidate = path
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return candidate


def _manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".manifest.json")


def _sqlite_engine(path: Path | str) -> Engine:
    from sqlalchemy import create_engine

    return create_engine(f"sqlite:///{path}")


def read_manifest(path: Path) -> dict[str, Any]:
    mp = _manifest_path(path)
    if not mp.exists():
        raise BackupError(f"{mp.name} is missing: a backup cannot be verified without its manifest")
    return dict(json.loads(mp.read_text()))


def restore(path: Path, target_url: str) -> dict[str, Any]:
    """Restore ``path`` into ``target_url`` and verify it; raises :class:`BackupError` on any mismatch.

    Stop the host and console using the target database first."""
    path = Path(path)
    manifest = read_manifest(path)
    if _sha256_file(path) != manifest["sha256"]:
        raise BackupError("the backup file does not match its manifest (damaged or altered); not restored")
    from posgate.console.db import make_engine

    url = make_url(_normalise(target_url))
    if manifest["format"] == "sqlite":
        if url.get_backend_name() != "sqlite" or not url.database:
            raise BackupError("a SQLite backup restores into a SQLite file: --db sqlite:///path/to/posgate.db")
        target_path = Path(url.database)
        target_path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(str(target_path) + suffix).unlink(missing_ok=True)
        source = sqlite3.connect(path)
        target = sqlite3.connect(target_path)
        try:
            with target:
                source.backup(target)
        finally:
            source.close()
            target.close()
    elif manifest["format"] == "pg_dump":
        if url.get_backend_name() != "postgresql":
            raise BackupError("a PostgreSQL backup restores into PostgreSQL: --db postgresql://user@host/db")
        proc = subprocess.run([pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction",
                               "-d", libpq_url(url.render_as_string(hide_password=False)), str(path)],
                              capture_output=True, text=True, timeout=3600)  # fmt: skip
        if proc.returncode != 0:
            raise BackupError(f"pg_restore failed: {proc.stderr.strip()[:800]}")
    else:
        raise BackupError(f"unknown backup format {manifest['format']!r}")
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        with engine.connect() as conn:
            counts, checksum = counts_and_checksum(conn)
    finally:
        engine.dispose()
    expected = manifest["row_counts"]
    wrong = {t: (expected.get(t), counts.get(t)) for t in set(expected) | set(counts) if expected.get(t) != counts.get(t)}
    if wrong:
        raise BackupError(f"restore verification failed: row counts differ {wrong}")
    if checksum != manifest["txn_checksum"]:
        raise BackupError("restore verification failed: the transactions checksum differs")
    return {"verified": True, "row_counts": counts, "txn_checksum": checksum, "format": manifest["format"]}


def _normalise(url: str) -> str:
    try:
        from posgate.store.engine import normalise_url
    except ModuleNotFoundError:  # pragma: no cover
        return url
    return normalise_url(url)


def record(conn: Connection, manifest: dict[str, Any] | None, *, kind: str, actor: str, error: str | None = None,
           now: datetime | None = None) -> int:  # fmt: skip
    now = now or utcnow()
    values: dict[str, Any] = {"at": now, "kind": kind, "started_by": actor}
    if manifest:
        values.update(path=manifest["path"], size=manifest["size"], sha256=manifest["sha256"],
                      row_counts=manifest["row_counts"], txn_checksum=manifest["txn_checksum"], status="ok")  # fmt: skip
    else:
        values.update(path="", status="failed", detail=(error or "")[:2000])
    bid = conn.execute(backups.insert().values(**values).returning(backups.c.id)).scalar_one()
    audit(conn, actor=actor, action="backup.created" if manifest else "backup.failed", object_type="backup", object_id=str(bid),
          after={k: v for k, v in values.items() if k not in ("row_counts",)}, at=now)  # fmt: skip
    return int(bid)


def run_backup(engine: Engine, backup_dir: Path, *, kind: str, actor: str) -> tuple[int, dict[str, Any] | None, str | None]:
    try:
        manifest: dict[str, Any] | None = make_backup(engine, backup_dir)
        error = None
    except (BackupError, OSError, sqlite3.Error, subprocess.SubprocessError) as e:
        manifest, error = None, str(e)
    with engine.begin() as conn:
        bid = record(conn, manifest, kind=kind, actor=actor, error=error)
    return bid, manifest, error


def prune(engine: Engine, keep_days: int, now: datetime | None = None) -> int:
    """Delete backup files older than ``keep_days`` (the rows stay, marked ``pruned``)."""
    now = now or utcnow()
    cutoff = now - timedelta(days=keep_days)
    n = 0
    with engine.begin() as conn:
        rows = conn.execute(select(backups.c.id, backups.c.path, backups.c.at).where(backups.c.status == "ok")).all()
        for r in rows:
            at = aware(r.at)
            if at and at < cutoff:
                p = Path(r.path)
                p.unlink(missing_ok=True)
                _manifest_path(p).unlink(missing_ok=True)
                conn.execute(backups.update().where(backups.c.id == r.id).values(status="pruned"))
                audit(conn, actor="system:backup", action="backup.pruned", object_type="backup", object_id=str(r.id),
                      detail=f"older than {keep_days} days", at=now)  # fmt: skip
                n += 1
    return n


def list_backups(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(backups).order_by(backups.c.id.desc()).limit(200)).mappings()]


def backup_file(conn: Connection, backup_id: int) -> Path | None:
    row = conn.execute(select(backups.c.path, backups.c.status).where(backups.c.id == backup_id)).first()
    if row is None or row.status != "ok" or not row.path or not os.path.exists(row.path):
        return None
    return Path(row.path)


def file_for_download(db: Database, backup_id: int, actor: str) -> Path | None:
    """The backup's file, with the download written to the audit log (API and pages alike)."""
    with db.read() as conn:
        path = backup_file(conn, backup_id)
    if path is not None:
        with db.write() as conn:
            audit(conn, actor=actor, action="backup.downloaded", object_type="backup", object_id=str(backup_id))
    return path
