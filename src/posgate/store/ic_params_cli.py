"""``posgate admin aid ...`` and ``posgate admin capk ...``: the IC parameters and CA public keys
the host downloads to terminals (docs/dialect.md 3.12). A change asks every terminal to
download again (header requirement 5 / 4). Exit codes as ``posgate admin``: 1 refused (a CAPK
whose check value does not match, an unknown AID...), nothing changed."""

from __future__ import annotations

from typing import Any

import typer

from posgate.store.cli import DB_OPTION, _admin, _fail, _table

aid_app = typer.Typer(help="IC parameters per application (AID), downloaded with 0800/380.", no_args_is_help=True)
capk_app = typer.Typer(help="CA public keys (CAPK), downloaded with 0800/370.", no_args_is_help=True)


def limit_fen(text: str) -> int:
    """A limit in yuan → fen; unlike an amount, a limit may be 0.00 (none offline, no-CVM off)."""
    from posgate.domain.money import AmountError, yuan_to_fen

    try:
        return yuan_to_fen(text)
    except AmountError:
        if text.strip().replace("0", "").replace(".", "") == "" and text.strip():
            return 0
        raise


def _yuan(fen: int) -> str:
    from posgate.domain.money import fen_to_yuan

    return fen_to_yuan(fen)


@aid_app.command("list")
def aid_list(db: str = DB_OPTION, as_json: bool = typer.Option(False, "--json")) -> None:
    """List the AIDs and their parameters (amounts in yuan)."""
    from posgate.store.ic_params import list_aids

    with _admin(db) as (conn, _):
        rows: list[dict[str, Any]] = []
        for a in list_aids(conn):
            d = a.as_dict()
            for k in ("floor_limit", "threshold", "ec_limit", "cl_floor_limit", "cl_transaction_limit", "cvm_limit"):
                d[k] = _yuan(d[k])
            rows.append(d)
        _table(rows, as_json, "no AIDs yet: posgate admin aid add A000000333010101 --no-cvm-limit 1000.00")


@aid_app.command("add")
def aid_add(
    aid: str = typer.Argument(..., help="The application identifier (9F06), hex, e.g. A000000333010101."),
    no_cvm_limit: str = typer.Option("1000.00", "--no-cvm-limit", help="Contactless no-CVM limit (DF21, 免密免签) in yuan."),
    cl_limit: str = typer.Option("9999999999.99", "--cl-limit", help="Contactless transaction limit (DF20) in yuan."),
    cl_floor_limit: str = typer.Option("0.00", "--cl-floor-limit", help="Contactless offline floor limit (DF19) in yuan."),
    floor_limit: str = typer.Option("0.00", "--floor-limit", help="Floor limit (9F1B) in yuan."),
    threshold: str = typer.Option("0.00", "--threshold", help="Biased random selection threshold (DF15) in yuan."),
    target_percent: int = typer.Option(99, "--target-percent", help="Target percent (DF17)."),
    max_target_percent: int = typer.Option(99, "--max-target-percent", help="Maximum target percent (DF16)."),
    ec_limit: str = typer.Option("1000.00", "--ec-limit", help="Electronic cash transaction limit (9F7B) in yuan."),
    app_version: str = typer.Option("0020", "--app-version", help="Application version (9F08), 4 hex digits."),
    tac_default: str = typer.Option("D84000A800", "--tac-default", help="TAC default (DF11), 10 hex digits."),
    tac_online: str = typer.Option("D84004F800", "--tac-online", help="TAC online (DF12), 10 hex digits."),
    tac_denial: str = typer.Option("0010000000", "--tac-denial", help="TAC denial (DF13), 10 hex digits."),
    ddol: str = typer.Option("9F3704", "--ddol", help="Default DDOL (DF14), hex."),
    exact: bool = typer.Option(False, "--exact", help="Exact AID match only (DF01 = 1)."),
    online_pin: bool = typer.Option(True, "--online-pin/--no-online-pin", help="Online PIN capability (DF18)."),
    db: str = DB_OPTION,
) -> None:
    """Add an AID, or replace its parameters; every terminal is asked to download again."""
    from posgate.dialect.ic_params import AidParams
    from posgate.domain.money import AmountError
    from posgate.store.ic_params import put_aid

    try:
        amounts = {name: limit_fen(v) for name, v in (
            ("cvm_limit", no_cvm_limit), ("cl_transaction_limit", cl_limit), ("cl_floor_limit", cl_floor_limit),
            ("floor_limit", floor_limit), ("threshold", threshold), ("ec_limit", ec_limit))}  # fmt: skip
    except AmountError as e:
        _fail(str(e))
    params = AidParams(aid=aid, app_version=app_version, asi=1 if exact else 0, tac_default=tac_default,
                       tac_online=tac_online, tac_denial=tac_denial, target_percent=target_percent,
                       max_target_percent=max_target_percent, ddol=ddol, online_pin=online_pin, **amounts)  # fmt: skip
    with _admin(db) as (conn, _):
        saved = put_aid(conn, params)
    typer.echo(f"AID {saved.aid} saved: no-CVM limit {_yuan(saved.cvm_limit)}; terminals will download it")


@aid_app.command("remove")
def aid_remove(aid: str = typer.Argument(..., help="The AID (hex)."), db: str = DB_OPTION) -> None:
    """Remove an AID; every terminal is asked to download the list again."""
    from posgate.store.ic_params import remove_aid

    with _admin(db) as (conn, _):
        remove_aid(conn, aid)
    typer.echo(f"AID {aid.upper()} removed")


@capk_app.command("list")
def capk_list(db: str = DB_OPTION, as_json: bool = typer.Option(False, "--json"),
              modulus: bool = typer.Option(False, "--modulus", help="Show the whole modulus.")) -> None:  # fmt: skip
    """List the CA public keys."""
    from posgate.store.ic_params import list_capks

    with _admin(db) as (conn, _):
        rows = []
        for c in list_capks(conn):
            d = c.as_dict()
            n = len(c.modulus) // 2
            if not modulus and not as_json:
                d["modulus"] = f"{c.modulus[:8]}…{c.modulus[-8:]} ({n * 8} bits)"
            rows.append(d)
        _table(rows, as_json, "no CA public keys yet: posgate admin capk add --rid A000000333 --index 08 ...")


@capk_app.command("add")
def capk_add(
    rid: str = typer.Option(..., "--rid", help="Registered application provider id (9F06), 10 hex digits."),
    index: str = typer.Option(..., "--index", help="CA public key index (9F22), 2 hex digits."),
    modulus: str = typer.Option(..., "--modulus", help="The modulus (DF02), hex."),
    exponent: str = typer.Option("03", "--exponent", help="The exponent (DF04): 03 or 010001."),
    expiry: str = typer.Option(..., "--expiry", help="Expiry (DF05), YYYYMMDD."),
    check_value: str = typer.Option(..., "--check-value", help="SHA-1 of RID, index, modulus, exponent (DF03), 40 hex digits."),
    db: str = DB_OPTION,
) -> None:
    """Add a CA public key (refused when its check value does not match); terminals download it."""
    from posgate.dialect.ic_params import Capk
    from posgate.store.ic_params import put_capk

    key = Capk(rid=rid, index=index, expiry=expiry, modulus=modulus, exponent=exponent, check_value=check_value)
    with _admin(db) as (conn, _):
        saved = put_capk(conn, key)
    typer.echo(f"CA public key {saved.rid}/{saved.index} saved (check value verified); terminals will download it")


@capk_app.command("remove")
def capk_remove(rid: str = typer.Argument(..., help="RID (hex)."), index: str = typer.Argument(..., help="Index (hex)."),
                db: str = DB_OPTION) -> None:  # fmt: skip
    """Remove a CA public key; every terminal is asked to download the list again."""
    from posgate.store.ic_params import remove_capk

    with _admin(db) as (conn, _):
        remove_capk(conn, rid, index)
    typer.echo(f"CA public key {rid.upper()}/{index.upper()} removed")


