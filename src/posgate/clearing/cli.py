"""``posgate clearing ...``: import the network's clearing file, report a day, and (the network
side) write the clearing file from the network's database.

Exit codes: 0 done, 1 refused (a bad file, a file imported before, no import for the date: the
message says why and nothing changed), 2 the database or the file could not be opened.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from posgate.store.cli import DB_OPTION, _database, _fail

clearing_app = typer.Typer(help="Daily clearing: import the network's clearing file, match it, report differences.",
                           no_args_is_help=True)  # fmt: skip
DATE_HELP = "Business date, YYYYMMDD or YYYY-MM-DD."


def register(app: typer.Typer) -> None:
    app.add_typer(clearing_app, name="clearing")


def _yuan(fen: int | None) -> str:
    from posgate.console.fmt import yuan

    return "" if fen is None else yuan(fen)


@clearing_app.command("import")
def import_cmd(
    file: Path = typer.Argument(..., help="The clearing file the network wrote for one business day."),
    db: str = DB_OPTION,
    by: str = typer.Option("cli", "--by", help="Who imports it (kept in the audit log)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Import a clearing file and match every record against our transactions. The same file
    (or a second file for the same day) is refused: nothing changes."""
    from posgate.clearing.file import ClearingFileError
    from posgate.clearing.service import ClearingError, import_file

    try:
        data = file.read_bytes()
    except OSError as e:
        _fail(f"cannot read {file}: {e.strerror or e}", 2)
    with _database(db) as database:
        try:
            with database.engine.begin() as conn:
                result = import_file(conn, data, file_name=file.name, actor=by)
        except ClearingFileError as e:
            _fail(f"{file.name}: {e}; nothing was imported")
        except ClearingError as e:
            _fail(str(e))
    if as_json:
        typer.echo(json.dumps({"file_id": result.file_id, "business_date": result.business_date, "records": result.records,
                               "outcomes": result.outcomes, "differences": result.differences}, indent=2))  # fmt: skip
        return
    typer.echo(
        f"imported {file.name}: business date {result.business_date}, {result.records} records (import #{result.file_id})"
    )
    for outcome, n in result.outcomes.items():
        typer.echo(f"  {outcome:<18} {n}")
    typer.echo(
        f"{result.differences} difference(s) for the support desk" if result.differences else "no differences"
    )


@clearing_app.command("report")
def report_cmd(
    date: str = typer.Option(..., "--date", help=DATE_HELP),
    db: str = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """The day's import: totals, outcome counts, and every difference with its state."""
    from posgate.clearing.service import ClearingError, report

    with _database(db) as database:
        try:
            with database.engine.connect() as conn:
                rep = report(conn, date)
        except ClearingError as e:
            _fail(str(e))
    if as_json:
        typer.echo(json.dumps(rep, ensure_ascii=False, indent=2, default=str))
        return
    for f in rep["files"]:
        typer.echo(f"business date {f['business_date']}: import #{f['id']} of {f['file_name']} from {f['sender']} "
                   f"by {f['imported_by']}")  # fmt: skip
        typer.echo(f"  records {f['record_count']}: debits {f['debit_count']} / {_yuan(f['debit_total'])}, "
                   f"credits {f['credit_count']} / {_yuan(f['credit_total'])}")  # fmt: skip
        typer.echo("  " + ", ".join(f"{k} {v}" for k, v in f["outcomes"].items()))
    diffs: list[dict[str, Any]] = rep["differences"]
    if not diffs:
        typer.echo("no differences")
        return
    typer.echo(f"{len(diffs)} difference(s):")
    head = ("id", "kind", "status", "terminal", "merchant", "stan", "rrn", "network", "ours", "effect")
    rows = [(str(d["id"]), d["kind"], d["status"], d["terminal_id"], d["merchant_id"], d["stan"], d["rrn"],
             _yuan(d["network_amount"]), _yuan(d["our_amount"]), _yuan(d["effect"])) for d in diffs]  # fmt: skip
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    typer.echo("  " + "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip())
    for r in rows:
        typer.echo("  " + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


@clearing_app.command("network-file")
def network_file_cmd(
    date: str = typer.Option(..., "--date", help=DATE_HELP),
    network_db: str = typer.Option(
        ..., "--network-db", envvar="POSGATE_NETWORK_DB", help="The network's database URL."
    ),
    out: Path = typer.Option(..., "--out", help="Where to write the clearing file."),
) -> None:
    """(The network side.) Write the clearing file of a business date from the network's records."""
    from sqlalchemy.exc import SQLAlchemyError

    from posgate.clearing.network_records import build_clearing_file
    from posgate.clearing.service import ClearingError, compact

    try:
        day = compact(date)
    except ClearingError as e:
        _fail(str(e), 2)
    try:
        built = build_clearing_file(network_db, day, out)
    except SQLAlchemyError as e:
        _fail(
            f"cannot read the network's records at {network_db}: {type(e).__name__}: {str(e).splitlines()[0]}",
            2,
        )
    except OSError as e:
        _fail(f"cannot write {out}: {e.strerror or e}", 2)
    typer.echo(f"wrote {built.path}: business date {day}, {built.records} records; debits {built.debit_count} / "
               f"{_yuan(built.debit_total)}, credits {built.credit_count} / {_yuan(built.credit_total)}")  # fmt: skip
