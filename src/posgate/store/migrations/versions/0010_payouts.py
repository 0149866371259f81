"""Payouts (issue 11): settlement bank accounts (number sealed under the master key), fee rules
per card kind, payouts with their frozen lines, and the payout files sent to the bank.

Generated with autogenerate against ``posgate.store.payouts_schema`` on top of ``0007_chip_card_keys``.

Revision ID: 0010_payouts
Revises: 0007_chip_card_keys
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_payouts"
down_revision: str | None = "0008_ic_parameters"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bank_accounts",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("merchant_id", sa.String(length=15), nullable=False),
        sa.Column("account_enc", sa.LargeBinary(), nullable=False),
        sa.Column("account_masked", sa.String(length=40), nullable=False),
        sa.Column("bank_name", sa.String(length=80), nullable=False),
        sa.Column("account_name", sa.String(length=80), nullable=False),
        sa.Column("bank_code", sa.String(length=12), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("proposed_by", sa.String(length=64), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_accounts")),
    )
    op.create_index(op.f("ix_bank_accounts_merchant_id"), "bank_accounts", ["merchant_id"], unique=False)
    op.create_table(
        "fee_rules",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("merchant_id", sa.String(length=15), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("rate_bp", sa.Integer(), nullable=False),
        sa.Column("cap", sa.BigInteger(), nullable=True),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fee_rules")),
        sa.UniqueConstraint("merchant_id", "kind", name="uq_fee_rules_merchant_kind"),
    )
    op.create_table(
        "payout_files",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("value_date", sa.String(length=10), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_files")),
    )
    op.create_table(
        "payouts",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("merchant_id", sa.String(length=15), nullable=False),
        sa.Column("kind", sa.String(length=4), nullable=False),
        sa.Column("business_day", sa.String(length=10), nullable=False),
        sa.Column("value_date", sa.String(length=10), nullable=False),
        sa.Column("gross", sa.BigInteger(), nullable=False),
        sa.Column("fees", sa.BigInteger(), nullable=False),
        sa.Column("d0_fee", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("file_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("bank_account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("bank_ref", sa.String(length=40), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["bank_account_id"], ["bank_accounts.id"], name=op.f("fk_payouts_bank_account_id_bank_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["file_id"], ["payout_files.id"], name=op.f("fk_payouts_file_id_payout_files")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payouts")),
        sa.UniqueConstraint("merchant_id", "kind", "business_day", name="uq_payouts_merchant_kind_day"),
    )
    op.create_index(op.f("ix_payouts_merchant_id"), "payouts", ["merchant_id"], unique=False)
    op.create_index(op.f("ix_payouts_value_date"), "payouts", ["value_date"], unique=False)
    op.create_table(
        "payout_lines",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("payout_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("transaction_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("card_kind", sa.String(length=8), nullable=False),
        sa.Column("rate_bp", sa.Integer(), nullable=False),
        sa.Column("cap", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["payout_id"], ["payouts.id"], name=op.f("fk_payout_lines_payout_id_payouts")
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"], ["transactions.id"], name=op.f("fk_payout_lines_transaction_id_transactions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_lines")),
        sa.UniqueConstraint("transaction_id", name=op.f("uq_payout_lines_transaction_id")),
    )
    op.create_index(op.f("ix_payout_lines_payout_id"), "payout_lines", ["payout_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_payout_lines_payout_id"), table_name="payout_lines")
    op.drop_table("payout_lines")
    op.drop_index(op.f("ix_payouts_value_date"), table_name="payouts")
    op.drop_index(op.f("ix_payouts_merchant_id"), table_name="payouts")
    op.drop_table("payouts")
    op.drop_table("payout_files")
    op.drop_table("fee_rules")
    op.drop_index(op.f("ix_bank_accounts_merchant_id"), table_name="bank_accounts")
    op.drop_table("bank_accounts")
