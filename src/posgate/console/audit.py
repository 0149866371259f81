"""Audit trail: who did what, when, to which object, with the before and after (append-only).

Written in the same database transaction as the change it records, so a change without its
audit row (or the reverse) cannot exist.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection

from posgate.console.fmt import utcnow
from posgate.store.schema import audit_log


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return f"<{len(value)} bytes>"
    return value


def audit(conn: Connection, *, actor: str, action: str, object_type: str | None = None, object_id: str | None = None,
          merchant_id: str | None = None, before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
          detail: str | None = None, at: datetime | None = None) -> None:  # fmt: skip
    conn.execute(
        audit_log.insert().values(
            at=at or utcnow(), actor=actor[:64], action=action[:64], object_type=object_type,
            object_id=None if object_id is None else str(object_id)[:64], merchant_id=merchant_id,
            before=_jsonable(before) if before is not None else None,
            after=_jsonable(after) if after is not None else None, detail=detail,
        )
    )  # fmt: skip


def diff(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the keys that changed, on both sides."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}
