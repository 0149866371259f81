"""Indexes for the console's transaction search on a grown ledger (docs/benchmarks.md, Growth):
a date range newest first (day then time, in place of the index on day alone), a terminal's
and a merchant's transactions newest first, an exact amount, and a card by the
last four digits of its masked number (an expression index, the same expression on SQLite and
PostgreSQL: ``substr(pan_masked, length(pan_masked) - 3)``; ``posgate.store.schema.PAN_LAST4``).

Revision ID: 0013_growth_indexes
Revises: 0007_chip_card_keys
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_growth_indexes"
down_revision: str | None = "0011_receipt_links"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_transactions_day", table_name="transactions")
    op.create_index("ix_transactions_day_created", "transactions", ["day", "created_at"], unique=False)
    op.create_index("ix_transactions_terminal_created", "transactions", ["terminal_id", "created_at"], unique=False)
    op.create_index("ix_transactions_merchant_created", "transactions", ["merchant_id", "created_at"], unique=False)
    op.create_index("ix_transactions_amount", "transactions", ["amount"], unique=False)
    op.create_index("ix_transactions_pan_last4", "transactions", [sa.text("substr(pan_masked, length(pan_masked) - 3)")],
                    unique=False)  # fmt: skip


def downgrade() -> None:
    for name in ("ix_transactions_pan_last4", "ix_transactions_amount", "ix_transactions_merchant_created",
                 "ix_transactions_terminal_created", "ix_transactions_day_created"):  # fmt: skip
        op.drop_index(name, table_name="transactions")
    op.create_index("ix_transactions_day", "transactions", ["day"], unique=False)
