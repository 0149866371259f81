"""The console's tables, on the shared ``posgate.store.schema.metadata``.

* ``users``: console accounts (argon2 hashes only), role, merchant scope, lockout counters;
* ``console_sessions``: browser sessions and short-lived API bearer tokens, stored as SHA-256 of
  the token (a stolen database yields no usable session), each with its CSRF token;
* ``makeup_entries`` (补登): corrections proposed by one person and decided by another;
* ``refund_requests``: refunds of past transactions awaiting a second person's approval;
* ``unsigned_alerts``: slips still unsigned after the configured delay (flagged once);
* ``backups``: what was backed up, where, with the row counts and checksum used to verify a restore.

Like the core tables, nothing here is edited to change history: a decision is recorded on the
request row (who, when, why) and the ledger effect is a new ``transactions`` row.
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
    LargeBinary,
    String,
    Table,
    Text,
)

from posgate.store.schema import Id, metadata

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(80), nullable=False, server_default=""),
    # acquirer_admin | support | merchant_admin | merchant_clerk
    Column("role", String(24), nullable=False),
    Column("merchant_id", String(15), index=True),  # field 42 scope; NULL for acquirer staff
    Column("password_hash", String(200), nullable=False),
    Column("must_change_password", Boolean, nullable=False, server_default="0"),
    Column("active", Boolean, nullable=False, server_default="1"),
    Column("failed_logins", Integer, nullable=False, server_default="0"),
    Column("locked_until", DateTime(timezone=True)),
    Column("last_login_at", DateTime(timezone=True)),
    Column("language", String(8)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(64)),
)

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("kind", String(8), nullable=False),  # web | api
    Column("user_id", ForeignKey("users.id"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("revoked", Boolean, nullable=False, server_default="0"),
)

makeup_entries = Table(
    "makeup_entries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("merchant_id", String(15), nullable=False, index=True),
    Column("terminal_id", String(8), nullable=False),
    # missing_sale | wrong_amount | annul | close_difference
    Column("kind", String(24), nullable=False),
    Column("original_id", ForeignKey("transactions.id")),
    Column("difference_id", ForeignKey("differences.id")),
    Column("amount", BigInteger),  # fen: the sale's amount, or the correct amount
    Column("card_last4", String(4)),
    Column("reference", String(40)),  # RRN / auth code / voucher number from the slip
    Column("txn_day", String(10)),  # YYYY-MM-DD the sale happened (missing_sale)
    Column("reason", Text, nullable=False),
    Column("evidence", Text),
    Column("evidence_file", LargeBinary),
    Column("evidence_name", String(120)),
    Column("evidence_type", String(80)),
    Column("status", String(16), nullable=False, server_default="pending"),  # pending | approved | rejected
    Column("proposed_by", String(64), nullable=False),
    Column("proposed_at", DateTime(timezone=True), nullable=False),
    Column("decided_by", String(64)),
    Column("decided_at", DateTime(timezone=True)),
    Column("decision_note", Text),
    Column("result_txn_id", ForeignKey("transactions.id")),
)

refund_requests = Table(
    "refund_requests",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("merchant_id", String(15), nullable=False, index=True),
    Column("terminal_id", String(8), nullable=False),
    Column("original_id", ForeignKey("transactions.id"), nullable=False, index=True),
    Column("amount", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    # pending | rejected | executed | failed
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("requested_by", String(64), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("decided_by", String(64)),
    Column("decided_at", DateTime(timezone=True)),
    Column("decision_note", Text),
    Column("result_txn_id", ForeignKey("transactions.id")),
    Column("response_code", String(2)),
    Column("result_detail", Text),
)

unsigned_alerts = Table(
    "unsigned_alerts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("transaction_id", ForeignKey("transactions.id"), nullable=False, unique=True),
    Column("merchant_id", String(15), nullable=False, index=True),
    Column("flagged_at", DateTime(timezone=True), nullable=False),
    Column("cleared_at", DateTime(timezone=True)),
)

backups = Table(
    "backups",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(16), nullable=False),  # manual | scheduled | cli
    Column("started_by", String(64), nullable=False),
    Column("path", Text, nullable=False),
    Column("size", BigInteger),
    Column("sha256", String(64)),
    Column("row_counts", JSON),
    Column("txn_checksum", String(64)),
    Column("status", String(16), nullable=False),  # ok | failed | pruned
    Column("detail", Text),
)

# E-receipt links (电子签购单链接): what a cardholder opens without an account. Only the SHA-256 of
# the token is used to find a link (a copied database reveals no working link); the token itself
# is kept sealed under the master key (keyring purpose ``receipt``) so the merchant's console can
# show the same link and QR code again. A link expires, and the merchant may revoke it.
receipt_links = Table(
    "receipt_links",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("transaction_id", ForeignKey("transactions.id"), nullable=False, index=True),
    Column("merchant_id", String(15), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("token_sealed", LargeBinary),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("revoked_by", String(64)),
    Column("opened", Integer, nullable=False, server_default="0"),
    Column("last_opened_at", DateTime(timezone=True)),
)
