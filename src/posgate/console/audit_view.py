"""Reading the audit trail (acquirer staff: everything; a merchant administrator: their merchant)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from posgate.console.auth import Principal
from posgate.console.ledger import scope
from posgate.store.schema import audit_log

A = audit_log.c


def audit_entries(conn: Connection, p: Principal, f: dict[str, str], limit: int = 300) -> list[dict[str, Any]]:
    cond = [scope(A.merchant_id, p)]
    if f.get("actor"):
        cond.append(A.actor == f["actor"])
    if f.get("action"):
        cond.append(A.action.like(f"{f['action'].replace('%', '')}%"))
    if f.get("object_id"):
        cond.append(A.object_id == f["object_id"])
    rows = conn.execute(select(audit_log).where(*cond).order_by(A.id.desc()).limit(limit)).mappings()
    return [dict(r) for r in rows]
