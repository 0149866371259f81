"""The card network's own records: one row per financial message it answered.

The columns are the contract between the network (this package writes them) and clearing
(``posgate.clearing`` reads them to write the daily clearing file); see docs/upstream.md. The
network keeps them in its own database, never the acquirer's. No clear PAN: ``pan_masked`` and
``pan_token`` (HMAC-SHA256 of the PAN under a network-local key) only.
"""

from __future__ import annotations

import importlib

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

_own_metadata = MetaData()

Id = BigInteger().with_variant(Integer(), "sqlite")

_own_table = Table(
    "network_transactions",
    _own_metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("business_date", String(8), nullable=False, index=True),  # YYYYMMDD, the network's settlement date
    Column("acquirer_id", String(11), nullable=False),  # field 32
    Column("forwarding_id", String(11)),  # field 33
    Column("rrn", String(12), nullable=False, index=True),  # field 37
    Column("stan", String(6), nullable=False),  # field 11
    Column("terminal_id", String(8), nullable=False),  # field 41
    Column("merchant_id", String(15), nullable=False),  # field 42
    Column("mti", String(4), nullable=False),
    Column("processing_code", String(6), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("response_code", String(2), nullable=False),
    Column("auth_code", String(6)),
    Column("pan_masked", String(19), nullable=False),
    Column("pan_token", String(64), nullable=False),
    Column("card_kind", String(8), nullable=False),  # debit | credit | foreign | qr
    Column("transmission_time", String(10), nullable=False),  # field 7, MMDDhhmmss
    Column("original_stan", String(6)),
    Column("original_rrn", String(12)),
    Column("stand_in", Boolean, nullable=False, default=False),
    Column("kind", String(16), nullable=False),  # authorisation | reversal | advice
    Column("reversed", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # A repeat (the acquirer's resend, an 0x21) finds the row it already answered.
    UniqueConstraint("acquirer_id", "stan", "rrn", "mti", name="uq_network_transactions_message"),
)


def _clearing_definition() -> tuple[MetaData, Table] | None:
    """The clearing part's definition of the same table, when it is installed: one table, one
    definition (the contract between the two parts; see docs/upstream.md)."""
    try:
        mod = importlib.import_module("posgate.clearing.network_records")
    except ModuleNotFoundError:
        return None
    return mod.network_metadata, mod.network_transactions


metadata, network_transactions = _clearing_definition() or (_own_metadata, _own_table)
