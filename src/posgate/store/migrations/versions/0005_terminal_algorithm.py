"""Add ``terminals.algorithm``: the cipher of a terminal's TMK and working keys, ``des`` (every
terminal so far, the default) or ``sm4`` (国密: sign-on 60.3 ``006``, SM4 MAC, PIN block and
track encryption, docs/dialect.md 4.4).

Revision ID: 0005_terminal_algorithm
Revises: 0004_seal_stored_replies
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_terminal_algorithm"
down_revision: str | None = "0004_seal_stored_replies"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("terminals") as batch:
        batch.add_column(sa.Column("algorithm", sa.String(length=8), server_default="des", nullable=False))


def downgrade() -> None:
    # A schema without the column reads every TMK as a DES key: an SM4 terminal's keys would be
    # used with the wrong cipher. Suspend those terminals (the console shows why) and drop
    # their working keys, rather than refuse the downgrade or let them trade.
    op.execute(
        sa.text(
            "UPDATE terminals SET status = 'suspended', "
            "suspended_reason = 'SM4 (国密) keys need schema revision 0005', "
            "key_scheme = NULL, pik_enc = NULL, mak_enc = NULL, tdk_enc = NULL WHERE algorithm <> 'des'"
        )
    )
    with op.batch_alter_table("terminals") as batch:
        batch.drop_column("algorithm")
