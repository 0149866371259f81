"""Console tables: users, sessions and API tokens, make-up entries (补登), refund requests,
unsigned-slip alerts and backups.

Generated with autogenerate against ``posgate.store.console_schema`` on top of ``0001_core``.

Revision ID: 0002_console
Revises: 0001_core
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_console"
down_revision: str | None = "0001_core"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "backups",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("started_by", sa.String(length=64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("row_counts", sa.JSON(), nullable=True),
        sa.Column("txn_checksum", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backups")),
    )
    op.create_table(
        "users",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=80), server_default="", nullable=False),
        sa.Column("role", sa.String(length=24), nullable=False),
        sa.Column("merchant_id", sa.String(length=15), nullable=True),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("must_change_password", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("active", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_index(op.f("ix_users_merchant_id"), "users", ["merchant_id"], unique=False)
    op.create_table(
        "console_sessions",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked", sa.Boolean(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_console_sessions_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_console_sessions_token_hash")),
    )
    op.create_index(op.f("ix_console_sessions_user_id"), "console_sessions", ["user_id"], unique=False)
    op.create_table(
        "refund_requests",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("merchant_id", sa.String(length=15), nullable=False),
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("original_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("result_txn_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("response_code", sa.String(length=2), nullable=True),
        sa.Column("result_detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["original_id"], ["transactions.id"], name=op.f("fk_refund_requests_original_id_transactions")
        ),
        sa.ForeignKeyConstraint(
            ["result_txn_id"], ["transactions.id"], name=op.f("fk_refund_requests_result_txn_id_transactions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refund_requests")),
    )
    op.create_index(op.f("ix_refund_requests_merchant_id"), "refund_requests", ["merchant_id"], unique=False)
    op.create_index(op.f("ix_refund_requests_original_id"), "refund_requests", ["original_id"], unique=False)
    op.create_table(
        "unsigned_alerts",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("transaction_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("merchant_id", sa.String(length=15), nullable=False),
        sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["transactions.id"],
            name=op.f("fk_unsigned_alerts_transaction_id_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unsigned_alerts")),
        sa.UniqueConstraint("transaction_id", name=op.f("uq_unsigned_alerts_transaction_id")),
    )
    op.create_index(op.f("ix_unsigned_alerts_merchant_id"), "unsigned_alerts", ["merchant_id"], unique=False)
    op.create_table(
        "makeup_entries",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("merchant_id", sa.String(length=15), nullable=False),
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("original_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("difference_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("card_last4", sa.String(length=4), nullable=True),
        sa.Column("reference", sa.String(length=40), nullable=True),
        sa.Column("txn_day", sa.String(length=10), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.Column("evidence_file", sa.LargeBinary(), nullable=True),
        sa.Column("evidence_name", sa.String(length=120), nullable=True),
        sa.Column("evidence_type", sa.String(length=80), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("proposed_by", sa.String(length=64), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("result_txn_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.ForeignKeyConstraint(
            ["difference_id"], ["differences.id"], name=op.f("fk_makeup_entries_difference_id_differences")
        ),
        sa.ForeignKeyConstraint(
            ["original_id"], ["transactions.id"], name=op.f("fk_makeup_entries_original_id_transactions")
        ),
        sa.ForeignKeyConstraint(
            ["result_txn_id"], ["transactions.id"], name=op.f("fk_makeup_entries_result_txn_id_transactions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_makeup_entries")),
    )
    op.create_index(op.f("ix_makeup_entries_merchant_id"), "makeup_entries", ["merchant_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_makeup_entries_merchant_id"), table_name="makeup_entries")
    op.drop_table("makeup_entries")
    op.drop_index(op.f("ix_unsigned_alerts_merchant_id"), table_name="unsigned_alerts")
    op.drop_table("unsigned_alerts")
    op.drop_index(op.f("ix_refund_requests_original_id"), table_name="refund_requests")
    op.drop_index(op.f("ix_refund_requests_merchant_id"), table_name="refund_requests")
    op.drop_table("refund_requests")
    op.drop_index(op.f("ix_console_sessions_user_id"), table_name="console_sessions")
    op.drop_table("console_sessions")
    op.drop_index(op.f("ix_users_merchant_id"), table_name="users")
    op.drop_table("users")
    op.drop_table("backups")
