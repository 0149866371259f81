"""Apply the Alembic migrations (``posgate db upgrade``; done automatically by ``posgate serve``)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from posgate.store.keyring import Keyring

SCRIPT_LOCATION = "posgate.store:migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "heads", *, keyring: Keyring | None = None) -> None:
    """Bring the database of ``engine`` to ``revision`` (all the way by default). ``keyring``:
    the master key, for data migrations that encrypt (else they load the default key file)."""
    cfg = alembic_config()
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        if keyring is not None:
            cfg.attributes["keyring"] = keyring
        command.upgrade(cfg, revision)
        conn.commit()


def current_revisions(engine: Engine) -> tuple[str, ...]:
    with engine.connect() as conn:
        return tuple(MigrationContext.configure(conn).get_current_heads())


def head_revisions() -> tuple[str, ...]:
    return tuple(ScriptDirectory.from_config(alembic_config()).get_heads())
