"""E-receipt links (issue 11): ``receipt_links``, one row per link a cardholder may open without
an account — the token's SHA-256 (the lookup), the token sealed under the master key (so the
console can show the link again), expiry, revocation and how often it was opened.

Revision ID: 0011_receipt_links
Revises: 0007_chip_card_keys
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_receipt_links"
down_revision: str | None = "0010_payouts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "receipt_links",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("transaction_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("merchant_id", sa.String(length=15), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("token_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=64), nullable=True),
        sa.Column("opened", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["transaction_id"], ["transactions.id"],
                                name=op.f("fk_receipt_links_transaction_id_transactions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_receipt_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_receipt_links_token_hash")),
    )
    op.create_index(op.f("ix_receipt_links_transaction_id"), "receipt_links", ["transaction_id"], unique=False)
    op.create_index(op.f("ix_receipt_links_merchant_id"), "receipt_links", ["merchant_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_receipt_links_merchant_id"), table_name="receipt_links")
    op.drop_index(op.f("ix_receipt_links_transaction_id"), table_name="receipt_links")
    op.drop_table("receipt_links")
