"""Core tables: acquirer settings, merchants, terminals, the issuer's cards, transactions,
settlements, signatures, risk, counters and the append-only audit log.

Generated with autogenerate against ``posgate.store.schema.metadata``, then reviewed: plain
``op.create_index`` instead of batch blocks, the RRN / auth-code counters seeded, and triggers that
make ``audit_log`` append-only on SQLite and PostgreSQL.

Revision ID: 0001_core
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_core"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=True),
        sa.Column("object_id", sa.String(length=64), nullable=True),
        sa.Column("merchant_id", sa.String(length=15), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"], unique=False)
    op.create_index(op.f("ix_audit_log_merchant_id"), "audit_log", ["merchant_id"], unique=False)

    op.create_table(
        "batches",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("batch_no", sa.String(length=6), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="open", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
        sa.UniqueConstraint("terminal_id", "batch_no", name="uq_batches_terminal_batch"),
    )
    op.create_table(
        "cards",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("pan_hash", sa.String(length=64), nullable=False),
        sa.Column("pan_masked", sa.String(length=19), nullable=False),
        sa.Column("pan_enc", sa.LargeBinary(), nullable=False),
        sa.Column("expiry", sa.String(length=4), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("organisation", sa.String(length=3), nullable=False),
        sa.Column("chip", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("held", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("per_txn_limit", sa.BigInteger(), nullable=True),
        sa.Column("pin_verifier", sa.String(length=64), nullable=False),
        sa.Column("pin_tries", sa.Integer(), server_default="0", nullable=False),
        sa.Column("pin_tries_day", sa.String(length=10), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cards")),
        sa.UniqueConstraint("pan_hash", name=op.f("uq_cards_pan_hash")),
    )
    op.create_table(
        "counters",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_counters")),
    )
    op.create_table(
        "merchants",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("merchant_id", sa.String(length=15), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("name_en", sa.String(length=80), server_default="", nullable=False),
        sa.Column("mcc", sa.String(length=4), nullable=False),
        sa.Column("fee_rate_bp", sa.Integer(), nullable=False),
        sa.Column("settlement_days", sa.Integer(), server_default="1", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("suspended_reason", sa.Text(), nullable=True),
        sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("suspended_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchants")),
        sa.UniqueConstraint("merchant_id", name=op.f("uq_merchants_merchant_id")),
    )
    op.create_table(
        "risk_rules",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("response_code", sa.String(length=2), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_rules")),
    )
    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_settings")),
    )
    op.create_table(
        "settlements",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("merchant_id", sa.String(length=15), nullable=False),
        sa.Column("batch_no", sa.String(length=6), nullable=False),
        sa.Column("stan", sa.String(length=6), nullable=False),
        sa.Column("terminal_totals", sa.JSON(), nullable=False),
        sa.Column("host_totals", sa.JSON(), nullable=False),
        sa.Column("domestic_result", sa.String(length=1), nullable=False),
        sa.Column("foreign_result", sa.String(length=1), nullable=False),
        sa.Column("uploaded", sa.Integer(), server_default="0", nullable=False),
        sa.Column("upload_end", sa.String(length=3), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlements")),
    )
    op.create_index(op.f("ix_settlements_merchant_id"), "settlements", ["merchant_id"], unique=False)
    op.create_index(op.f("ix_settlements_terminal_id"), "settlements", ["terminal_id"], unique=False)

    op.create_table(
        "sign_ons",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("merchant_id", sa.String(length=15), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("cause", sa.String(length=32), nullable=True),
        sa.Column("operator", sa.String(length=3), nullable=True),
        sa.Column("device_serial", sa.String(length=32), nullable=True),
        sa.Column("key_scheme", sa.String(length=3), nullable=True),
        sa.Column("batch_no", sa.String(length=6), nullable=True),
        sa.Column("stan", sa.String(length=6), nullable=True),
        sa.Column("response_code", sa.String(length=2), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_ons")),
    )
    op.create_index(op.f("ix_sign_ons_at"), "sign_ons", ["at"], unique=False)
    op.create_index(op.f("ix_sign_ons_merchant_id"), "sign_ons", ["merchant_id"], unique=False)
    op.create_index(op.f("ix_sign_ons_terminal_id"), "sign_ons", ["terminal_id"], unique=False)

    op.create_table(
        "risk_hits",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rule_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("merchant_id", sa.String(length=15), nullable=False),
        sa.Column("pan_masked", sa.String(length=19), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["rule_id"], ["risk_rules.id"], name=op.f("fk_risk_hits_rule_id_risk_rules")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_hits")),
    )
    op.create_table(
        "terminals",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("merchant_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tmk_enc", sa.LargeBinary(), nullable=False),
        sa.Column("tmk_kcv", sa.String(length=8), nullable=False),
        sa.Column("device_serial", sa.String(length=32), nullable=True),
        sa.Column("pending_serial", sa.String(length=32), nullable=True),
        sa.Column("approved_serial", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("suspended_reason", sa.Text(), nullable=True),
        sa.Column("batch_no", sa.String(length=6), server_default="000001", nullable=False),
        sa.Column("signed_on_day", sa.String(length=10), nullable=True),
        sa.Column("last_sign_on_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signed_off", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("operator", sa.String(length=3), nullable=True),
        sa.Column("key_scheme", sa.String(length=3), nullable=True),
        sa.Column("pik_enc", sa.LargeBinary(), nullable=True),
        sa.Column("mak_enc", sa.LargeBinary(), nullable=True),
        sa.Column("tdk_enc", sa.LargeBinary(), nullable=True),
        sa.Column("mac_algorithm", sa.String(length=8), server_default="cup", nullable=False),
        sa.Column("mac_failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("resign_requested", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("resign_reason", sa.String(length=32), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("params_pending", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("last_status_upload", sa.JSON(), nullable=True),
        sa.Column("last_response_codes", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_pk"], ["merchants.id"], name=op.f("fk_terminals_merchant_pk_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_terminals")),
        sa.UniqueConstraint("terminal_id", name=op.f("uq_terminals_terminal_id")),
    )
    op.create_index(op.f("ix_terminals_merchant_pk"), "terminals", ["merchant_pk"], unique=False)

    op.create_table(
        "transactions",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("merchant_id", sa.String(length=15), nullable=False),
        sa.Column("batch_no", sa.String(length=6), nullable=False),
        sa.Column("stan", sa.String(length=6), nullable=False),
        sa.Column("mti", sa.String(length=4), nullable=False),
        sa.Column("operation", sa.String(length=24), nullable=False),
        sa.Column("processing_code", sa.String(length=6), nullable=True),
        sa.Column("amount", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("currency", sa.String(length=3), server_default="156", nullable=False),
        sa.Column("pan_hash", sa.String(length=64), nullable=True),
        sa.Column("pan_masked", sa.String(length=19), nullable=True),
        sa.Column("pan_enc", sa.LargeBinary(), nullable=True),
        sa.Column("card_organisation", sa.String(length=3), nullable=True),
        sa.Column("entry_mode", sa.String(length=3), nullable=True),
        sa.Column("response_code", sa.String(length=2), nullable=False),
        sa.Column("auth_code", sa.String(length=6), nullable=True),
        sa.Column("rrn", sa.String(length=12), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("original_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("refunded_amount", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("request_digest", sa.String(length=64), nullable=False),
        sa.Column("reply", sa.LargeBinary(), nullable=True),
        sa.Column("trace", sa.JSON(), nullable=True),
        sa.Column("signed", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("settlement_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("source", sa.String(length=16), server_default="terminal", nullable=False),
        sa.Column("operator", sa.String(length=3), nullable=True),
        sa.ForeignKeyConstraint(
            ["original_id"], ["transactions.id"], name=op.f("fk_transactions_original_id_transactions")
        ),
        sa.ForeignKeyConstraint(
            ["settlement_id"], ["settlements.id"], name=op.f("fk_transactions_settlement_id_settlements")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transactions")),
        sa.UniqueConstraint("terminal_id", "batch_no", "stan", "mti", name="uq_transactions_message"),
    )
    op.create_index(op.f("ix_transactions_created_at"), "transactions", ["created_at"], unique=False)
    op.create_index(op.f("ix_transactions_day"), "transactions", ["day"], unique=False)
    op.create_index(op.f("ix_transactions_merchant_id"), "transactions", ["merchant_id"], unique=False)
    op.create_index(op.f("ix_transactions_original_id"), "transactions", ["original_id"], unique=False)
    op.create_index(op.f("ix_transactions_pan_hash"), "transactions", ["pan_hash"], unique=False)
    op.create_index(op.f("ix_transactions_rrn"), "transactions", ["rrn"], unique=False)
    op.create_index(
        "ix_transactions_terminal_batch", "transactions", ["terminal_id", "batch_no"], unique=False
    )

    op.create_table(
        "differences",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("settlement_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("merchant_id", sa.String(length=15), nullable=False),
        sa.Column("batch_no", sa.String(length=6), nullable=False),
        sa.Column("stan", sa.String(length=6), nullable=True),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("terminal_amount", sa.BigInteger(), nullable=True),
        sa.Column("host_amount", sa.BigInteger(), nullable=True),
        sa.Column("pan_masked", sa.String(length=19), nullable=True),
        sa.Column("transaction_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="open", nullable=False),
        sa.Column("resolved_by", sa.String(length=64), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["settlement_id"], ["settlements.id"], name=op.f("fk_differences_settlement_id_settlements")
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"], ["transactions.id"], name=op.f("fk_differences_transaction_id_transactions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_differences")),
    )
    op.create_index(op.f("ix_differences_merchant_id"), "differences", ["merchant_id"], unique=False)
    op.create_index(op.f("ix_differences_settlement_id"), "differences", ["settlement_id"], unique=False)

    op.create_table(
        "signatures",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("transaction_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("jbig", sa.LargeBinary(), nullable=True),
        sa.Column("png", sa.LargeBinary(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("receipt_tlv", sa.LargeBinary(), nullable=True),
        sa.Column("captured_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["transaction_id"], ["transactions.id"], name=op.f("fk_signatures_transaction_id_transactions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signatures")),
    )
    op.create_index(op.f("ix_signatures_transaction_id"), "signatures", ["transaction_id"], unique=False)

    op.bulk_insert(
        sa.table("counters", sa.column("name", sa.String), sa.column("value", sa.BigInteger)),
        [{"name": "rrn", "value": 0}, {"name": "auth_code", "value": 0}],
    )
    _audit_log_append_only()


def _audit_log_append_only() -> None:
    """Refuse UPDATE and DELETE on audit_log (and TRUNCATE on PostgreSQL), whoever asks."""
    if op.get_bind().dialect.name == "sqlite":
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{event.lower()} BEFORE {event} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            )
    else:
        op.execute(
            "CREATE FUNCTION posgate_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION posgate_audit_log_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION posgate_audit_log_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER audit_log_no_update")
        op.execute("DROP TRIGGER audit_log_no_delete")
    else:
        op.execute("DROP TRIGGER audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION posgate_audit_log_append_only()")
    op.drop_index(op.f("ix_signatures_transaction_id"), table_name="signatures")

    op.drop_table("signatures")
    op.drop_index(op.f("ix_differences_settlement_id"), table_name="differences")
    op.drop_index(op.f("ix_differences_merchant_id"), table_name="differences")

    op.drop_table("differences")
    op.drop_index("ix_transactions_terminal_batch", table_name="transactions")
    op.drop_index(op.f("ix_transactions_rrn"), table_name="transactions")
    op.drop_index(op.f("ix_transactions_pan_hash"), table_name="transactions")
    op.drop_index(op.f("ix_transactions_original_id"), table_name="transactions")
    op.drop_index(op.f("ix_transactions_merchant_id"), table_name="transactions")
    op.drop_index(op.f("ix_transactions_day"), table_name="transactions")
    op.drop_index(op.f("ix_transactions_created_at"), table_name="transactions")

    op.drop_table("transactions")
    op.drop_index(op.f("ix_terminals_merchant_pk"), table_name="terminals")

    op.drop_table("terminals")
    op.drop_table("risk_hits")
    op.drop_index(op.f("ix_sign_ons_terminal_id"), table_name="sign_ons")
    op.drop_index(op.f("ix_sign_ons_merchant_id"), table_name="sign_ons")
    op.drop_index(op.f("ix_sign_ons_at"), table_name="sign_ons")

    op.drop_table("sign_ons")
    op.drop_index(op.f("ix_settlements_terminal_id"), table_name="settlements")
    op.drop_index(op.f("ix_settlements_merchant_id"), table_name="settlements")

    op.drop_table("settlements")
    op.drop_table("settings")
    op.drop_table("risk_rules")
    op.drop_table("merchants")
    op.drop_table("counters")
    op.drop_table("cards")
    op.drop_table("batches")
    op.drop_index(op.f("ix_audit_log_merchant_id"), table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_at"), table_name="audit_log")

    op.drop_table("audit_log")
