"""Chip cards (issue 14): the issuer's master keys per chip card and the last ATC seen.

``cards.icc_keys_enc``: IMK-AC ‖ IMK-SMI ‖ IMK-SMC sealed under the local master key (keyring
purpose ``icc``), never in clear; ``cards.icc_atc``: the highest ATC of a verified ARQC. Both
nullable: a card without keys is not checked (magstripe cards, chip cards of an upstream
issuer). ``posgate`` demo provisioning gives the demo chip card its keys.

Revision ID: 0007_chip_card_keys
Revises: 0006_terminal_dialect
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_chip_card_keys"
down_revision: str | None = "0006_terminal_dialect"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cards") as batch:
        batch.add_column(sa.Column("icc_keys_enc", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("icc_atc", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cards") as batch:
        batch.drop_column("icc_atc")
        batch.drop_column("icc_keys_enc")
