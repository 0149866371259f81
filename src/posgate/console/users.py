"""Console accounts: create, reset, unlock, disable (acquirer admin: all; merchant admin: own staff)."""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from posgate.console.audit import audit
from posgate.console.auth import (
    ACQUIRER_ADMIN,
    MERCHANT,
    MERCHANT_ADMIN,
    MERCHANT_CLERK,
    ROLES,
    Principal,
    check_password_policy,
    hash_password,
    revoke_user_sessions,
    verify_password,
)
from posgate.console.fmt import utcnow
from posgate.console.txns import ConsoleError, NotFound
from posgate.store.console_schema import users
from posgate.store.schema import merchants

U = users.c
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
PUBLIC_COLS = [U.id, U.username, U.display_name, U.role, U.merchant_id, U.active, U.failed_logins, U.locked_until,
               U.last_login_at, U.must_change_password, U.created_at, U.created_by]  # fmt: skip


def _scope(p: Principal) -> Any:
    if p.role == ACQUIRER_ADMIN:
        return U.id.isnot(None)
    return U.merchant_id == p.merchant_id


def list_users(conn: Connection, p: Principal) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(*PUBLIC_COLS).where(_scope(p)).order_by(U.merchant_id, U.username)).mappings()]


def _get(conn: Connection, p: Principal, user_id: int) -> dict[str, Any]:
    row = conn.execute(select(*PUBLIC_COLS).where(U.id == user_id, _scope(p))).mappings().first()
    if row is None:
        raise NotFound()
    return dict(row)


def create_user(conn: Connection, *, username: str, role: str, merchant_id: str | None, password: str | None,
                display_name: str = "", actor: str, must_change: bool = True, enforce_policy: bool = True,
                now: datetime | None = None) -> tuple[int, str]:  # fmt: skip
    """Returns (id, password). Without a password a random one is generated (shown once)."""
    now = now or utcnow()
    username = username.strip().lower()
    if not USERNAME.match(username):
        raise ConsoleError("The username must be 2–64 lower-case letters, digits, '.', '_' or '-'.")
    if role not in ROLES:
        raise ConsoleError("Unknown role.")
    if role in MERCHANT:
        if not merchant_id or conn.execute(select(merchants.c.id).where(merchants.c.merchant_id == merchant_id)).first() is None:
            raise ConsoleError("A merchant user needs an existing merchant.")
    else:
        merchant_id = None
    if conn.execute(select(U.id).where(U.username == username)).first():
        raise ConsoleError("This username is taken.", 409)
    if password is None:
        password = secrets.token_urlsafe(12)
    elif enforce_policy:
        problem = check_password_policy(password, username)
        if problem:
            raise ConsoleError(problem)
    uid = conn.execute(users.insert().values(
        username=username, display_name=(display_name or "").strip()[:80], role=role, merchant_id=merchant_id,
        password_hash=hash_password(password), must_change_password=must_change, created_at=now, created_by=actor,
    ).returning(U.id)).scalar_one()  # fmt: skip
    audit(conn, actor=actor, action="user.created", object_type="user", object_id=str(uid), merchant_id=merchant_id,
          after={"username": username, "role": role, "merchant_id": merchant_id}, at=now)  # fmt: skip
    return int(uid), password


def create_by(conn: Connection, p: Principal, username: str, role: str, merchant_id: str | None, display_name: str) -> tuple[int, str]:
    if p.role == MERCHANT_ADMIN:
        if role not in (MERCHANT_CLERK, MERCHANT_ADMIN):
            raise ConsoleError("A merchant administrator can create only their merchant's users.", 403)
        merchant_id = p.merchant_id
    return create_user(conn, username=username, role=role, merchant_id=merchant_id, password=None,
                       display_name=display_name, actor=p.username)  # fmt: skip


def reset_password(conn: Connection, p: Principal, user_id: int) -> str:
    u = _get(conn, p, user_id)
    password = secrets.token_urlsafe(12)
    conn.execute(update(users).where(U.id == user_id).values(password_hash=hash_password(password), must_change_password=True,
                                                              failed_logins=0, locked_until=None))  # fmt: skip
    revoke_user_sessions(conn, user_id)
    audit(conn, actor=p.username, action="user.password_reset", object_type="user", object_id=str(user_id),
          merchant_id=u["merchant_id"], detail="one-time password issued; sessions revoked")  # fmt: skip
    return password


def unlock(conn: Connection, p: Principal, user_id: int) -> None:
    u = _get(conn, p, user_id)
    conn.execute(update(users).where(U.id == user_id).values(failed_logins=0, locked_until=None))
    audit(conn, actor=p.username, action="user.unlocked", object_type="user", object_id=str(user_id), merchant_id=u["merchant_id"],
          before={"locked_until": u["locked_until"], "failed_logins": u["failed_logins"]}, after={"locked_until": None})  # fmt: skip


def set_active(conn: Connection, p: Principal, user_id: int, active: bool) -> None:
    u = _get(conn, p, user_id)
    if user_id == p.user_id:
        raise ConsoleError("You cannot disable your own account.", 409)
    conn.execute(update(users).where(U.id == user_id).values(active=active))
    if not active:
        revoke_user_sessions(conn, user_id)
    audit(conn, actor=p.username, action="user.enabled" if active else "user.disabled", object_type="user",
          object_id=str(user_id), merchant_id=u["merchant_id"], before={"active": bool(u["active"])}, after={"active": active})  # fmt: skip


def change_password(conn: Connection, p: Principal, current: str, new: str, confirm: str) -> None:
    row = conn.execute(select(U.password_hash).where(U.id == p.user_id)).first()
    if row is None or not verify_password(row.password_hash, current):
        raise ConsoleError("The current password is wrong.")
    if new != confirm:
        raise ConsoleError("The two new passwords differ.")
    problem = check_password_policy(new, p.username)
    if problem:
        raise ConsoleError(problem)
    if verify_password(row.password_hash, new):
        raise ConsoleError("Choose a password different from the current one.")
    conn.execute(update(users).where(U.id == p.user_id).values(password_hash=hash_password(new), must_change_password=False))
    revoke_user_sessions(conn, p.user_id, keep_session_id=p.session_id)
    audit(conn, actor=p.username, action="user.password_changed", object_type="user", object_id=str(p.user_id),
          merchant_id=p.merchant_id, detail="other sessions revoked")  # fmt: skip
