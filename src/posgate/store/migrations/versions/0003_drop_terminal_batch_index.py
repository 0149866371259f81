"""Drop ``ix_transactions_terminal_batch``: it duplicates the left prefix (terminal_id, batch_no)
of the unique message key ``uq_transactions_message`` (terminal_id, batch_no, stan, mti), which
serves the same lookups, and it cost every transaction insert one more B-tree write.

Revision ID: 0003_drop_terminal_batch_index
Revises: 0002_console
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003_drop_terminal_batch_index"
down_revision: str | None = "0002_console"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_transactions_terminal_batch", table_name="transactions")


def downgrade() -> None:
    op.create_index("ix_transactions_terminal_batch", "transactions", ["terminal_id", "batch_no"], unique=False)
