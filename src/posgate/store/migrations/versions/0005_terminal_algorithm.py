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
    # An SM4 terminal cannot go back to a schema without the column: its TMK is not a DES key.
    conn = op.get_bind()
    n = conn.execute(sa.text("SELECT COUNT(*) FROM terminals WHERE algorithm <> 'des'")).scalar()
    if n:
        raise RuntimeError(
            f"{n} terminal(s) use SM4 keys; set them back to DES with a new TMK "
            "('posgate admin terminal set-algorithm TID des --tmk HEX') before downgrading"
        )
    with op.batch_alter_table("terminals") as batch:
        batch.drop_column("algorithm")
