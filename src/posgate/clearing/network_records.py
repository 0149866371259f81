"""The network's record store and the network side's clearing-file writer.

``network_transactions`` is the table the ``posgate network`` process writes (one row per
financial message it answered) in the network's OWN database, never the acquirer's: it lives on
its own ``MetaData`` so the acquirer's migrations never see it. The columns are the ones agreed
between the network and clearing parts (docs/clearing.md, "The network's records").

:func:`build_clearing_file` is what the network runs at day end: every approved, not reversed,
financial record (sales, voids, refunds, completions, offline and stand-in advices) of one
business date, written as the clearing file (``posgate.clearing.file``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    select,
)
from sqlalchemy.engine import Connection, RowMapping

from posgate.clearing.file import ClearingRecord, totals, write_clearing_file
from posgate.domain.response_codes import APPROVED

network_metadata = MetaData()

network_transactions = Table(
    "network_transactions",
    network_metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("business_date", String(8), nullable=False, index=True),  # YYYYMMDD, the network's settlement date
    Column("acquirer_id", String(11), nullable=False),  # field 32
    Column("forwarding_id", String(11)),  # field 33
    Column("rrn", String(12), nullable=False),  # field 37
    Column("stan", String(6), nullable=False),  # field 11
    Column("terminal_id", String(8), nullable=False),  # field 41
    Column("merchant_id", String(15), nullable=False),  # field 42
    Column("mti", String(4), nullable=False),
    Column("processing_code", String(6), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False, server_default="156"),
    Column("response_code", String(2), nullable=False),
    Column("auth_code", String(6)),
    Column("pan_masked", String(19), nullable=False),
    Column("pan_token", String(64), nullable=False),  # HMAC-SHA256 of the PAN under a network-local key
    Column("card_kind", String(8), nullable=False),  # debit | credit | foreign | qr
    Column("transmission_time", String(10), nullable=False),  # field 7, MMDDhhmmss
    Column("original_stan", String(6)),
    Column("original_rrn", String(12)),
    Column("stand_in", Boolean, nullable=False, server_default="0"),
    Column("kind", String(16), nullable=False),  # authorisation | reversal | advice
    Column("reversed", Boolean, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_network_transactions_acquirer_rrn", "acquirer_id", "rrn"),  # the network finds originals by RRN
)

NETWORK_ID = "CUPNETWORK"  # the header's sender unless the rows say otherwise
FINANCIAL_MTIS = ("0200", "0220")  # 0100 (pre-authorisation) holds funds, it clears nothing


def create_network_schema(conn: Connection) -> None:
    """Create the table if it is missing (tests, and the network process until it migrates)."""
    network_metadata.create_all(conn)


def clearing_rows(conn: Connection, business_date: str) -> list[RowMapping]:
    n = network_transactions.c
    cond = and_(n.business_date == business_date, n.kind.in_(("authorisation", "advice")), n.reversed.is_(False),
                n.response_code.in_(sorted(APPROVED)), n.mti.in_(FINANCIAL_MTIS),
                n.processing_code.like("00%") | n.processing_code.like("20%"))  # fmt: skip
    return list(conn.execute(select(network_transactions).where(cond).order_by(n.id)).mappings())


def to_record(row: RowMapping) -> ClearingRecord:
    return ClearingRecord(
        business_date=row["business_date"], acquirer_id=row["acquirer_id"], forwarding_id=row["forwarding_id"] or "",
        stan=row["stan"], transmission_time=row["transmission_time"], pan_masked=row["pan_masked"],
        amount=int(row["amount_cents"]), mti=row["mti"], processing_code=row["processing_code"],
        terminal_id=row["terminal_id"], merchant_id=row["merchant_id"], rrn=row["rrn"],
        response_code=row["response_code"], auth_code=row["auth_code"] or "", original_stan=row["original_stan"] or "",
        kind=row["kind"], stand_in=bool(row["stand_in"]), card_kind=row["card_kind"] or "",
        original_rrn=row["original_rrn"] or "", currency=row["currency"] or "156",
    )  # fmt: skip


@dataclass(frozen=True)
class Built:
    path: Path
    records: int
    debit_count: int
    debit_total: int
    credit_count: int
    credit_total: int


def build_clearing_file(network_db_url: str, business_date: str, out_path: str | Path, *, sender: str = NETWORK_ID,
                        now: datetime | None = None) -> Built:  # fmt: skip
    """Write the clearing file of ``business_date`` (YYYYMMDD) from the network's database."""
    from posgate.store.engine import make_engine

    engine = make_engine(network_db_url)
    try:
        with engine.connect() as conn:
            rows = clearing_rows(conn, business_date)
    finally:
        engine.dispose()
    records = [to_record(r) for r in rows]
    receivers = sorted({r.acquirer_id for r in records})
    created = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")
    write_clearing_file(out_path, records, business_date=business_date, sender=sender,
                        receiver=receivers[0] if len(receivers) == 1 else "", created=created)  # fmt: skip
    dn, dt, cn, ct = totals(records)
    return Built(Path(out_path), len(records), dn, dt, cn, ct)
