"""Backups and verified restores: one self-contained archive, made the same way by the console
(button, daily schedule, download) and by ``posgate backup``, restored by ``posgate restore``.

The archive ``posgate-YYYYmmdd-HHMMSS.tar`` (mode 0600, like every file written here) holds:

* ``manifest.json``: the format (``sqlite`` | ``pg_dump``), the database member's name, size and
  SHA-256, the row count of every table, a SHA-256 over the transactions (id, terminal, batch,
  STAN, MTI, operation, amount, response code, status, RRN, refunded amount, signed), and the
  database's master-key check value (``settings.keyring_check``: identifies the key, reveals
  nothing of it);
* the database: ``posgate.sqlite`` (SQLite online backup API, a consistent copy while the host
  keeps writing; counts read from the copy) or ``posgate.dump`` (``pg_dump -Fc`` on a snapshot
  exported from a REPEATABLE READ transaction, counts taken in that snapshot).

The master key is NOT in the archive: keys and card numbers in it stay encrypted under the key
file of the database, which the operator keeps apart and supplies to the restore
(``--key-file``). A restore checks, before it writes anything: the archive's members, the
member's SHA-256, that the key file exists (a new key is never made) and is the archive's key
(check value, and for SQLite one encrypted value decrypted). Then it restores and recomputes
counts and checksum on the restored database, and reports success only when all match.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
ARCHIVE_VERSION = 1
MANIFEST = "manifest.json"
MEMBERS = {"sqlite": "posgate.sqlite", "pg_dump": "posgate.dump"}
PRIVATE = 0o600  # backups hold the whole ledger: owner only


log = logging.getLogger("posgate.console.backup")


class BackupError(RuntimeError):
    """``cause``: a key of ``posgate.console.labels.LABELS["backup_cause"]`` (what the page says)."""

    def __init__(self, message: str, cause: str = "other") -> None:
        super().__init__(message)
        self.cause = cause


# Why a backup failed, for the page (labels "backup_cause"); the technical text goes to the log.
_OS_CAUSES = {errno.ENOSPC: "disk_full", errno.EDQUOT: "disk_full", errno.EACCES: "no_permission",
              errno.EPERM: "no_permission", errno.EROFS: "no_permission", errno.ENOENT: "folder_missing",
              errno.ENOTDIR: "folder_missing", errno.EEXIST: "folder_missing"}  # fmt: skip


def failure_cause(e: BaseException) -> str:
    if isinstance(e, BackupError):
        return e.cause
    if isinstance(e, OSError):
        return _OS_CAUSES.get(e.errno or 0, "other")
    if isinstance(e, sqlite3.Error):
        return "database"
    if isinstance(e, subprocess.TimeoutExpired):
        return "timeout"
    if isinstance(e, subprocess.SubprocessError):
        return "dump_failed"
    return "other"


_URL_PASSWORD = re.compile(r"(?i)(\w+://[^:/@\s]*:)[^@\s]*@")
_KEYWORD_PASSWORD = re.compile(r"(?i)\b(password|passwd|pwd)(\s*[=:]\s*)\S+")
_CARD_NUMBER = re.compile(r"(?<!\d)\d{13,19}(?!\d)")


def mask_detail(text: str) -> str:
    """A failure's technical text safe for the log and the backups table: passwords in database
    URLs and ``password=`` pairs hidden, anything shaped like a card number masked."""
    from posgate.domain.masking import mask_pan

    text = _URL_PASSWORD.sub(r"\1***@", text)
    text = _KEYWORD_PASSWORD.sub(r"\1\2***", text)
    return _CARD_NUMBER.sub(lambda m: mask_pan(m.group(0)), text)


_CAUSE_PREFIX = re.compile(r"^\[([a-z_]+)\] ")


def cause_of(detail: str | None) -> str:
    """The cause recorded at the start of a failed backup's detail (``[disk_full] ...``)."""
    m = _CAUSE_PREFIX.match(detail or "")
    return m.group(1) if m else "other"


# Progress of a long backup or restore: (stage, done, total or None when unknown). Stages:
# "copy" (SQLite pages), "dump" / "restore" (bytes pg_dump has written / pg_restore has read so
# far), "count" (transactions checksummed), "archive" / "extract" (bytes), "hash" (bytes).
Progress = Callable[[str, int, "int | None"], None]


def _quiet(_stage: str, _done: int, _total: int | None) -> None:
    return None


@contextlib.contextmanager
def progress_bar(description: str, *, show: bool = True) -> Iterator[Progress]:
    """A Rich progress bar on stderr for a backup or restore (``posgate backup`` / ``restore``)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn(f"[bold]{description}"), BarColumn(), TextColumn("{task.fields[stage]}"), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=Console(stderr=True), disable=not show)  # fmt: skip
    with bar:
        yield rich_progress(bar, bar.add_task(description, total=None, stage=""))


def rich_progress(bar: Any, task: Any) -> Progress:
    """A :data:`Progress` that moves a Rich progress bar's task (the CLI and the benchmarks)."""

    def update(stage: str, done: int, total: int | None) -> None:
        bar.update(task, completed=done, total=total, stage=stage)

    return update


class _Counting(io.RawIOBase):
    """A file read through, reporting how many bytes have gone by."""

    def __init__(self, f: Any, stage: str, total: int, progress: Progress) -> None:
        self.f, self.stage, self.total, self.progress, self.done = f, stage, total, progress, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.done += len(data)
        self.progress(self.stage, self.done, self.total)
        return bytes(data)


def _tables(conn: Connection) -> list[str]:
    return sorted(inspect(conn).get_table_names())


def counts_and_checksum(conn: Connection, progress: Progress = _quiet) -> tuple[dict[str, int], str]:
    counts = {t: int(conn.execute(text(f'SELECT COUNT(*) FROM "{t}"')).scalar_one()) for t in _tables(conn)}  # noqa: S608
    h = hashlib.sha256()
    if "transactions" in counts:
        cols = ", ".join(TXN_COLS)
        total, done = counts["transactions"], 0
        # Streamed (a server-side cursor on PostgreSQL): a grown ledger does not fit in memory.
        query = text(f"SELECT {cols} FROM transactions ORDER BY id").execution_options(stream_results=True, yield_per=10_000)  # noqa: S608
        for row in conn.execute(query):
            h.update(("|".join("" if v is None else str(int(v) if isinstance(v, bool) else v) for v in row) + "\n").encode())
            done += 1
            if not done % 50_000:
                progress("count", done, total)
        progress("count", done, total)
    return counts, h.hexdigest()


def _keyring_check(conn: Connection) -> str | None:
    if "settings" not in _tables(conn):
        return None
    value = conn.execute(text("SELECT value FROM settings WHERE key = 'keyring_check'")).scalar()
    return None if value is None else str(value)


def _sha256_file(path: Path, progress: Progress = _quiet) -> str:
    h = hashlib.sha256()
    total, done = path.stat().st_size, 0
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            done += len(chunk)
            progress("hash", done, total)
    return h.hexdigest()


def _run_watched(cmd: list[str], stage: str, watch: Path, progress: Progress) -> subprocess.CompletedProcess[str]:
    """Run a pg_dump / pg_restore, reporting the size of ``watch`` (its output or input) meanwhile."""
    total = watch.stat().st_size if stage == "restore" else None
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, text=True)
        deadline = _monotonic() + 3600
        while True:
            try:
                rc = proc.wait(0.25)
                break
            except subprocess.TimeoutExpired:
                if _monotonic() > deadline:
                    proc.kill()
                    proc.wait()
                    raise subprocess.TimeoutExpired(cmd, 3600) from None
                with contextlib.suppress(OSError):
                    progress(stage, total or watch.stat().st_size, total)
        err.seek(0)
        return subprocess.CompletedProcess(cmd, rc, "", err.read())


def _monotonic() -> float:
    import time

    return time.monotonic()


def libpq_url(engine_or_url: Engine | str) -> str:
    url = make_url(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url.url
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def pg_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not installed: apt-get install postgresql-client (the version of your server)", "tool_missing")
    return path


def _private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 (whatever the umask) before anything writes into it."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE))
    os.chmod(path, PRIVATE)


@contextmanager
def _workdir(near: Path) -> Iterator[Path]:
    """A private (0700) scratch directory beside ``near``, removed afterwards."""
    near.mkdir(parents=True, exist_ok=True, mode=0o700)  # a new backup dir is its owner's only
    d = Path(tempfile.mkdtemp(prefix=".posgate-backup-", dir=near))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def make_backup(engine: Engine, backup_dir: Path, *, now: datetime | None = None, progress: Progress = _quiet) -> dict[str, Any]:
    """Write one archive (database copy + manifest); returns the manifest with the archive's
    ``path``, ``size`` and ``sha256``. ``progress`` hears how far each stage is."""
    now = now or utcnow()
    stamp = now.strftime("%Y%m%d-%H%M%S")
    with _workdir(backup_dir) as work:
        if engine.dialect.name == "sqlite":
            src = engine.url.database
            if not src or src == ":memory:":
                raise BackupError("an in-memory database cannot be backed up", "in_memory")
            fmt = "sqlite"
            copy = work / MEMBERS[fmt]
            _private_file(copy)
            _sqlite_copy(src, copy, progress)
            check = _sqlite_engine(copy)
            try:
                with check.connect() as conn:
                    counts, checksum = counts_and_checksum(conn, progress)
                    key_check = _keyring_check(conn)
            finally:
                check.dispose()
        elif engine.dialect.name == "postgresql":
            fmt = "pg_dump"
            copy = work / MEMBERS[fmt]
            _private_file(copy)
            with engine.connect() as conn:
                conn.exec_driver_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
                counts, checksum = counts_and_checksum(conn, progress)
                key_check = _keyring_check(conn)
                proc = _run_watched([pg_tool("pg_dump"), "-Fc", f"--snapshot={snapshot}", "-f", str(copy),
                                     libpq_url(engine)], "dump", copy, progress)  # fmt: skip
                conn.exec_driver_sql("COMMIT")
            if proc.returncode != 0:
                raise BackupError(f"pg_dump failed: {proc.stderr.strip()[:500]}", "dump_failed")
        else:
            raise BackupError(f"backups of {engine.dialect.name} databases are not supported", "unsupported")
        manifest: dict[str, Any] = {
            "archive_version": ARCHIVE_VERSION, "format": fmt, "created_at": now.isoformat(), "database": copy.name,
            "database_sha256": _sha256_file(copy, progress), "database_size": copy.stat().st_size, "row_counts": counts,
            "txn_checksum": checksum, "keyring_check": key_check,
        }  # fmt: skip
        dest = _unique(backup_dir / f"posgate-{stamp}.tar")
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
        try:
            with os.fdopen(fd, "wb") as f, tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar:
                body = json.dumps(manifest, indent=2, sort_keys=True).encode()
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mode, info.mtime = len(body), PRIVATE, int(now.timestamp())
                tar.addfile(info, io.BytesIO(body))
                info = tar.gettarinfo(str(copy), arcname=copy.name)
                info.mode, info.uid, info.gid, info.uname, info.gname = PRIVATE, 0, 0, "", ""
                with copy.open("rb") as data:
                    tar.addfile(info, _Counting(data, "archive", info.size, progress))
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
    return {**manifest, "path": str(dest), "file": dest.name, "size": dest.stat().st_size, "sha256": _sha256_file(dest)}


def _sqlite_copy(src: str | Path, dest: str | Path, progress: Progress = _quiet) -> None:
    """Copy one SQLite database into another with SQLite's online backup (consistent while in use)."""
    source = sqlite3.connect(src)
    target = sqlite3.connect(dest)

    def step(_status: int, remaining: int, total: int) -> None:
        progress("copy", total - remaining, total)

    try:
        with target:
            # 4096 pages a step: the host's writers get the database between steps.
            source.backup(target, pages=4096, progress=step)
    finally:
        source.close()
        target.close()


def _unique(path: Path) -> Path:
    n = 1
    candidate = path
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return candidate


def _sqlite_engine(path: Path | str) -> Engine:
    from sqlalchemy import create_engine

    return create_engine(f"sqlite:///{path}")


def read_archive(path: Path, into: Path | None = None, progress: Progress = _quiet) -> tuple[dict[str, Any], Path | None]:
    """The archive's manifest and (``into`` given) its database member extracted there, its
    SHA-256 checked. Only the two expected regular members are read; nothing is extracted by
    the archive's own names (no path from the archive reaches the file system)."""
    try:
        tar = tarfile.open(path, mode="r:")
    except (tarfile.TarError, OSError) as e:
        raise BackupError(f"{path.name} is not a posgate backup archive (.tar from 'posgate backup' or the console): {e}") from None
    with tar:
        members = {m.name: m for m in tar.getmembers()}
        m = members.get(MANIFEST)
        if m is None or not m.isfile():
            raise BackupError(f"{path.name} has no {MANIFEST}: not a posgate backup archive")
        f = tar.extractfile(m)
        assert f is not None
        try:
            manifest = dict(json.loads(f.read()))
        except ValueError:
            raise BackupError(f"the {MANIFEST} in {path.name} is damaged") from None
        if manifest.get("archive_version") != ARCHIVE_VERSION or manifest.get("format") not in MEMBERS:
            raise BackupError(f"{path.name}: unknown archive version or format; restore it with the posgate that made it")
        name = MEMBERS[manifest["format"]]
        if manifest.get("database") != name or name not in members or not members[name].isfile():
            raise BackupError(f"{path.name} does not hold the database its manifest names")
        if into is None:
            return manifest, None
        out = into / name
        _private_file(out)
        src = tar.extractfile(members[name])
        assert src is not None
        with out.open("wb") as dst:
            shutil.copyfileobj(_Counting(src, "extract", members[name].size, progress), dst, 1 << 20)
    if _sha256_file(out, progress) != manifest["database_sha256"]:
        raise BackupError("the database in the archive does not match its manifest (damaged or altered); not restored")
    return manifest, out


def _load_key(key_file: Path | str | None) -> Any:
    from posgate.store.keyring import KeyringError, load_keyring

    if key_file is None:
        raise BackupError("the master key file of the backed-up database is required (--key-file): the archive does "
                          "not contain it, and a new key could not read the card data and keys")  # fmt: skip
    try:
        return load_keyring(key_file, create=False)  # never a new key here
    except KeyringError as e:
        raise BackupError(str(e)) from None


def _check_decrypts(conn: Connection, keyring: Any) -> None:
    """Decrypt one encrypted value of the database (a terminal's TMK, else a card number)."""
    for table, col, purpose in (("terminals", "tmk_enc", b"tmk"), ("cards", "pan_enc", b"pan")):
        if table not in _tables(conn):
            continue
        blob = conn.execute(text(f"SELECT {col} FROM {table} WHERE {col} IS NOT NULL LIMIT 1")).scalar()  # noqa: S608
        if blob is None:
            continue
        try:
            keyring.decrypt(bytes(blob), purpose)
        except Exception:  # noqa: BLE001 - any failure means: not this database's key
            raise BackupError("the master key file does not decrypt this backup's data; not restored") from None
        return


def restore(path: Path, target_url: str, key_file: Path | str | None, *, progress: Progress = _quiet) -> dict[str, Any]:
    """Restore the archive ``path`` into ``target_url`` and verify it; raises
    :class:`BackupError` (before anything is written, when the archive or the key is wrong).

    ``key_file``: the master key file of the database that was backed up (kept apart from the
    backups). Stop the host and console using the target database first."""
    from posgate.console.db import make_engine

    path = Path(path)
    keyring = _load_key(key_file)
    url = make_url(_normalise(target_url))
    manifest, _ = read_archive(path)
    if manifest["format"] == "sqlite" and (url.get_backend_name() != "sqlite" or not url.database):
        raise BackupError("a SQLite backup restores into a SQLite file: --db sqlite:///path/to/posgate.db")
    if manifest["format"] == "pg_dump" and url.get_backend_name() != "postgresql":
        raise BackupError("a PostgreSQL backup restores into PostgreSQL: --db postgresql://user@host/db")
    if manifest.get("keyring_check") and manifest["keyring_check"] != keyring.check_value:
        raise BackupError(f"the master key file {key_file} is not the key of this backup (its check value differs); "
                          "supply the key file the backed-up database used; nothing was restored")  # fmt: skip
    scratch = Path(url.database).resolve().parent if manifest["format"] == "sqlite" else Path(tempfile.gettempdir())  # type: ignore[arg-type]
    with _workdir(scratch) as work:
        _, copy = read_archive(path, work, progress)
        assert copy is not None
        if manifest["format"] == "sqlite":
            check = _sqlite_engine(copy)
            try:
                with check.connect() as conn:
                    _check_decrypts(conn, keyring)
            finally:
                check.dispose()
            target_path = Path(url.database)  # type: ignore[arg-type]
            for suffix in ("-wal", "-shm"):
                Path(str(target_path) + suffix).unlink(missing_ok=True)
            if not target_path.exists():
                _private_file(target_path)
            _sqlite_copy(copy, target_path, progress)
        else:
            proc = _run_watched([pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction",
                                 "-d", libpq_url(url.render_as_string(hide_password=False)), str(copy)],
                                "restore", copy, progress)  # fmt: skip
            if proc.returncode != 0:
                raise BackupError(f"pg_restore failed: {proc.stderr.strip()[:800]}")
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        with engine.connect() as conn:
            counts, checksum = counts_and_checksum(conn, progress)
            _check_decrypts(conn, keyring)
    finally:
        engine.dispose()
    expected = manifest["row_counts"]
    wrong = {t: (expected.get(t), counts.get(t)) for t in set(expected) | set(counts) if expected.get(t) != counts.get(t)}
    if wrong:
        raise BackupError(f"restore verification failed: row counts differ {wrong}")
    if checksum != manifest["txn_checksum"]:
        raise BackupError("restore verification failed: the transactions checksum differs")
    return {"verified": True, "row_counts": counts, "txn_checksum": checksum, "format": manifest["format"],
            "key_file": str(key_file)}  # fmt: skip


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


def run_backup(engine: Engine, backup_dir: Path, *, kind: str, actor: str,
               progress: Progress = _quiet) -> tuple[int, dict[str, Any] | None, str | None]:  # fmt: skip
    try:
        manifest: dict[str, Any] | None = make_backup(engine, backup_dir, progress=progress)
        error = None
    except (BackupError, OSError, sqlite3.Error, subprocess.SubprocessError) as e:
        # The page shows the cause in words (labels "backup_cause"); the technical text, masked,
        # goes to the log and the backups table, starting with the cause (see cause_of).
        cause = failure_cause(e)
        manifest, error = None, f"[{cause}] {mask_detail(f'{type(e).__name__}: {e}')}"
        log.warning("backup (%s, by %s) failed: %s", kind, actor, error)
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
                p.with_name(p.name + ".manifest.json").unlink(missing_ok=True)  # beside backups made before the archive
                conn.execute(backups.update().where(backups.c.id == r.id).values(status="pruned"))
                audit(conn, actor="system:backup", action="backup.pruned", object_type="backup", object_id=str(r.id),
                      detail=f"older than {keep_days} days", at=now)  # fmt: skip
                n += 1
    return n


def list_backups(conn: Connection) -> list[dict[str, Any]]:
    rows = [dict(r) for r in conn.execute(select(backups).order_by(backups.c.id.desc()).limit(200)).mappings()]
    for r in rows:
        r["cause"] = cause_of(r.get("detail")) if r.get("status") == "failed" else None
    return rows


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
