"""``posgate db ...`` and ``posgate admin ...``: the database and provisioning from the shell.

Exit codes: 0 done, 1 refused (the message says why and what to do), 2 the database or master
key could not be opened.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer

DB_OPTION = typer.Option("sqlite:///posgate.db", "--db", envvar="POSGATE_DB", help="Database URL (SQLite file or postgresql://...).")

db_app = typer.Typer(help="The database: migrations.", no_args_is_help=True)
admin_app = typer.Typer(help="Provision merchants, terminals, cards and console users.", no_args_is_help=True)
merchant_app = typer.Typer(help="Merchants.", no_args_is_help=True)
terminal_app = typer.Typer(help="Terminals.", no_args_is_help=True)
card_app = typer.Typer(help="Cards of the built-in issuer.", no_args_is_help=True)
admin_app.add_typer(merchant_app, name="merchant")
admin_app.add_typer(terminal_app, name="terminal")
admin_app.add_typer(card_app, name="card")
payouts_app = typer.Typer(help="Payouts to the merchants' bank accounts (docs/payouts.md).", no_args_is_help=True)
admin_app.add_typer(payouts_app, name="payouts")
route_app = typer.Typer(help="The routing table: BIN ranges to the built-in issuer or an upstream link.", no_args_is_help=True)
stand_in_app = typer.Typer(help="Stand-in (STIP) limits while an upstream link is down.", no_args_is_help=True)
admin_app.add_typer(route_app, name="route")
admin_app.add_typer(stand_in_app, name="stand-in")


def register(app: typer.Typer) -> None:
    from posgate.store.ic_params_cli import aid_app, capk_app

    admin_app.add_typer(aid_app, name="aid")
    admin_app.add_typer(capk_app, name="capk")
    app.add_typer(db_app, name="db")
    app.add_typer(admin_app, name="admin")
    _register_console_users()


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def _database(url: str) -> Iterator[Any]:
    from sqlalchemy.exc import SQLAlchemyError

    from posgate.store.database import Database
    from posgate.store.keyring import KeyringError

    try:
        db = Database.open(url)
    except KeyringError as e:
        _fail(str(e), 2)
    except SQLAlchemyError as e:
        _fail(f"cannot open the database {url}: {type(e).__name__}: {str(e).splitlines()[0]}", 2)
    try:
        yield db
    finally:
        db.close()


@contextmanager
def _admin(url: str) -> Iterator[tuple[Any, Any]]:
    """(connection in a transaction, keyring); AdminError → exit 1 with its message."""
    from posgate.store.admin import AdminError

    with _database(url) as db:
        try:
            with db.engine.begin() as conn:
                yield conn, db.keyring
        except AdminError as e:
            _fail(str(e))


def _table(rows: list[dict[str, Any]], as_json: bool, empty: str) -> None:
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
        return
    if not rows:
        typer.echo(empty)
        return
    cols = list(rows[0])
    shown = [["" if r[c] is None else str(r[c]) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in shown)) for i, c in enumerate(cols)]
    typer.echo("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip())
    for row in shown:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


# -- db --------------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(db: str = DB_OPTION) -> None:
    """Apply the migrations (creates the database on first use)."""
    from posgate.store.migrate import current_revisions

    with _database(db) as database:
        typer.echo(f"database at revision {', '.join(current_revisions(database.engine))}")


# -- merchants ---------------------------------------------------------------------------------


@merchant_app.command("add")
def merchant_add(
    merchant_id: str = typer.Argument(..., help="15 digits (field 42)."),
    name: str = typer.Option(..., "--name", help="Name printed on receipts (Chinese)."),
    mcc: str = typer.Option(..., "--mcc", help="Merchant category code, 4 digits."),
    fee: str = typer.Option("0.60", "--fee", help="Merchant discount rate in percent, e.g. 0.60."),
    name_en: str = typer.Option("", "--name-en", help="Name in English."),
    db: str = DB_OPTION,
) -> None:
    """Add a merchant."""
    from posgate.store.admin import add_merchant

    try:
        bp = round(float(fee) * 100)
    except ValueError:
        _fail("--fee is a percentage such as 0.60")
    with _admin(db) as (conn, _):
        add_merchant(conn, merchant_id, name, mcc, bp, name_en=name_en)
    typer.echo(f"merchant {merchant_id} added")


@merchant_app.command("list")
def merchant_list(db: str = DB_OPTION, as_json: bool = typer.Option(False, "--json")) -> None:
    """List the merchants."""
    from posgate.store.admin import list_merchants

    with _admin(db) as (conn, _):
        _table(list_merchants(conn), as_json, "no merchants yet: posgate admin merchant add ...")


@merchant_app.command("reinstate")
def merchant_reinstate(
    merchant_id: str = typer.Argument(...),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the audit log)."),
    db: str = DB_OPTION,
) -> None:
    """Reinstate a suspended merchant (D6); the days without a sign-on count from today."""
    from posgate.store.admin import reinstate_merchant

    with _admin(db) as (conn, _):
        reinstate_merchant(conn, merchant_id, reason, actor="cli")
    typer.echo(f"merchant {merchant_id} reinstated")


@admin_app.command("sweep")
def admin_sweep(db: str = DB_OPTION, as_json: bool = typer.Option(False, "--json")) -> None:
    """The daily D6 sweep (for cron; ``posgate serve`` runs it itself at start and every local midnight):
    suspend the merchants that lapse today, warn about those that lapse tomorrow."""
    from dataclasses import asdict

    from posgate.store.admin import sweep_lapses

    with _admin(db) as (conn, _):
        result = sweep_lapses(conn)
    if as_json:
        typer.echo(json.dumps({"day": result.day, "suspended": result.suspended,
                               "warned": [asdict(w) for w in result.warned]}, indent=2))  # fmt: skip
        return
    for mid in result.suspended:
        typer.echo(f"{result.day}: merchant {mid} suspended (no terminal signed on for the lapse period, D6)")
    for w in result.warned:
        typer.echo(f"{result.day}: merchant {w.merchant_id} lapses on {w.lapse_day} unless a terminal signs on today "
                   f"(last sign-on {w.last_day})")  # fmt: skip
    if not result.suspended and not result.warned:
        typer.echo(f"{result.day}: no merchant lapses today or tomorrow")


# -- terminals -------------------------------------------------------------------------------------


@terminal_app.command("add")
def terminal_add(
    terminal_id: str = typer.Argument(..., help="8 digits (field 41)."),
    merchant_id: str = typer.Option(..., "--merchant", help="The merchant's 15-digit id."),
    tmk: str | None = typer.Option(None, "--tmk", help="TMK in hex (32 or 48 digits); generated when absent."),
    serial: str | None = typer.Option(None, "--serial", help="Device serial; else recorded at the first sign-on."),
    algorithm: str = typer.Option("des", "--algorithm", help="Key cipher: des, or sm4 (国密: sign-on 006, 32-digit TMK)."),
    db: str = DB_OPTION,
) -> None:
    """Add a terminal; prints the TMK's check value (and the TMK itself when generated)."""
    from posgate.store.admin import add_terminal, parse_tmk

    with _admin(db) as (conn, keyring):
        key = parse_tmk(tmk) if tmk else None
        new = add_terminal(conn, keyring, terminal_id, merchant_id, tmk=key, serial=serial, algorithm=algorithm.lower())
    typer.echo(f"terminal {terminal_id} added ({algorithm.upper()}); TMK check value {new.kcv}")
    if new.tmk_generated is not None:
        typer.echo(f"generated TMK (load it into the PIN pad, then discard this output): {new.tmk_generated.hex().upper()}")


@terminal_app.command("list")
def terminal_list(db: str = DB_OPTION, as_json: bool = typer.Option(False, "--json")) -> None:
    """List the terminals (check values only, never keys)."""
    from posgate.store.admin import list_terminals

    with _admin(db) as (conn, _):
        _table(list_terminals(conn), as_json, "no terminals yet: posgate admin terminal add ...")


@terminal_app.command("approve-device")
def terminal_approve_device(terminal_id: str = typer.Argument(...), serial: str = typer.Argument(...), db: str = DB_OPTION) -> None:
    """Approve a replacement device (D7); its next sign-on opens a new batch."""
    from posgate.store.admin import approve_device

    with _admin(db) as (conn, _):
        approve_device(conn, terminal_id, serial)
    typer.echo(f"device {serial} approved for terminal {terminal_id}; it may sign on now")


@terminal_app.command("set-algorithm")
def terminal_set_algorithm(
    terminal_id: str = typer.Argument(...),
    algorithm: str = typer.Argument(..., help="des, or sm4 (国密)."),
    tmk: str | None = typer.Option(None, "--tmk", help="A new TMK in hex for the new cipher; else the TMK stays."),
    db: str = DB_OPTION,
) -> None:
    """Switch a terminal between DES and SM4 keys; it must sign on again with the new scheme."""
    from posgate.store.admin import parse_tmk, set_algorithm

    with _admin(db) as (conn, keyring):
        key = parse_tmk(tmk) if tmk else None
        new = set_algorithm(conn, keyring, terminal_id, algorithm.lower(), tmk=key)
    typer.echo(f"terminal {terminal_id} now uses {algorithm.upper()} keys; TMK check value {new.kcv}; "
               "it will be asked to sign on again")  # fmt: skip


@terminal_app.command("resign")
def terminal_resign(terminal_id: str = typer.Argument(...), db: str = DB_OPTION) -> None:
    """Ask the terminal to sign on again (remote make-up sign-on, header requirement 3)."""
    from posgate.store.admin import request_resign

    with _admin(db) as (conn, _):
        request_resign(conn, terminal_id)
    typer.echo(f"terminal {terminal_id} will be asked to sign on again with its next reply")


@terminal_app.command("set-profile")
def terminal_set_profile(
    terminal_id: str = typer.Argument(...),
    name: str = typer.Argument(..., help="A dialect profile: see docs/dialect-profiles.md."),
    db: str = DB_OPTION,
) -> None:
    """Set the dialect profile the terminal speaks (its firmware's field encodings, MAC, PIN block format)."""
    from posgate.dialect.profiles import PROFILES
    from posgate.store.admin import set_profile

    if name not in PROFILES:
        _fail(f"no dialect profile {name!r}: one of {', '.join(PROFILES)}", 2)
    with _admin(db) as (conn, _):
        old = set_profile(conn, terminal_id, name)
    if old is None:
        typer.echo(f"terminal {terminal_id} already speaks {name}; nothing changed")
    else:
        typer.echo(f"terminal {terminal_id} now speaks {name} (was {old})")


# -- cards -----------------------------------------------------------------------------------------


@card_app.command("add")
def card_add(
    pan: str = typer.Argument(..., help="Card number (Luhn-checked)."),
    expiry: str = typer.Option(..., "--expiry", help="YYMM."),
    pin: str = typer.Option(..., "--pin", prompt=True, hide_input=True, help="The card's PIN (stored as a keyed verifier only)."),
    balance: str = typer.Option("0.00", "--balance", help="Balance (or credit line) in yuan, e.g. 1000.00."),
    kind: str = typer.Option("debit", "--kind", help="debit | credit"),
    organisation: str = typer.Option("CUP", "--organisation", help="CUP, VIS, MCC, JCB..."),
    chip: bool = typer.Option(False, "--chip", help="A chip (IC) card."),
    state: str = typer.Option("active", "--state", help="active | lost | stolen | restricted | blocked"),
    limit: str | None = typer.Option(None, "--limit", help="Per-transaction limit in yuan."),
    db: str = DB_OPTION,
) -> None:
    """Add a card to the built-in issuer."""
    from posgate.domain.money import AmountError, yuan_to_fen
    from posgate.store.admin import add_card

    try:
        bal = yuan_to_fen(balance)
        lim = yuan_to_fen(limit) if limit else None
    except AmountError as e:
        _fail(str(e))
    with _admin(db) as (conn, keyring):
        masked = add_card(conn, keyring, pan, expiry, pin, balance=bal, kind=kind, organisation=organisation.upper(),
                          chip=chip, state=state, per_txn_limit=lim)  # fmt: skip
    typer.echo(f"card {masked} added")


@card_app.command("list")
def card_list(db: str = DB_OPTION, as_json: bool = typer.Option(False, "--json")) -> None:
    """List the built-in issuer's cards (masked)."""
    from posgate.store.admin import list_cards

    with _admin(db) as (conn, _):
        _table(list_cards(conn), as_json, "no cards yet: posgate admin card add ...")


# -- payouts ---------------------------------------------------------------------------------------


@contextmanager
def _payouts(url: str) -> Iterator[tuple[Any, Any]]:
    """As ``_admin``, with the payouts' refusals (PayoutError) → exit 1 with their message."""
    from posgate.store.payouts import PayoutError

    with _admin(url) as (conn, keyring):
        try:
            yield conn, keyring
        except PayoutError as e:
            _fail(str(e))


@payouts_app.command("build")
def payouts_build(
    date_: str = typer.Option(..., "--date", help="The value date YYYY-MM-DD: pays business day date − settlement days (T+1)."),
    db: str = DB_OPTION,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Build the T+1 payouts of a value date from the settled, unpaid transactions less fees (run again: nothing new)."""
    from posgate.store.payouts import build_payouts

    with _payouts(db) as (conn, _):
        r = build_payouts(conn, date_, actor="cli")
    if as_json:
        typer.echo(json.dumps({"value_date": r.value_date, "built": r.built, "carried": r.carried, "existing": r.existing},
                              default=str, indent=2))  # fmt: skip
        return
    for p in r.built:
        typer.echo(f"payout #{p['id']} {p['merchant_id']} business day {p['business_day']}: {p['lines']} lines, "
                   f"{p['amount'] / 100:.2f} CNY ({p['status']}{', ' + p['reason'] if p['reason'] else ''})")  # fmt: skip
    for c in r.carried:
        typer.echo(f"{c['merchant_id']}: {c['amount'] / 100:.2f} CNY owed by the merchant, carried into the next payout")
    for mid in r.existing:
        typer.echo(f"{mid}: built already for {r.value_date}")
    if not (r.built or r.carried or r.existing):
        typer.echo(f"{r.value_date}: nothing settled to pay out")


@payouts_app.command("export")
def payouts_export(
    date_: str = typer.Option(..., "--date", help="Value date YYYY-MM-DD: pending payouts up to it go into the file."),
    out_dir: str = typer.Option(".", "--dir", help="Directory for the payout file (written mode 0600)."),
    db: str = DB_OPTION,
) -> None:
    """Write the payout file for the bank (docs/payouts.md): it holds account numbers in clear."""
    import os
    from pathlib import Path

    from posgate.store.payouts import export_payouts

    with _payouts(db) as (conn, keyring):
        r = export_payouts(conn, keyring, date_, actor="cli")
        if r is not None:
            path = Path(out_dir) / r.name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(r.content)
    if r is None:
        typer.echo(f"{date_}: no payout waits for a file")
        return
    typer.echo(f"{path}: {r.count} payouts, {r.total / 100:.2f} CNY" + (f"; {len(r.held)} held" if r.held else ""))


@payouts_app.command("import-return")
def payouts_import_return(file: str = typer.Argument(..., help="The bank's return file (CSV, docs/payouts.md)."), db: str = DB_OPTION) -> None:
    """Record the bank's answers: paid, failed (held with the reason) or retry (in the next file)."""
    from pathlib import Path

    from posgate.store.payouts import import_return

    try:
        content = Path(file).read_bytes()
    except OSError as e:
        _fail(f"cannot read {file}: {e.strerror}")
    with _payouts(db) as (conn, _):
        done = import_return(conn, content, actor="cli")
    for d in done:
        typer.echo(f"{d['ref']}: {d['status']}" + (" (recorded already)" if d.get("already") else "")
                   + (f" — {d['reason']}" if d.get("reason") else ""))  # fmt: skip


@payouts_app.command("retry")
def payouts_retry(payout_id: int = typer.Argument(...), db: str = DB_OPTION) -> None:
    """Send a payout the bank refused again, in the next payout file."""
    from posgate.store.payouts import retry_payout

    with _payouts(db) as (conn, _):
        retry_payout(conn, payout_id, actor="cli")
    typer.echo(f"payout #{payout_id} goes into the next payout file")


@payouts_app.command("list")
def payouts_list(
    merchant_id: str = typer.Option("", "--merchant"),
    status: str = typer.Option("", "--status", help="pending | held | exported | paid | failed"),
    db: str = DB_OPTION,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List payouts (newest value date first)."""
    from posgate.store.payouts import list_payouts, payout_ref

    with _payouts(db) as (conn, _):
        rows = list_payouts(conn, merchant_id or None, status)
    shown = [{"ref": payout_ref(r["id"]), "merchant_id": r["merchant_id"], "kind": r["kind"], "business_day": r["business_day"],
              "value_date": r["value_date"], "amount": f"{r['amount'] / 100:.2f}", "status": r["status"], "reason": r["reason"]}
             for r in rows]  # fmt: skip
    _table(shown, as_json, "no payouts yet: posgate admin payouts build --date YYYY-MM-DD")


# -- console users (the console's; delegated) --------------------------------------------------------


@route_app.command("list")
def route_list(db: str = DB_OPTION, as_json: bool = typer.Option(False, "--json")) -> None:
    """The routes, highest priority first (no route: every card goes to the built-in issuer)."""
    from posgate.store.admin import list_routes

    with _admin(db) as (conn, _):
        _table(list_routes(conn), as_json, "no routes: every card goes to the built-in issuer")


@route_app.command("add")
def route_add(
    bin_low: str = typer.Argument(..., help="BIN prefix, or the low end of a range (digits)."),
    target: str = typer.Argument(..., help="'issuer' (built-in) or an upstream link's name (posgate serve --upstream NAME=...)."),
    bin_high: str | None = typer.Option(None, "--to", help="High end of the range (same length as BIN_LOW)."),
    card_kind: str = typer.Option("debit", "--kind", help="debit | credit | foreign | qr (for stand-in limits)."),
    priority: int = typer.Option(0, "--priority", help="Higher wins when ranges overlap."),
    db: str = DB_OPTION,
) -> None:
    """Route a BIN range to the built-in issuer or an upstream link."""
    from posgate.store.admin import add_route

    with _admin(db) as (conn, _):
        pk = add_route(conn, bin_low, bin_high, target, card_kind=card_kind, priority=priority)
    typer.echo(f"route {pk}: {bin_low}{'-' + bin_high if bin_high else ''} -> {target}")


@route_app.command("remove")
def route_remove(route_id: int = typer.Argument(...), db: str = DB_OPTION) -> None:
    """Remove a route (its cards go back to the next matching route, or the built-in issuer)."""
    from posgate.store.admin import remove_route

    with _admin(db) as (conn, _):
        remove_route(conn, route_id)
    typer.echo(f"route {route_id} removed")


@stand_in_app.command("list")
def stand_in_list(db: str = DB_OPTION, as_json: bool = typer.Option(False, "--json")) -> None:
    """Stand-in limits (no limit for a card kind: no stand-in, the request declines 92)."""
    from posgate.store.admin import list_stand_in_limits

    with _admin(db) as (conn, _):
        _table(list_stand_in_limits(conn), as_json, "no stand-in limits: nothing is approved while a link is down")


@stand_in_app.command("set")
def stand_in_set(
    card_kind: str = typer.Argument(..., help="debit | credit | foreign | qr"),
    max_amount: int = typer.Argument(..., help="Per-transaction limit in fen."),
    daily_max: int | None = typer.Option(None, "--daily", help="The card's approved debits over 24 h, in fen."),
    merchant_id: str | None = typer.Option(None, "--merchant", help="Only at this merchant (field 42)."),
    db: str = DB_OPTION,
) -> None:
    """Set the stand-in limit of a card kind (replaces the previous one)."""
    from posgate.store.admin import set_stand_in_limit

    with _admin(db) as (conn, _):
        pk = set_stand_in_limit(conn, card_kind, max_amount, merchant_id=merchant_id, daily_max=daily_max)
    typer.echo(f"stand-in limit {pk}: {card_kind} up to {max_amount} fen")


@admin_app.command("upstream-rekey")
def upstream_rekey(
    link: str = typer.Option("*", "--link", help="The upstream link (posgate serve --upstream NAME=...); '*': all."),
    db: str = DB_OPTION,
) -> None:
    """Ask for new host-to-host MAC keys: every running host asks the network on that link's
    connections within a few seconds (docs/upstream.md, MAC and key change)."""
    from datetime import UTC, datetime

    from posgate.network.upstream import REKEY_SETTING
    from posgate.store.admin import set_setting

    with _admin(db) as (conn, _):
        set_setting(conn, REKEY_SETTING, f"{datetime.now(UTC).isoformat(timespec='microseconds')} {link}")
    typer.echo(f"new MAC keys asked on {'every upstream link' if link == '*' else 'upstream link ' + link}: "
               "running hosts ask the network within a few seconds")  # fmt: skip


def _register_console_users() -> None:
    try:
        mod = importlib.import_module("posgate.console.cli")
    except ModuleNotFoundError as e:
        if e.name and "posgate.console.cli".startswith(e.name):
            return
        raise
    register_users: Callable[[typer.Typer], None] | None = getattr(mod, "register_admin", None)
    if register_users is not None:
        register_users(admin_app)


# -- bulk history --------------------------------------------------------------------------------


@admin_app.command("load-demo-history")
def load_demo_history(
    rows: int = typer.Option(..., "--rows", help="How many past sales to load."),
    merchants: int = typer.Option(1000, "--merchants", help="History merchants (8981000888xxxxx), created if missing."),
    days: int = typer.Option(365, "--days", help="Business days before today the sales are spread over."),
    terminals_per_merchant: int = typer.Option(2, "--terminals-per-merchant"),
    cards: int = typer.Option(100_000, "--cards", help="Distinct cardholders (each PAN hashed and sealed once)."),
    seed: int = typer.Option(1, "--seed", help="Same seed, same history; another seed for a second load."),
    first_batch: int = typer.Option(1, "--first-batch", help="Batch number of the first day (past the last load's)."),
    db: str = DB_OPTION,
) -> None:
    """Fill the database with past sales, fast, for demos and growth tests (docs/benchmarks.md):
    COPY on PostgreSQL, large executemany transactions on SQLite; card numbers sealed as the host
    seals them. Stop the host first on SQLite (the load holds the write lock between chunks)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from posgate.store.bulkload import HistoryPlan, load_history

    plan = HistoryPlan(rows=rows, merchants=merchants, days=days, terminals_per_merchant=terminals_per_merchant,
                       cards=cards, seed=seed, first_batch=first_batch)  # fmt: skip
    try:
        plan.check()
    except ValueError as e:
        _fail(str(e))
    with _database(db) as database:
        bar = Progress(TextColumn("[bold]history"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       TimeRemainingColumn(), console=Console(stderr=True))  # fmt: skip
        with bar:
            task = bar.add_task("load", total=rows)
            result = load_history(database, plan, progress=lambda done, _total: bar.update(task, completed=done))
    typer.echo(f"loaded {result.rows:,} sales ({result.first_day} .. {result.last_day}) at {result.terminals} terminals "
               f"with {result.cards:,} cards in {result.seconds:.1f} s ({result.rows_per_s:,.0f} rows/s)")  # fmt: skip
