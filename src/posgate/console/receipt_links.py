"""E-receipt links (电子签购单链接): a link a cardholder opens without an account.

* A link is a 128-bit random token (``secrets.token_urlsafe(16)``). The database finds a link by
  the token's SHA-256 only; the token itself is kept sealed under the master key (keyring purpose
  ``receipt``) so that the merchant's console can show the same link and QR code again. Without
  a keyring the token is shown once, when the link is made.
* A link expires (``ConsoleSettings.receipt_link_days``, 30 by default) and the merchant may
  revoke it. An approved transaction gets its first link when the console first shows it
  (:func:`for_console`) or a slip is printed with a QR code; after a revocation or expiry a new
  one is made only when the merchant asks (:func:`renew`).
* The page shows what the printed slip shows — the masked PAN and never more.
* :class:`RateLimiter` bounds how many receipt pages one client address opens a minute, so the
  token space cannot be walked from one address.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from posgate.console.audit import audit
from posgate.console.auth import Principal
from posgate.console.fmt import aware, utcnow
from posgate.console.ledger import get_txn, is_approved_row
from posgate.console.txns import ConsoleError, NotFound, latest_signature
from posgate.store.console_schema import receipt_links
from posgate.store.schema import merchants, transactions

L = receipt_links.c
PURPOSE = b"receipt"
TOKEN_BYTES = 16  # 128 bits
PATH = "/r/"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def url_for(base: str, token: str) -> str:
    """The link a cardholder opens: the console's public address + ``/r/<token>``."""
    return base.rstrip("/") + PATH + token


@dataclass(frozen=True)
class Link:
    id: int
    transaction_id: int
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    opened: int
    token: str | None  # None when it cannot be shown again (no keyring)


def _link(row: Any, keyring: Any) -> Link:
    token = None
    if row["token_sealed"] is not None and keyring is not None:
        token = keyring.decrypt(bytes(row["token_sealed"]), PURPOSE).decode()
    return Link(int(row["id"]), int(row["transaction_id"]), aware(row["created_at"]) or utcnow(),
                aware(row["expires_at"]) or utcnow(), aware(row["revoked_at"]), int(row["opened"] or 0), token)  # fmt: skip


def issue(conn: Connection, actor: str, txn: dict[str, Any], keyring: Any, days: int,
          now: datetime | None = None) -> tuple[Link, str]:  # fmt: skip
    """A new link for an approved transaction; returns it with its token."""
    if not is_approved_row(txn):
        raise ConsoleError("Only an approved transaction has an e-receipt.", 409)
    now = now or utcnow()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    sealed = keyring.encrypt(token.encode(), PURPOSE) if keyring is not None else None
    values = dict(transaction_id=txn["id"], merchant_id=txn["merchant_id"], token_hash=digest(token), token_sealed=sealed,
                  created_at=now, created_by=actor[:64], expires_at=now + timedelta(days=days))  # fmt: skip
    lid = conn.execute(receipt_links.insert().values(**values).returning(L.id)).scalar_one()
    row = conn.execute(select(receipt_links).where(L.id == lid)).mappings().one()
    return _link(row, keyring), token


def live(conn: Connection, txn_id: int, keyring: Any, now: datetime | None = None) -> Link | None:
    """The newest link of the transaction that is neither revoked nor expired."""
    now = now or utcnow()
    row = conn.execute(select(receipt_links).where(L.transaction_id == txn_id, L.revoked_at.is_(None), L.expires_at > now)
                       .order_by(L.id.desc()).limit(1)).mappings().first()  # fmt: skip
    return _link(row, keyring) if row is not None else None


def for_console(conn: Connection, actor: str, txn: dict[str, Any], keyring: Any, days: int,
                create: bool = True) -> tuple[str, Link | None]:  # fmt: skip
    """``(state, link)`` for the transaction page: ``ok`` with the live link (made now for an
    approved transaction that never had one), ``revoked`` / ``expired`` with the last link (a new
    one only on the merchant's request), ``none`` when the transaction has no e-receipt.
    ``create=False`` (a read-only connection) answers ``missing`` instead of making the first link."""
    if not is_approved_row(txn):
        return "none", None
    row = conn.execute(select(receipt_links).where(L.transaction_id == txn["id"]).order_by(L.id.desc()).limit(1)
                       ).mappings().first()  # fmt: skip
    if row is None:
        if not create:
            return "missing", None
        link, token = issue(conn, actor, txn, keyring, days)
        return "ok", Link(**{**link.__dict__, "token": token})
    link = _link(row, keyring)
    if link.revoked_at is not None:
        return "revoked", link
    if link.expires_at <= utcnow():
        return "expired", link
    return "ok", link


def revoke(conn: Connection, p: Principal, txn_id: int, now: datetime | None = None) -> int:
    """Revoke the transaction's live links (the merchant's button); returns how many."""
    now = now or utcnow()
    txn = get_txn(conn, p, txn_id)
    if txn is None:
        raise NotFound()
    res = conn.execute(update(receipt_links).where(L.transaction_id == txn_id, L.revoked_at.is_(None), L.expires_at > now)
                       .values(revoked_at=now, revoked_by=p.username))  # fmt: skip
    n = int(res.rowcount or 0)
    if n == 0:
        raise ConsoleError("This transaction has no live e-receipt link.", 409)
    audit(conn, actor=p.username, action="receipt_link.revoked", object_type="transaction", object_id=str(txn_id),
          merchant_id=txn["merchant_id"], after={"revoked": n}, detail="e-receipt link revoked", at=now)  # fmt: skip
    return n


def renew(conn: Connection, p: Principal, txn_id: int, keyring: Any, days: int) -> Link:
    """A new link after a revocation or expiry (the old one stays dead)."""
    txn = get_txn(conn, p, txn_id)
    if txn is None:
        raise NotFound()
    if live(conn, txn_id, keyring) is not None:
        raise ConsoleError("This transaction already has a live e-receipt link.", 409)
    link, token = issue(conn, p.username, txn, keyring, days)
    audit(conn, actor=p.username, action="receipt_link.issued", object_type="transaction", object_id=str(txn_id),
          merchant_id=txn["merchant_id"], detail="new e-receipt link")  # fmt: skip
    return Link(**{**link.__dict__, "token": token})


@dataclass(frozen=True)
class Opened:
    """What a receipt link leads to: ``state`` is ok | expired | revoked | unknown."""

    state: str
    txn: dict[str, Any] | None = None
    merchant: dict[str, Any] | None = None
    signature: dict[str, Any] | None = None


def open_link(conn: Connection, token: str, now: datetime | None = None) -> Opened:
    now = now or utcnow()
    if not token or len(token) > 64:
        return Opened("unknown")
    row = conn.execute(select(receipt_links).where(L.token_hash == digest(token))).mappings().first()
    if row is None:
        return Opened("unknown")
    if row["revoked_at"] is not None:
        return Opened("revoked")
    if (aware(row["expires_at"]) or now) <= now:
        return Opened("expired")
    txn = conn.execute(select(transactions).where(transactions.c.id == row["transaction_id"])).mappings().first()
    if txn is None:
        return Opened("unknown")
    m = conn.execute(select(merchants.c.name, merchants.c.name_en)
                     .where(merchants.c.merchant_id == txn["merchant_id"])).mappings().first()  # fmt: skip
    conn.execute(update(receipt_links).where(L.id == row["id"]).values(opened=L.opened + 1, last_opened_at=now))
    return Opened("ok", dict(txn), dict(m) if m else {}, latest_signature(conn, int(txn["id"])))


@functools.lru_cache(maxsize=512)
def qr_svg(url: str, scale: int = 4) -> str:
    """The link as an inline SVG QR code (error correction M, 4-module quiet zone). Cached: segno
    is pure Python (tens of ms a code) and a link's page is shown again and again."""
    import segno

    return str(segno.make(url, error="m", micro=False).svg_inline(scale=scale, dark="#111", light="#fff"))


def qr_matrix(url: str) -> tuple[tuple[bool, ...], ...]:
    """The QR code's modules (True = dark), without quiet zone: what a PDF slip draws."""
    import segno

    return tuple(tuple(bool(v) for v in row) for row in segno.make(url, error="m", micro=False).matrix)


class RateLimiter:
    """At most ``limit`` hits per ``window`` seconds for each key (a client address), in memory.

    One console process counts its own hits: behind several processes the effective limit is
    ``limit`` × processes, which still keeps a 128-bit token space out of reach.
    """

    def __init__(self, limit: int, window: float = 60.0, max_keys: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            q = self._hits.get(key)
            if q is None:
                if len(self._hits) >= self.max_keys:  # forget the idle ones first
                    for k in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]:
                        del self._hits[k]
                q = self._hits.setdefault(key, deque())
            while q and q[0] <= now - self.window:
                q.popleft()
            if len(q) >= self.limit:
                return False
            q.append(now)
            return True

    def retry_after(self, key: str, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        with self._lock:
            q = self._hits.get(key)
            return max(1, int(q[0] + self.window - now) + 1) if q else 1
