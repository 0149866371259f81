"""Routing to upstream networks (issue 13): the routing table, stand-in limits, and per
transaction who authorised it (``route``), whether the acquirer stood in (``stand_in``) and the
STAN/RRN of the message sent upstream. Defaults keep every existing row "issuer" (the built-in
issuer): with no routes the host works as before. See docs/upstream.md.

Revision ID: 0014_routing
Revises: 0007_chip_card_keys
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_routing"
down_revision: str | None = "0013_growth_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "routes",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("bin_low", sa.String(19), nullable=False),
        sa.Column("bin_high", sa.String(19), nullable=False),
        sa.Column("target", sa.String(32), nullable=False),
        sa.Column("card_kind", sa.String(8), nullable=False, server_default="debit"),
        sa.Column("priority", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_routes"),
    )
    op.create_table(
        "stand_in_limits",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("card_kind", sa.String(8), nullable=False),
        sa.Column("merchant_id", sa.String(15)),
        sa.Column("max_amount", sa.BigInteger(), nullable=False),
        sa.Column("daily_max", sa.BigInteger()),
        sa.PrimaryKeyConstraint("id", name="pk_stand_in_limits"),
    )
    # Plain ALTER TABLE, not a batch (table copy) on SQLite: a copy would lose the expression index
    # on a card's last four digits (0013), which SQLite cannot reflect; a grown ledger is not copied.
    op.add_column("transactions", sa.Column("route", sa.String(32), nullable=False, server_default="issuer"))
    op.add_column("transactions", sa.Column("stand_in", sa.Boolean(), nullable=False, server_default="0"))
    op.add_column("transactions", sa.Column("upstream_stan", sa.String(6), nullable=True))
    op.add_column("transactions", sa.Column("upstream_rrn", sa.String(12), nullable=True))
    op.create_index("ix_transactions_upstream_rrn", "transactions", ["upstream_rrn"])


def downgrade() -> None:
    op.drop_index("ix_transactions_upstream_rrn", table_name="transactions")
    for column in ("upstream_rrn", "upstream_stan", "stand_in", "route"):
        op.drop_column("transactions", column)  # SQLite 3.35+ drops a column in place
    op.drop_table("stand_in_limits")
    op.drop_table("routes")
