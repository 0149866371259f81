"""Daily clearing (issue 13): imported clearing files, their records with the matching outcome,
the differences for the support desk and their maker-checker resolutions (docs/clearing.md).

Generated with autogenerate against ``posgate.store.clearing_schema`` on top of ``0007_chip_card_keys``.

Revision ID: 0015_clearing
Revises: 0007_chip_card_keys
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_clearing"
down_revision: str | None = "0014_routing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clearing_files",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("business_date", sa.String(length=8), nullable=False),
        sa.Column("sender", sa.String(length=11), nullable=False),
        sa.Column("receiver", sa.String(length=11), server_default="", nullable=False),
        sa.Column("file_name", sa.String(length=200), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("debit_count", sa.Integer(), nullable=False),
        sa.Column("debit_total", sa.BigInteger(), nullable=False),
        sa.Column("credit_count", sa.Integer(), nullable=False),
        sa.Column("credit_total", sa.BigInteger(), nullable=False),
        sa.Column("outcomes", sa.JSON(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("imported_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clearing_files")),
        sa.UniqueConstraint("business_date", "sender", name="uq_clearing_files_day_sender"),
        sa.UniqueConstraint("sha256", name=op.f("uq_clearing_files_sha256")),
    )
    op.create_table(
        "clearing_records",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("file_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("txn_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("merchant_id", sa.String(length=15), nullable=False),
        sa.Column("stan", sa.String(length=6), nullable=False),
        sa.Column("rrn", sa.String(length=12), nullable=False),
        sa.Column("mti", sa.String(length=4), nullable=False),
        sa.Column("processing_code", sa.String(length=6), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("response_code", sa.String(length=2), nullable=False),
        sa.Column("auth_code", sa.String(length=6), nullable=True),
        sa.Column("pan_masked", sa.String(length=19), nullable=True),
        sa.Column("transmission_time", sa.String(length=10), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("stand_in", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("original_rrn", sa.String(length=12), nullable=True),
        sa.ForeignKeyConstraint(
            ["file_id"], ["clearing_files.id"], name=op.f("fk_clearing_records_file_id_clearing_files")
        ),
        sa.ForeignKeyConstraint(
            ["txn_id"], ["transactions.id"], name=op.f("fk_clearing_records_txn_id_transactions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clearing_records")),
    )
    with op.batch_alter_table("clearing_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_clearing_records_file_id"), ["file_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_clearing_records_txn_id"), ["txn_id"], unique=False)

    op.create_table(
        "clearing_differences",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("file_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("business_date", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("record_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("txn_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("merchant_id", sa.String(length=15), nullable=False),
        sa.Column("stan", sa.String(length=6), nullable=False),
        sa.Column("rrn", sa.String(length=12), nullable=False),
        sa.Column("network_amount", sa.BigInteger(), nullable=True),
        sa.Column("our_amount", sa.BigInteger(), nullable=True),
        sa.Column("effect", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="open", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["file_id"], ["clearing_files.id"], name=op.f("fk_clearing_differences_file_id_clearing_files")
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["clearing_records.id"],
            name=op.f("fk_clearing_differences_record_id_clearing_records"),
        ),
        sa.ForeignKeyConstraint(
            ["txn_id"], ["transactions.id"], name=op.f("fk_clearing_differences_txn_id_transactions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clearing_differences")),
    )
    with op.batch_alter_table("clearing_differences", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_clearing_differences_business_date"), ["business_date"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_clearing_differences_file_id"), ["file_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_clearing_differences_merchant_id"), ["merchant_id"], unique=False
        )

    op.create_table(
        "clearing_resolutions",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("difference_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("proposed_by", sa.String(length=64), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("result_txn_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.ForeignKeyConstraint(
            ["difference_id"],
            ["clearing_differences.id"],
            name=op.f("fk_clearing_resolutions_difference_id_clearing_differences"),
        ),
        sa.ForeignKeyConstraint(
            ["result_txn_id"],
            ["transactions.id"],
            name=op.f("fk_clearing_resolutions_result_txn_id_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clearing_resolutions")),
    )
    with op.batch_alter_table("clearing_resolutions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_clearing_resolutions_difference_id"), ["difference_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("clearing_resolutions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clearing_resolutions_difference_id"))

    op.drop_table("clearing_resolutions")
    with op.batch_alter_table("clearing_differences", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clearing_differences_merchant_id"))
        batch_op.drop_index(batch_op.f("ix_clearing_differences_file_id"))
        batch_op.drop_index(batch_op.f("ix_clearing_differences_business_date"))

    op.drop_table("clearing_differences")
    with op.batch_alter_table("clearing_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clearing_records_txn_id"))
        batch_op.drop_index(batch_op.f("ix_clearing_records_file_id"))

    op.drop_table("clearing_records")
    op.drop_table("clearing_files")
