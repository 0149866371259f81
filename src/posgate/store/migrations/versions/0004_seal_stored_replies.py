"""Seal the stored replies (``transactions.reply``) under the local master key (decisions.md S1).

A financial reply echoes fields 2 (PAN) and 14 (expiry) in BCD, so every stored reply put a
full card number in the database, its WAL and every backup. From this revision the host stores
the reply as a keyring blob (AES-256-GCM, purpose ``message``); this data migration seals the
replies written before it. No schema change: the column stays ``LargeBinary``.

The master key file is the host's: the one handed to :func:`posgate.store.migrate.upgrade`
(``Database.open``), else ``$POSGATE_MASTER_KEY_FILE`` / the file beside the SQLite database. A
database with replies to seal and no readable key file, or a key file that is not this
database's (``settings.keyring_check``), is refused with a message saying what to do, and
nothing is changed. On SQLite, ``secure_delete`` makes the overwritten pages lose the clear
bytes; backups taken before the upgrade still hold them and must be destroyed (README).

Revision ID: 0004_seal_stored_replies
Revises: 0003_drop_terminal_batch_index
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0004_seal_stored_replies"
down_revision: str | None = "0003_drop_terminal_batch_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_txns = sa.table("transactions", sa.column("id", sa.Integer), sa.column("reply", sa.LargeBinary))
_settings = sa.table("settings", sa.column("key", sa.String), sa.column("value", sa.Text))
_BATCH = 500


def _keyring(conn: sa.Connection):  # type: ignore[no-untyped-def]
    from posgate.store.keyring import KeyringError, load_keyring

    keyring = context.config.attributes.get("keyring")
    if keyring is None:
        try:
            keyring = load_keyring(db_url=conn.engine.url.render_as_string(hide_password=False), create=False)
        except KeyringError as e:
            raise KeyringError(f"sealing the stored replies needs this database's master key: {e}") from None
    stored = conn.execute(sa.select(_settings.c.value).where(_settings.c.key == "keyring_check")).scalar()
    if stored is not None and stored != keyring.check_value:
        raise KeyringError(
            f"the master key file {keyring.path} is not the one this database was written with; point "
            "$POSGATE_MASTER_KEY_FILE at the right file and run the upgrade again (nothing was changed)"
        )
    return keyring


def upgrade() -> None:
    conn = op.get_bind()
    pending = conn.execute(sa.select(sa.func.count()).select_from(_txns).where(_txns.c.reply.is_not(None))).scalar()
    if not pending:
        return
    keyring = _keyring(conn)
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA secure_delete = ON")  # freed cell space is zeroed, not left readable
    last = 0
    while True:
        rows = conn.execute(
            sa.select(_txns.c.id, _txns.c.reply)
            .where(_txns.c.id > last, _txns.c.reply.is_not(None))
            .order_by(_txns.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        last = rows[-1][0]
        # Every reply is clear here: a host writes sealed ones only once this revision is applied.
        sealed = [{"i": i, "r": keyring.seal_message(bytes(r))} for i, r in rows]
        conn.execute(sa.update(_txns).where(_txns.c.id == sa.bindparam("i")).values(reply=sa.bindparam("r")), sealed)


def downgrade() -> None:
    # Writing card numbers back in clear is not an operation we offer. An older host would send
    # a sealed blob as the "stored reply" of a retransmission, so the replies are dropped: a
    # retransmission of a message recorded before the downgrade is then declined (94, STAN
    # already used) and the terminal reverses it, as for any reply it never got.
    op.execute(sa.update(_txns).where(_txns.c.reply.is_not(None)).values(reply=None))
