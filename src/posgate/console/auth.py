"""People and access: roles, argon2 passwords, lockout, sessions, API tokens, CSRF, route guards.

* Passwords are stored only as argon2id hashes. A login against an unknown user still runs one
  argon2 verification, so timing does not reveal which usernames exist.
* ``lockout_threshold`` failed logins in a row lock the account for ``lockout_minutes``; the lock
  and every failure are audited. An acquirer administrator may unlock earlier.
* A browser session is a random token in an HttpOnly, SameSite=Strict, Secure cookie; the
  database keeps only its SHA-256 and a CSRF token. Sessions expire after
  ``session_idle_minutes`` without use and ``session_max_hours`` in all.
* An API token (``POST /api/v1/auth/token``) is a bearer token valid ``token_minutes``. Bearer
  requests carry no cookies, so they need no CSRF token; cookie requests with an unsafe method
  must send the session's CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Request
from sqlalchemy import Connection, select, update
from starlette.concurrency import run_in_threadpool

from posgate.console.audit import audit
from posgate.console.fmt import aware, utcnow
from posgate.store.console_schema import console_sessions, users

ACQUIRER_ADMIN = "acquirer_admin"
SUPPORT = "support"
MERCHANT_ADMIN = "merchant_admin"
MERCHANT_CLERK = "merchant_clerk"
ROLES = (ACQUIRER_ADMIN, SUPPORT, MERCHANT_ADMIN, MERCHANT_CLERK)
ACQUIRER = frozenset({ACQUIRER_ADMIN, SUPPORT})
MERCHANT = frozenset({MERCHANT_ADMIN, MERCHANT_CLERK})
ALL = frozenset(ROLES)

SESSION_COOKIE = "posgate_session"
LOGIN_CSRF_COOKIE = "posgate_login_csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MIN_PASSWORD = 10

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("posgate-timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def check_password_policy(password: str, username: str = "") -> str | None:
    """None when acceptable, else what is wrong (an English msgid, translated by the caller)."""
    if len(password) < MIN_PASSWORD:
        return "The password must have at least 10 characters."
    if username and username.lower() in password.lower():
        return "The password must not contain the username."
    return None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    user_id: int
    username: str
    display_name: str
    role: str
    merchant_id: str | None
    csrf: str
    session_id: int
    kind: str  # web | api
    must_change_password: bool = False

    @property
    def is_acquirer(self) -> bool:
        return self.role in ACQUIRER

    @property
    def actor(self) -> str:
        return self.username


class AuthError(Exception):
    status = 401

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class LoginRequired(AuthError):
    pass


class Forbidden(AuthError):
    status = 403


class CsrfFailed(Forbidden):
    pass


class PasswordChangeRequired(AuthError):
    """A one-time password is in use: nothing but the password page until it is changed."""

    status = 403


PASSWORD_FREE_PATHS = frozenset({"/password", "/logout"})


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    user: dict[str, Any] | None = None
    error: str = ""  # msgid
    locked_until: datetime | None = None


def authenticate(conn: Connection, username: str, password: str, *, threshold: int, lock_minutes: int,
                 now: datetime | None = None, via: str = "web") -> LoginResult:  # fmt: skip
    """Check a password, count failures, lock after ``threshold``; audits every outcome."""
    now = now or utcnow()
    row = conn.execute(select(users).where(users.c.username == username)).mappings().first()
    if row is None:
        verify_password(_DUMMY_HASH, password)
        audit(conn, actor=username[:64] or "?", action="login.failed", object_type="user", detail=f"unknown user ({via})")
        return LoginResult(False, error="Wrong username or password.")
    locked = aware(row["locked_until"])
    if locked and locked > now:
        verify_password(_DUMMY_HASH, password)
        audit(conn, actor=username, action="login.refused_locked", object_type="user", object_id=str(row["id"]),
              merchant_id=row["merchant_id"], detail=via)  # fmt: skip
        return LoginResult(False, error="The account is locked after repeated failed logins.", locked_until=locked)
    if not row["active"]:
        verify_password(_DUMMY_HASH, password)
        audit(conn, actor=username, action="login.refused_disabled", object_type="user", object_id=str(row["id"]),
              merchant_id=row["merchant_id"], detail=via)  # fmt: skip
        return LoginResult(False, error="Wrong username or password.")
    if not verify_password(row["password_hash"], password):
        failures = row["failed_logins"] + 1
        changes: dict[str, Any] = {"failed_logins": failures}
        if failures >= threshold:
            changes["locked_until"] = now + timedelta(minutes=lock_minutes)
            changes["failed_logins"] = 0
        conn.execute(update(users).where(users.c.id == row["id"]).values(**changes))
        audit(conn, actor=username, action="login.failed", object_type="user", object_id=str(row["id"]),
              merchant_id=row["merchant_id"], after={"failed_logins": failures}, detail=via)  # fmt: skip
        if "locked_until" in changes:
            audit(conn, actor="system", action="user.locked", object_type="user", object_id=str(row["id"]),
                  merchant_id=row["merchant_id"], after={"locked_until": changes["locked_until"].isoformat()},
                  detail=f"{threshold} failed logins in a row")  # fmt: skip
            return LoginResult(False, error="The account is locked after repeated failed logins.",
                               locked_until=changes["locked_until"])  # fmt: skip
        return LoginResult(False, error="Wrong username or password.")
    conn.execute(update(users).where(users.c.id == row["id"]).values(failed_logins=0, locked_until=None, last_login_at=now))
    audit(conn, actor=username, action="login.ok", object_type="user", object_id=str(row["id"]),
          merchant_id=row["merchant_id"], detail=via)  # fmt: skip
    return LoginResult(True, user=dict(row))


def create_session(conn: Connection, user_id: int, kind: str, lifetime: timedelta, now: datetime | None = None) -> str:
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    conn.execute(
        console_sessions.insert().values(
            token_hash=_digest(token), kind=kind, user_id=user_id, csrf_token=secrets.token_urlsafe(32),
            created_at=now, expires_at=now + lifetime, last_seen_at=now,
        )
    )  # fmt: skip
    return token


def revoke_session(conn: Connection, token: str) -> None:
    conn.execute(update(console_sessions).where(console_sessions.c.token_hash == _digest(token)).values(revoked=True))


def revoke_user_sessions(conn: Connection, user_id: int, keep_session_id: int | None = None) -> None:
    q = update(console_sessions).where(console_sessions.c.user_id == user_id)
    if keep_session_id is not None:
        q = q.where(console_sessions.c.id != keep_session_id)
    conn.execute(q.values(revoked=True))


def lookup_session(conn: Connection, token: str, kind: str, now: datetime | None = None) -> tuple[Principal, dict[str, Any]] | None:
    now = now or utcnow()
    j = console_sessions.join(users, users.c.id == console_sessions.c.user_id)
    row = (
        conn.execute(
            select(console_sessions, users.c.username, users.c.display_name, users.c.role, users.c.merchant_id,
                   users.c.active, users.c.must_change_password)  # fmt: skip
            .select_from(j)
            .where(console_sessions.c.token_hash == _digest(token), console_sessions.c.kind == kind)
        )
        .mappings()
        .first()
    )
    if row is None or row["revoked"] or not row["active"]:
        return None
    expires = aware(row["expires_at"])
    if expires is None or expires <= now:
        return None
    p = Principal(
        user_id=row["user_id"], username=row["username"], display_name=row["display_name"] or row["username"],
        role=row["role"], merchant_id=row["merchant_id"], csrf=row["csrf_token"], session_id=row["id"], kind=kind,
        must_change_password=bool(row["must_change_password"]),
    )  # fmt: skip
    return p, dict(row)


class Guard:
    """Route dependency: authenticates, checks the role, and (cookie sessions) the CSRF token.

    ``Guard(*roles)`` for pages (cookie session; unauthenticated → redirect to the login page),
    ``Guard(*roles, api=True)`` for ``/api/v1`` (bearer token; unauthenticated → 401).
    """

    def __init__(self, *roles: str, api: bool = False) -> None:
        unknown = set(roles) - set(ROLES)
        if unknown or not roles:
            raise ValueError(f"unknown roles {unknown}")
        self.roles = frozenset(roles)
        self.api = api

    def __repr__(self) -> str:
        return f"Guard({', '.join(sorted(self.roles))}, api={self.api})"

    async def __call__(self, request: Request) -> Principal:
        sessions = request.app.state.console.sessions
        if self.api:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthError("a bearer token is required: POST /api/v1/auth/token")
            p = await run_in_threadpool(sessions.resolve, token.strip(), "api")
            if p is None:
                raise AuthError("the token is invalid or has expired: request a new one")
        else:
            token = request.cookies.get(SESSION_COOKIE, "")
            p = await run_in_threadpool(sessions.resolve, token, "web") if token else None
            if p is None:
                raise LoginRequired("please log in")
            if request.method not in SAFE_METHODS:
                sent = request.headers.get("x-csrf-token", "")
                if not sent and request.headers.get("content-type", "").startswith(
                    ("application/x-www-form-urlencoded", "multipart/form-data")
                ):
                    form = await request.form()
                    value = form.get("csrf_token")
                    sent = value if isinstance(value, str) else ""
                if not sent or not hmac.compare_digest(sent.encode(), p.csrf.encode()):
                    raise CsrfFailed("the form has expired or did not come from this site: reload the page and try again")
        if p.role not in self.roles:
            raise Forbidden("your role does not allow this")
        if p.must_change_password and request.url.path not in PASSWORD_FREE_PATHS:
            raise PasswordChangeRequired("change the one-time password first (console: /password)")
        request.state.principal = p
        return p


class Sessions:
    """Session lookups with a sliding idle timeout (the row is touched at most once a minute)."""

    def __init__(self, db: Any, idle: timedelta, max_age: timedelta) -> None:
        self.db = db
        self.idle = idle
        self.max_age = max_age

    def resolve(self, token: str, kind: str) -> Principal | None:
        now = utcnow()
        with self.db.read() as conn:
            found = lookup_session(conn, token, kind, now)
        if found is None:
            return None
        p, row = found
        if kind == "web" and now - (aware(row["last_seen_at"]) or now) > timedelta(seconds=60):
            created = aware(row["created_at"]) or now
            expires = min(now + self.idle, created + self.max_age)
            with self.db.write() as conn:
                conn.execute(
                    update(console_sessions).where(console_sessions.c.id == p.session_id)
                    .values(last_seen_at=now, expires_at=expires)
                )  # fmt: skip
        return p
