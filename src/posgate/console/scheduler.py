"""Background jobs of the console process: the unsigned-slip check and the daily backup.

Runs as one asyncio task in the console's lifespan; each job runs in a worker thread, so the
event loop keeps serving pages. Several console processes on one database may all run it: the
unsigned check flags each slip once (unique row), and the daily backup looks for today's
scheduled backup before writing one.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from posgate.console import backup
from posgate.console.fmt import aware, utcnow
from posgate.console.txns import flag_unsigned
from posgate.store.console_schema import backups

log = logging.getLogger("posgate.console.scheduler")


def unsigned_check(state: Any) -> int:
    with state.db.write() as conn:
        return flag_unsigned(conn, state.settings.unsigned_after_minutes)


def daily_backup_due(state: Any, now: datetime | None = None) -> bool:
    now = now or utcnow()
    tz = ZoneInfo(state.settings.timezone)
    local = now.astimezone(tz)
    hh, mm = (int(x) for x in state.settings.backup_time.split(":"))
    if (local.hour, local.minute) < (hh, mm):
        return False
    with state.db.read() as conn:
        rows = conn.execute(select(backups.c.at, backups.c.status).where(backups.c.kind == "scheduled")
                            .order_by(backups.c.id.desc()).limit(1)).all()  # fmt: skip
    if not rows:
        return True
    last = aware(rows[0].at)
    if last is None:
        return True
    if rows[0].status == "failed":  # retry a failed one hourly, not every round
        return (now - last).total_seconds() >= 3600
    return last.astimezone(tz).date() < local.date()


def daily_backup(state: Any) -> bool:
    if not daily_backup_due(state):
        return False
    backup.run_backup(state.db.engine, state.settings.backup_dir, kind="scheduled", actor="system:backup")
    backup.prune(state.db.engine, state.settings.backup_keep_days)
    return True


async def run_scheduler(state: Any) -> None:
    await asyncio.sleep(1.0)
    while True:
        for job in (unsigned_check, daily_backup):
            try:
                await run_in_threadpool(job, state)
            except Exception:  # noqa: BLE001 - a failing job is logged and retried next round
                log.exception("console job %s failed", job.__name__)
        await asyncio.sleep(state.settings.scheduler_interval)
