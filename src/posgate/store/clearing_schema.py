"""Daily clearing's tables (docs/clearing.md), on the shared ``posgate.store.schema.metadata``.

* ``clearing_files``: one row per imported clearing file (one per business date and sender);
  its SHA-256 and totals, who imported it, and the count of each matching outcome;
* ``clearing_records``: every record of an imported file with its outcome and the transaction
  it matched (masked PAN only);
* ``clearing_differences``: what did not match, for the support desk: open → proposed →
  resolved (a rejected proposal returns it to open);
* ``clearing_resolutions``: each proposal (maker) and its decision (checker, another person);
  an approved ``follow_network`` writes an ``adjustment`` or ``annulment`` row in
  ``transactions`` (``result_txn_id``), which merchant settlement counts.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from posgate.store.schema import Id, metadata

clearing_files = Table(
    "clearing_files",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("business_date", String(8), nullable=False),  # YYYYMMDD, the network's settlement date
    Column("sender", String(11), nullable=False),
    Column("receiver", String(11), nullable=False, server_default=""),
    Column("file_name", String(200), nullable=False),
    Column(
        "sha256", String(64), nullable=False, unique=True
    ),  # of the whole file: the same file twice is refused
    Column("record_count", Integer, nullable=False),
    Column("debit_count", Integer, nullable=False),
    Column("debit_total", BigInteger, nullable=False),
    Column("credit_count", Integer, nullable=False),
    Column("credit_total", BigInteger, nullable=False),
    Column("outcomes", JSON, nullable=False),  # {"matched": n, "missing_ours": n, ...}
    Column("imported_at", DateTime(timezone=True), nullable=False),
    Column("imported_by", String(64), nullable=False),
    UniqueConstraint("business_date", "sender", name="uq_clearing_files_day_sender"),
)

clearing_records = Table(
    "clearing_records",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("file_id", ForeignKey("clearing_files.id"), nullable=False, index=True),
    Column("line", Integer, nullable=False),
    # matched | amount_mismatch | response_mismatch | missing_ours | duplicate | no_effect
    Column("outcome", String(24), nullable=False),
    Column("txn_id", ForeignKey("transactions.id"), index=True),
    Column("terminal_id", String(8), nullable=False),
    Column("merchant_id", String(15), nullable=False),
    Column("stan", String(6), nullable=False),
    Column("rrn", String(12), nullable=False),
    Column("mti", String(4), nullable=False),
    Column("processing_code", String(6), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("response_code", String(2), nullable=False),
    Column("auth_code", String(6)),
    Column("pan_masked", String(19)),
    Column("transmission_time", String(10)),
    Column("kind", String(16), nullable=False),  # authorisation | advice
    Column("stand_in", Boolean, nullable=False, server_default="0"),
    Column("original_rrn", String(12)),
)

clearing_differences = Table(
    "clearing_differences",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("file_id", ForeignKey("clearing_files.id"), nullable=False, index=True),
    Column("business_date", String(8), nullable=False, index=True),
    # amount_mismatch | response_mismatch | missing_ours | missing_theirs | duplicate
    Column("kind", String(24), nullable=False),
    Column("record_id", ForeignKey("clearing_records.id")),
    Column("txn_id", ForeignKey("transactions.id")),
    Column("terminal_id", String(8), nullable=False),
    Column("merchant_id", String(15), nullable=False, index=True),
    Column("stan", String(6), nullable=False),
    Column("rrn", String(12), nullable=False),
    Column("network_amount", BigInteger),
    Column("our_amount", BigInteger),
    Column(
        "effect", BigInteger, nullable=False, server_default="0"
    ),  # fen the merchant gains if we follow the network
    Column("status", String(16), nullable=False, server_default="open"),  # open | proposed | resolved
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True)),
    Column("resolved_by", String(64)),
)

clearing_resolutions = Table(
    "clearing_resolutions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("difference_id", ForeignKey("clearing_differences.id"), nullable=False, index=True),
    Column("action", String(24), nullable=False),  # follow_network | keep_ours
    Column("note", Text, nullable=False),
    Column("status", String(16), nullable=False, server_default="pending"),  # pending | approved | rejected
    Column("proposed_by", String(64), nullable=False),
    Column("proposed_at", DateTime(timezone=True), nullable=False),
    Column("decided_by", String(64)),
    Column("decided_at", DateTime(timezone=True)),
    Column("decision_note", Text),
    Column("result_txn_id", ForeignKey("transactions.id")),
)
