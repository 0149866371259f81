"""IC parameters and CA public keys (issue 14): tables ``ic_aids`` and ``ic_capks``, and per
terminal ``capk_pending`` / ``aid_pending`` (header requirement 4 / 5 until the terminal has
downloaded the changed list; docs/dialect.md 3.12).

Revision ID: 0008_ic_parameters
Revises: 0007_chip_card_keys
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_ic_parameters"
down_revision: str | None = "0007_chip_card_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ic_aids",
        sa.Column("aid", sa.String(32), nullable=False),
        sa.Column("app_version", sa.String(4), nullable=False),
        sa.Column("asi", sa.Integer(), nullable=False),
        sa.Column("tac_default", sa.String(10), nullable=False),
        sa.Column("tac_online", sa.String(10), nullable=False),
        sa.Column("tac_denial", sa.String(10), nullable=False),
        sa.Column("floor_limit", sa.BigInteger(), nullable=False),
        sa.Column("threshold", sa.BigInteger(), nullable=False),
        sa.Column("max_target_percent", sa.Integer(), nullable=False),
        sa.Column("target_percent", sa.Integer(), nullable=False),
        sa.Column("ddol", sa.String(504), nullable=False),
        sa.Column("online_pin", sa.Boolean(), nullable=False),
        sa.Column("ec_limit", sa.BigInteger(), nullable=False),
        sa.Column("cl_floor_limit", sa.BigInteger(), nullable=False),
        sa.Column("cl_transaction_limit", sa.BigInteger(), nullable=False),
        sa.Column("cvm_limit", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("aid", name=op.f("pk_ic_aids")),
    )
    op.create_table(
        "ic_capks",
        sa.Column("rid", sa.String(10), nullable=False),
        sa.Column("key_index", sa.String(2), nullable=False),
        sa.Column("expiry", sa.String(8), nullable=False),
        sa.Column("hash_algorithm", sa.String(2), nullable=False),
        sa.Column("algorithm", sa.String(2), nullable=False),
        sa.Column("modulus", sa.Text(), nullable=False),
        sa.Column("exponent", sa.String(6), nullable=False),
        sa.Column("check_value", sa.String(40), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("rid", "key_index", name=op.f("pk_ic_capks")),
    )
    with op.batch_alter_table("terminals") as batch:
        batch.add_column(sa.Column("capk_pending", sa.Boolean(), server_default="0", nullable=False))
        batch.add_column(sa.Column("aid_pending", sa.Boolean(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("terminals") as batch:
        batch.drop_column("aid_pending")
        batch.drop_column("capk_pending")
    op.drop_table("ic_capks")
    op.drop_table("ic_aids")
