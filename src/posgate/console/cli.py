"""``posgate backup``, ``posgate restore`` and ``posgate admin user ...``.

Exit codes: 0 done, 1 refused or verification failed (the message says why), 2 the database could
not be opened.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

DB_OPTION = typer.Option("sqlite:///posgate.db", "--db", envvar="POSGATE_DB", help="Database URL (SQLite file or postgresql://...).")
user_app = typer.Typer(help="Console users (no default passwords: a new or reset user gets a one-time password).",
                       no_args_is_help=True)  # fmt: skip


def register(app: typer.Typer) -> None:
    app.command("backup")(backup_cmd)
    app.command("restore")(restore_cmd)


def register_admin(admin_app: typer.Typer) -> None:
    """Called by ``posgate.store.cli``: adds ``posgate admin user ...``."""
    admin_app.add_typer(user_app, name="user")


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def _engine(url: str) -> Iterator[Any]:
    from sqlalchemy.exc import SQLAlchemyError

    from posgate.console.db import make_engine
    from posgate.store.engine import normalise_url

    try:
        engine = make_engine(normalise_url(url))
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except SQLAlchemyError as e:
        _fail(f"cannot open the database {url}: {type(e).__name__}: {str(e).splitlines()[0]}", 2)
    try:
        yield engine
    finally:
        engine.dispose()


def backup_cmd(
    db: str = DB_OPTION,
    directory: Path = typer.Option(None, "--dir", help="Where to write it (default: 'backups' beside a SQLite file, else ./backups)."),
    keep_days: int = typer.Option(0, "--keep-days", help="Also delete backups older than this many days (0: keep all)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Back up the database into one archive, mode 0600: the copy (SQLite online backup API; pg_dump for
    PostgreSQL) and its verification manifest. The master key is not in it: keep the key file apart."""
    from posgate.console import backup

    with _engine(db) as engine:
        if directory is None:
            directory = (Path(str(engine.url.database)).resolve().parent / "backups"
                         if engine.dialect.name == "sqlite" and engine.url.database else Path("backups"))  # fmt: skip
        with backup.progress_bar("backup", show=sys.stderr.isatty()) as progress:
            bid, manifest, error = backup.run_backup(engine, directory, kind="cli", actor="cli", progress=progress)
        if error or manifest is None:
            _fail(f"backup failed: {error}")
        assert manifest is not None
        pruned = backup.prune(engine, keep_days) if keep_days > 0 else 0
    if as_json:
        typer.echo(json.dumps({"id": bid, "pruned": pruned, **manifest}, indent=2))
    else:
        typer.echo(f"backup #{bid}: {manifest['path']} (archive, {manifest['size']:,} bytes, "
                   f"{manifest['row_counts'].get('transactions', 0)} transactions, sha256 {manifest['sha256'][:16]}…)")  # fmt: skip
        if pruned:
            typer.echo(f"deleted {pruned} backups older than {keep_days} days")


def restore_cmd(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A backup archive (.tar from 'posgate backup' or the console)."),
    db: str = typer.Option(..., "--db", help="The database to restore INTO (stop the host and console first)."),
    key_file: Path = typer.Option(None, "--key-file", envvar="POSGATE_MASTER_KEY_FILE",
                                  help="The master key file of the backed-up database (not in the archive; required)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Restore a backup archive and verify it: the key file must be the archive's (checked before
    anything is written; a new key is never made), then row counts and a checksum of the transactions."""
    from posgate.console.backup import BackupError, progress_bar, restore
    from posgate.store.keyring import default_key_path

    if key_file is None:
        _fail("--key-file is required: the master key file of the database that was backed up (the archive does not "
              "contain it; without it the restored card data and keys cannot be read)", 2)  # fmt: skip
    try:
        with progress_bar("restore", show=sys.stderr.isatty()) as progress:
            result = restore(file, db, key_file, progress=progress)
    except BackupError as e:
        _fail(str(e))
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    typer.echo(f"restored {file.name} into {db}: verified ({sum(result['row_counts'].values())} rows in "
               f"{len(result['row_counts'])} tables, transactions checksum {result['txn_checksum'][:16]}…, "
               f"master key {key_file} matches)")  # fmt: skip
    default = default_key_path(db)
    if not (default.exists() and default.resolve() == Path(key_file).resolve()):
        typer.echo(f"start the host on it with POSGATE_MASTER_KEY_FILE={key_file} (or keep that file at {default})")


# ------------------------------------------------------------------ admin user


@contextmanager
def _users(db: str) -> Iterator[Any]:
    from posgate.console.txns import ConsoleError

    with _engine(db) as engine:
        try:
            with engine.begin() as conn:
                yield conn
        except ConsoleError as e:
            _fail(e.message.format(**e.fields))


def _cli_principal(conn: Any) -> Any:
    from posgate.console.auth import ACQUIRER_ADMIN, Principal

    return Principal(user_id=0, username="cli", display_name="cli", role=ACQUIRER_ADMIN, merchant_id=None, csrf="",
                     session_id=0, kind="cli")  # fmt: skip


def _user_id(conn: Any, username: str) -> int:
    from sqlalchemy import select

    from posgate.store.console_schema import users

    uid = conn.execute(select(users.c.id).where(users.c.username == username)).scalar()
    if uid is None:
        _fail(f"no user {username} ('posgate admin user list' shows the users)")
    return int(uid)


@user_app.command("add")
def user_add(
    username: str = typer.Argument(...),
    role: str = typer.Option(..., "--role", help="acquirer_admin | support | merchant_admin | merchant_clerk"),
    merchant: str = typer.Option(None, "--merchant", help="Merchant id (field 42) for merchant roles."),
    name: str = typer.Option("", "--name", help="Display name."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin instead of generating one."),
    db: str = DB_OPTION,
) -> None:
    """Create a console user. Prints a one-time password unless --password-stdin."""
    from posgate.console.users import create_user

    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    with _users(db) as conn:
        uid, pw = create_user(conn, username=username, role=role, merchant_id=merchant, password=password,
                              display_name=name, actor="cli", must_change=not password_stdin)  # fmt: skip
    typer.echo(f"user {username} (#{uid}, {role}) created")
    if not password_stdin:
        typer.echo(f"one-time password: {pw}  (must be changed at first login)")


@user_app.command("list")
def user_list(db: str = DB_OPTION, as_json: bool = typer.Option(False, "--json")) -> None:
    from posgate.console.users import list_users

    with _users(db) as conn:
        rows = list_users(conn, _cli_principal(conn))
    out = [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()} for r in rows]
    if as_json:
        typer.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    for r in out:
        state = "disabled" if not r["active"] else ("locked" if r["locked_until"] else "active")
        typer.echo(f"{r['username']:<16} {r['role']:<15} {r['merchant_id'] or '-':<16} {state}")


@user_app.command("passwd")
def user_passwd(username: str = typer.Argument(...), db: str = DB_OPTION) -> None:
    """Issue a new one-time password (the user's sessions are logged out)."""
    from posgate.console.users import reset_password

    with _users(db) as conn:
        pw = reset_password(conn, _cli_principal(conn), _user_id(conn, username))
    typer.echo(f"one-time password for {username}: {pw}  (must be changed at first login)")


@user_app.command("unlock")
def user_unlock(username: str = typer.Argument(...), db: str = DB_OPTION) -> None:
    from posgate.console.users import unlock

    with _users(db) as conn:
        unlock(conn, _cli_principal(conn), _user_id(conn, username))
    typer.echo(f"{username} unlocked")


@user_app.command("disable")
def user_disable(username: str = typer.Argument(...), db: str = DB_OPTION) -> None:
    from posgate.console.users import set_active

    with _users(db) as conn:
        set_active(conn, _cli_principal(conn), _user_id(conn, username), False)
    typer.echo(f"{username} disabled")


@user_app.command("enable")
def user_enable(username: str = typer.Argument(...), db: str = DB_OPTION) -> None:
    from posgate.console.users import set_active

    with _users(db) as conn:
        set_active(conn, _cli_principal(conn), _user_id(conn, username), True)
    typer.echo(f"{username} enabled")
