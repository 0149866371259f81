"""People and access: roles, argon2 passwords, lockout, sessions, API tokens, CSRF, route guards.

* Passwords are stored only as argon2id hashes. A login against an unknown user still runs one
  argon2 verification, so timing does not reveal which usernames exist.
* Failed logins are throttled per (username, client address), per address and, only past what a
  single address can reach, per account (:func:`throttle`): whoever fails a password from one
  address cannot lock the account out for everyone else. Every attempt is audited with the
  address; an administrator's unlock starts the counts again.
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
from posgate.store.schema import audit_log

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


# Login throttling (see the module docstring). Every attempt is an audit row keyed by the username
# as typed (actor) and the client address (object_id), so the same rules apply to unknown
# usernames (no enumeration through the lockout) and several console processes share one count.
LOGIN_OBJECT = "client"
ACCOUNT_FACTOR = 2  # account-wide lock after ACCOUNT_FACTOR × threshold failures (≥ 2 addresses)
ADDRESS_FACTOR = 4  # an address trying many accounts: ADDRESS_FACTOR × threshold failures
THROTTLED = "Too many failed logins."


def client_address(request: Request) -> str:
    """The peer address as the ASGI server reports it: uvicorn replaces it with ``X-Forwarded-For``
    only from a proxy it trusts (``FORWARDED_ALLOW_IPS``, 127.0.0.1 by default)."""
    return request.client.host if request.client else "unknown"


def _last(conn: Connection, *where: Any) -> datetime | None:
    from sqlalchemy import func

    return aware(conn.execute(select(func.max(audit_log.c.at)).where(*where)).scalar())


def _failures(conn: Connection, since: datetime, limit: int, *where: Any) -> list[datetime]:
    """The most recent failed logins matching ``where`` after ``since``, newest first."""
    rows = conn.execute(select(audit_log.c.at).where(audit_log.c.action == "login.failed", audit_log.c.at > since, *where)
                        .order_by(audit_log.c.at.desc()).limit(limit)).scalars()  # fmt: skip
    return [a for a in (aware(r) for r in rows) if a is not None]


def throttle(conn: Connection, username: str, address: str, user_id: int | None, *, threshold: int,
             window: timedelta, now: datetime) -> tuple[str, datetime] | None:  # fmt: skip
    """``(scope, until)`` when this attempt must be refused without looking at the password, else None.

    * ``pair``: ``threshold`` failures in a row for this username from this address (a success
      from the address, or an administrator's unlock, starts the count again);
    * ``address``: ``ADDRESS_FACTOR × threshold`` failures from this address, whatever the username;
    * ``account``: ``ACCOUNT_FACTOR × threshold`` failures for this username from all addresses.
      One address never gets there, because it is itself refused after ``threshold``: nobody can
      keep an account locked for everyone else from a single address.

    All three count inside a sliding window of ``window``; ``until`` is when the oldest counted
    failure leaves it.
    """
    a = audit_log.c
    start = now - window
    unlocked = _last(conn, a.action == "user.unlocked", a.object_type == "user", a.object_id == str(user_id)) \
        if user_id is not None else None  # fmt: skip
    base = max(d for d in (start, unlocked) if d is not None)
    ok_here = _last(conn, a.action == "login.ok", a.actor == username, a.object_id == address)
    ok_any = _last(conn, a.action == "login.ok", a.actor == username)
    checks = (  # the widest first: an account lock is recorded on the user (the Users page shows it)
        ("account", ACCOUNT_FACTOR * threshold, max(d for d in (base, ok_any) if d is not None), (a.actor == username,)),
        ("address", ADDRESS_FACTOR * threshold, start, (a.object_type == LOGIN_OBJECT, a.object_id == address)),
        ("pair", threshold, max(d for d in (base, ok_here) if d is not None), (a.actor == username, a.object_id == address)),
    )  # fmt: skip
    for scope, limit, since, where in checks:
        recent = _failures(conn, since, limit, *where)
        if len(recent) >= limit:
            return scope, recent[-1] + window
    return None


def authenticate(conn: Connection, username: str, password: str, *, threshold: int, lock_minutes: int,
                 now: datetime | None = None, via: str = "web", address: str = "") -> LoginResult:  # fmt: skip
    """Check a password, refuse throttled attempts (:func:`throttle`); audits every outcome.

    Unknown users, disabled users and wrong passwords get the same message, and every path runs
    one argon2 verification, so neither the answer nor its timing tells which usernames exist.
    """
    now = now or utcnow()
    address = (address or "unknown")[:64]
    window = timedelta(minutes=lock_minutes)
    row = conn.execute(select(users).where(users.c.username == username)).mappings().first()
    uid = int(row["id"]) if row is not None else None
    mid = row["merchant_id"] if row is not None else None
    actor = username[:64] or "?"

    def log(action: str, detail: str, **kw: Any) -> None:
        audit(conn, actor=actor, action=action, object_type=LOGIN_OBJECT, object_id=address, merchant_id=mid,
              detail=f"{detail} ({via})", at=now, **kw)  # fmt: skip

    held = throttle(conn, actor, address, uid, threshold=threshold, window=window, now=now)
    if held is None and row is not None:
        locked = aware(row["locked_until"])  # an account-wide lock already recorded on the user
        if locked and locked > now:
            held = ("account", locked)
    if held is not None:
        verify_password(_DUMMY_HASH, password)
        log("login.refused_locked", f"throttled: {held[0]}")
        return LoginResult(False, error=THROTTLED,
                           locked_until=held[1])  # fmt: skip
    if row is None or not row["active"]:
        verify_password(_DUMMY_HASH, password)
        log("login.failed", "unknown user" if row is None else "disabled user")
        return _after_failure(conn, actor, address, uid, mid, threshold, window, now)
    if not verify_password(row["password_hash"], password):
        log("login.failed", "wrong password")
        return _after_failure(conn, actor, address, uid, mid, threshold, window, now)
    conn.execute(update(users).where(users.c.id == row["id"]).values(failed_logins=0, locked_until=None, last_login_at=now))
    log("login.ok", "password")
    return LoginResult(True, user=dict(row))


def _after_failure(conn: Connection, username: str, address: str, uid: int | None, mid: str | None, threshold: int,
                   window: timedelta, now: datetime) -> LoginResult:  # fmt: skip
    """The failure just recorded may trip a throttle: say so now (same words for every user)."""
    held = throttle(conn, username, address, uid, threshold=threshold, window=window, now=now)
    if uid is not None:
        changes: dict[str, Any] = {"failed_logins": users.c.failed_logins + 1}
        if held is not None and held[0] == "account":
            changes["locked_until"] = held[1]  # shown on the Users page; an administrator may unlock
        conn.execute(update(users).where(users.c.id == uid).values(**changes))
        if held is not None:
            audit(conn, actor="system", action="user.locked", object_type="user", object_id=str(uid), merchant_id=mid,
                  after={"locked_until": held[1].isoformat(), "scope": held[0], "address": address},
                  detail=f"failed logins: {held[0]} limit reached", at=now)  # fmt: skip
    if held is not None:
        return LoginResult(False, error=THROTTLED,
                           locked_until=held[1])  # fmt: skip
    return LoginResult(False, error="Wrong username or password.")


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
