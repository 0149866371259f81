"""One business day on both sides, built so that every matching outcome occurs once.

Acquirer (``transactions``, day 2025-06-01, Demo Mart):      network (``network_transactions``):
  1 sale 100.00                                              sale 100.00 (twice: a duplicate)
  2 sale 50.00                                               sale 55.00           amount mismatch
  3 sale 30.00, reversed by us                               sale 30.00           response mismatch
  4 sale 20.00                                               —                    missing on theirs
  —                                                          sale 10.00           missing on ours
  6 refund 8.00                                              refund 8.00          matched
  7 sale 9.00 declined                                       —                    nothing
  8 balance inquiry                                          —                    nothing
  —                                                          a reversal, a declined sale: not in the file
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert

from posgate.domain.masking import mask_pan
from posgate.store import schema as s

DAY = "2025-06-01"
DATE = "20250601"
MART = "898100012340001"
PAN = "6212142000000000012"
EXPECTED = {"matched": 2, "amount_mismatch": 1, "response_mismatch": 1, "missing_ours": 1, "missing_theirs": 1,
            "duplicate": 1, "no_effect": 0}  # fmt: skip


def add_txn(conn: Connection, keyring: Any, *, stan: str, amount: int, op: str = "sale", pc: str = "000000", rc: str = "00",
            status: str | None = None, mti: str = "0200", tid: str = "10000001", day: str = DAY,
            route: str = "cupnet") -> int:  # fmt: skip
    values = dict(
        created_at=datetime(2025, 6, 1, 3, 0, tzinfo=UTC), day=day, terminal_id=tid, merchant_id=MART, batch_no="000001",
        stan=stan, mti=mti, operation=op, processing_code=pc, amount=amount, currency="156", pan_hash=keyring.pan_hash(PAN),
        pan_masked=mask_pan(PAN), pan_enc=keyring.encrypt_pan(PAN), card_organisation="CUP", entry_mode="021",
        response_code=rc, auth_code="123456" if rc == "00" else None, rrn=f"000000{stan}",
        status=status or ("approved" if rc == "00" else "declined"), refunded_amount=0, request_digest=f"clr-{tid}-{stan}-{mti}",
        trace=[], signed=True, source="terminal", operator="01",
        route=route, upstream_stan=stan if route != "issuer" else None, upstream_rrn=f"000000{stan}" if route != "issuer" else None,
    )  # fmt: skip
    return int(
        conn.execute(insert(s.transactions).values(**values).returning(s.transactions.c.id)).scalar_one()
    )


def acquirer_day(conn: Connection, keyring: Any) -> dict[str, int]:
    return {
        "matched": add_txn(conn, keyring, stan="000001", amount=100_00),
        "amount": add_txn(conn, keyring, stan="000002", amount=50_00),
        "reversed": add_txn(conn, keyring, stan="000003", amount=30_00, status="reversed"),
        "theirs": add_txn(conn, keyring, stan="000004", amount=20_00),
        "refund": add_txn(conn, keyring, stan="000006", amount=8_00, op="refund", pc="200000", mti="0220"),
        "declined": add_txn(conn, keyring, stan="000007", amount=9_00, rc="51"),
        "balance": add_txn(conn, keyring, stan="000008", amount=0, op="balance", pc="310000"),
    }


def network_row(stan: str, amount: int, *, pc: str = "000000", mti: str = "0200", rc: str = "00", kind: str = "authorisation",
                reversed: bool = False) -> dict[str, Any]:  # fmt: skip
    return dict(
        business_date=DATE, acquirer_id="00049990", forwarding_id=None, rrn=f"000000{stan}", stan=stan,
        terminal_id="10000001", merchant_id=MART, mti=mti, processing_code=pc, amount_cents=amount, currency="156",
        response_code=rc, auth_code="123456" if rc == "00" else None, pan_masked=mask_pan(PAN), pan_token="ab" * 32,
        card_kind="debit", transmission_time="0601110000", original_stan=None, original_rrn=None, stand_in=False,
        kind=kind, reversed=reversed, created_at=datetime(2025, 6, 1, 3, 0, tzinfo=UTC),
    )  # fmt: skip


def network_day() -> list[dict[str, Any]]:
    return [
        network_row("000001", 100_00),
        network_row("000001", 100_00),  # the network cleared it twice
        network_row("000002", 55_00),
        network_row("000003", 30_00),
        network_row("000005", 10_00),
        network_row("000006", 8_00, pc="200000", mti="0220"),
        network_row("000009", 40_00, reversed=True),  # reversed at the network: not cleared
        network_row("000009", 40_00, kind="reversal"),
        network_row("000010", 70_00, rc="51"),  # declined: not cleared
        network_row("000011", 70_00, pc="030000", mti="0100"),  # a pre-authorisation clears nothing
    ]


def write_network_day(url: str, rows: list[dict[str, Any]] | None = None) -> None:
    from posgate.clearing.network_records import create_network_schema, network_transactions
    from posgate.store.engine import make_engine

    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            create_network_schema(conn)
            conn.execute(insert(network_transactions), rows if rows is not None else network_day())
    finally:
        engine.dispose()


def import_day(db: Any, actor: str = "admin") -> int:
    """The day on both sides in ``db`` (a migrated acquirer database with the demo data),
    the network's file made from :func:`network_day` and imported; returns the import's id."""
    from posgate.clearing.file import format_clearing_file
    from posgate.clearing.network_records import (
        clearing_rows,
        create_network_schema,
        network_transactions,
        to_record,
    )
    from posgate.clearing.service import import_file
    from posgate.store.engine import make_engine

    net = make_engine("sqlite://")  # one connection: the in-memory network database lives as long as it
    with net.connect() as nconn:
        create_network_schema(nconn)
        nconn.execute(insert(network_transactions), network_day())
        records = [to_record(r) for r in clearing_rows(nconn, DATE)]
    net.dispose()
    data = format_clearing_file(records, business_date=DATE, sender="CUPNETWORK", created="20261202010000")
    with db.engine.begin() as conn:
        acquirer_day(conn, db.keyring)
        return import_file(conn, data, file_name=f"IND{DATE[2:]}01ACOM", actor=actor).file_id
