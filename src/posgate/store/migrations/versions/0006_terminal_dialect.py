"""``terminals.dialect``: the dialect profile each terminal speaks (posgate.dialect.profiles).

Existing terminals get ``cup``, the baseline, which is what the host spoke to all of them before.

Revision ID: 0006_terminal_dialect
Revises: 0005_terminal_algorithm
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_terminal_dialect"
down_revision: str | None = "0005_terminal_algorithm"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("terminals") as batch:
        batch.add_column(sa.Column("dialect", sa.String(length=16), server_default="cup", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("terminals") as batch:
        batch.drop_column("dialect")
