"""The acquirer's side of upstream: an :class:`~posgate.host.ports.Issuer` that routes.

Theory of operation
-------------------
:class:`RoutingIssuer` is what the pipeline calls for every authorisation (the pipeline does not
learn the network exists). It looks the PAN up in the routing table (``posgate.network.routing``):
the built-in issuer answers, or the request goes up a :class:`~posgate.network.link.Link`:

* online kinds (sale, void, refund, pre-authorisation and its completion/void, balance, QR
  confirmation): an *armed* reversal is journalled (``posgate.network.saf``), the request is
  sent, and the pipeline waits for the reply for at most the link's ``timeout``. No reply (a
  reply whose MAC fails, or the network's ``A0``, counts as none: never an approval) →
  ``98`` (issuer timeout) to the terminal and the reversal goes up at once. Link down → the
  stand-in may approve a sale within its limits (an advice marked stand-in goes up when the
  link returns), else ``92``;
* advices (``force_debit``: offline sales, adjustments, tips): journalled and answered ``00``
  at once — the money moved at the counter; forwarded when the transaction is committed;
* reversals (``reverse_*``: the terminal's 0400, a void's undo): journalled, answered ``00``,
  forwarded once committed.

Each result names the route, the stand-in flag and the upstream STAN/RRN; ``Record`` keeps them
on the transaction (columns ``route``, ``stand_in``, ``upstream_stan``, ``upstream_rrn``).

:class:`Upstream` is the process-wide part: the links, the journal and its forwarder, the
routing table and stand-in limits (reloaded from the database every few seconds, so a route
added with ``posgate admin route add`` or on the console applies without a restart).
:meth:`Upstream.status` is the snapshot the console, ``/metrics`` and ``/health`` show
(``posgate.network.status``: each link's state and its store-and-forward queue, PANs masked).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from posgate.crypto import CryptoError, decrypt_pin, encrypt_pin
from posgate.dialect import network as h2h
from posgate.dialect.qr import is_qr_entry
from posgate.host.ports import Issuer, IssuerRequest, IssuerResult
from posgate.iso8583 import TLV, Message
from posgate.network.core import result_of
from posgate.network.link import Link, LinkDown, transmission_time
from posgate.network.routing import BUILTIN, UNREACHABLE, Route, RouteTable, StandInLimit, stand_in
from posgate.network.saf import Forwarder, Journal
from posgate.network.status import SafItem, SafQueue, UpstreamStatus

log = logging.getLogger("posgate.upstream")

TIMEOUT = "98"  # 发卡方超时: issuer timeout
# ``posgate admin upstream-rekey`` writes this setting ("<time> <link or *>"); every acquirer
# process that sees it change asks the network for new MAC keys on that link's connections.
REKEY_SETTING = "upstream_rekey"
_UNSET = object()
# The original request a reversal undoes, by the undo kind (the network undoes what it did).
UNDONE = {"reverse_debit": "debit", "reverse_credit": "credit", "reverse_capture": "capture_hold",
          "reverse_release": "release_hold", "reverse_hold": "hold"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class LinkConfig:
    name: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> LinkConfig:
        """``NAME=HOST:PORT`` (the form ``posgate serve --upstream`` takes)."""
        name, _, where = text.partition("=")
        host, _, port = where.rpartition(":")
        if not name or not host or not port.isdigit() or name == BUILTIN:
            raise ValueError(f"--upstream wants NAME=HOST:PORT (NAME not 'issuer'), not {text!r}")
        return cls(name, host, int(port))


def load_routes(conn: Connection) -> tuple[RouteTable, list[StandInLimit]]:
    from posgate.store import schema as s

    routes = [Route(r.id, r.bin_low, r.bin_high, r.target, r.card_kind, r.priority) for r in conn.execute(select(s.routes))]
    limits = [StandInLimit(r.card_kind, r.merchant_id, r.max_amount, r.daily_max) for r in conn.execute(select(s.stand_in_limits))]
    return RouteTable(routes), limits


class Upstream:
    """Links + journal + forwarder + the routing table of one acquirer process."""

    def __init__(self, db: Any, links: list[LinkConfig], zmk: bytes, *, journal_path: Path | str, timeout: float = 2.0,
                 pool: int = 2, echo_every: float = 30.0, grace: float = 10.0, acquirer_id: str | None = None,
                 refresh_every: float = 2.0, rekey_every: float = 0.0, down_after: float | None = None) -> None:  # fmt: skip
        self.db = db
        self.boot = secrets.token_hex(8)
        self.acquirer_id = acquirer_id or _setting(db, "institution_id", "00049990")
        self.links = {c.name: Link(c.name, (c.host, c.port), zmk, acquirer_id=self.acquirer_id, pool=pool,
                                   timeout=timeout, echo_every=echo_every, rekey_every=rekey_every,
                                   down_after=down_after) for c in links}  # fmt: skip
        self.timeout = timeout
        self.journal = Journal(journal_path, db.keyring.seal_message, db.keyring.open_message, self.boot)
        self.table = RouteTable()
        self.limits: list[StandInLimit] = []
        self._refreshed = 0.0
        self.refresh_every = refresh_every
        self._rekey_asked: object = _UNSET
        self.reload()
        self.forwarder = Forwarder(self.journal, self.links, self._committed, grace=grace, on_tick=self._maybe_reload)

    def start(self) -> Upstream:
        for link in self.links.values():
            link.start()
        self.forwarder.start()
        return self

    def stop(self) -> None:
        self.forwarder.stop()
        for link in self.links.values():
            link.stop()
        self.journal.close()

    def status(self, limit: int = 50) -> UpstreamStatus:
        """Every link's state and its queue (the first ``limit`` pending entries listed, oldest
        first, PAN masked). Safe from any thread; reads the journal (a small SQLite file)."""
        from posgate.domain.masking import mask_pan

        now = time.time()
        counts = self.journal.queue_counts()
        links, queues = [], {}
        for name, link in self.links.items():
            ls = link.status()
            links.append(ls)
            c = counts.get(name, {})
            nxt = self.forwarder.next_try_at(name) if ls.up else None
            when = None if not ls.up else _dt(nxt if nxt is not None else now)
            items = []
            for e in self.journal.entries("pending", link=name, limit=limit) if c else ():
                try:
                    msg = self.journal.message(e)
                    pan, amount = mask_pan(msg.text(2)), int(msg.text(4) or 0)
                except Exception:  # noqa: BLE001 - an entry that does not open is listed all the same
                    pan, amount = "?", 0
                items.append(SafItem(e.id, e.kind, e.mti, pan, amount, e.stan, e.rrn, e.attempts, _dt(e.created_at), when))
            queues[name] = SafQueue(name, int(c.get("reversal", 0)), int(c.get("advice", 0)), int(c.get("awaiting", 0)),
                                    None if c.get("oldest") is None else _dt(c["oldest"]), tuple(items))  # fmt: skip
        return UpstreamStatus(_dt(now), tuple(links), queues)

    def stale(self, seconds: float) -> dict[str, int]:
        """Per link: entries waiting to go up for longer than ``seconds`` (none: not listed)."""
        return self.journal.pending_before(time.time() - seconds)

    def reload(self) -> None:
        from posgate.store import schema as s

        with self.db.engine.connect() as conn:
            self.table, self.limits = load_routes(conn)
            asked = conn.execute(select(s.settings.c.value).where(s.settings.c.key == REKEY_SETTING)).scalar()
        self._refreshed = time.monotonic()
        if asked != self._rekey_asked:
            first, self._rekey_asked = self._rekey_asked is _UNSET, asked
            if not first and asked:
                self._rekey(str(asked))

    def _rekey(self, asked: str) -> None:
        """New MAC keys on the links ``asked`` names (``*``: all), without waiting for them."""
        which = asked.rpartition(" ")[2] or "*"
        for name, link in self.links.items():
            if which in ("*", name):
                log.info("upstream link %s: new MAC keys asked (posgate admin upstream-rekey)", name)
                link.change_keys_soon()

    def _maybe_reload(self) -> None:
        if time.monotonic() - self._refreshed >= self.refresh_every:
            self.reload()

    def _committed(self, rrn: str, stan: str, reversal: bool) -> bool:
        """A committed approved transaction carries this upstream (RRN, STAN): the terminal's
        reversal (``reversal``), or the original it reverses (a reversal and its original share both)."""
        from posgate.store import schema as s

        t = s.transactions.c
        which = t.operation == "reversal" if reversal else t.operation != "reversal"
        with self.db.engine.connect() as conn:
            row = conn.execute(select(t.id).where(t.upstream_rrn == rrn, t.upstream_stan == stan, which,
                                                  t.response_code == "00").limit(1)).first()  # fmt: skip
        return row is not None

    def issuer_factory(self, builtin_factory: Callable[[Any], Issuer]) -> Callable[[Any], Issuer]:
        def factory(store: Any) -> Issuer:
            return RoutingIssuer(builtin_factory(store), store, self)

        return factory


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _setting(db: Any, key: str, default: str) -> str:
    from posgate.store import schema as s

    with db.engine.connect() as conn:
        v = conn.execute(select(s.settings.c.value).where(s.settings.c.key == key)).scalar()
    return str(v) if v else default


class RoutingIssuer:
    """The :class:`~posgate.host.ports.Issuer` the host uses when upstream links exist."""

    def __init__(self, builtin: Issuer, store: Any, upstream: Upstream) -> None:
        self.builtin = builtin
        self.store = store
        self.upstream = upstream

    @property
    def zone_key(self) -> bytes:
        return self.builtin.zone_key

    def authorize(self, request: IssuerRequest, now: datetime) -> IssuerResult:
        route = self.upstream.table.route(request.pan)
        if request.original_route:
            # A void, refund, completion or reversal goes where its original went (the routing
            # table may have changed since): the money must come back from where it was taken.
            if request.original_route == BUILTIN:
                return self.builtin.authorize(request, now)
            if route is None or route.target != request.original_route:
                route = Route(0, "", "", request.original_route, route.card_kind if route else "debit")
        if route is None or route.target == BUILTIN:
            return self.builtin.authorize(request, now)
        link = self.upstream.links.get(route.target)
        if link is None:  # a route to a link this process was not started with
            log.warning("route %d targets %r, which is not a configured link", route.id, route.target)
            return IssuerResult(UNREACHABLE, route=route.target)
        return self._forward(link, route, request, now)

    # ------------------------------------------------------------------ upstream
    def _forward(self, link: Link, route: Route, request: IssuerRequest, now: datetime) -> IssuerResult:
        kind = request.kind
        journal = self.upstream.journal
        if kind == "verify_tc":  # a chip TC is the issuer's business after clearing: nothing to ask online
            return IssuerResult("00", route=link.name)
        # Field 11 is the terminal's STAN: with the RRN it names the message (replies are matched
        # on both), and the network's records and clearing file then carry what the terminal's
        # batch does. A request without one (none today) gets one of the link's.
        stan = request.stan or link.next_stan()
        if kind in UNDONE:
            msg = self._reversal(request, UNDONE[kind], stan, request.original_upstream_stan, h2h.REASON_TERMINAL, now)
            journal.add(link.name, "reversal", "waiting", msg, (request.reference, stan))
            self.upstream.forwarder.wake.set()
            return IssuerResult("00", route=link.name, upstream_stan=stan, upstream_rrn=request.reference)
        if kind == "force_debit":
            msg = self._message(request, kind, stan, now, link, reason=h2h.REASON_OFFLINE)
            journal.add(link.name, "advice", "waiting", msg, (request.reference, stan))
            self.upstream.forwarder.wake.set()
            return IssuerResult("00", self.store.next_auth_code(), route=link.name, upstream_stan=stan,
                                upstream_rrn=request.reference)  # fmt: skip
        if not link.up:
            return self._stand_in(link, route, request, stan, now)
        try:
            msg = self._message(request, kind, stan, now, link)
        except CryptoError:
            return IssuerResult("99", route=link.name)  # the PIN block does not translate: sign on again
        # Written (and on disk) before the request leaves: see posgate.network.saf. A balance
        # inquiry moves no money, so there is nothing to undo.
        armed = None if kind == "balance" else journal.add(
            link.name, "reversal", "armed", self._reversal(request, kind, stan, stan, h2h.REASON_TIMEOUT, now),
            (request.reference, stan))  # fmt: skip
        try:
            reply = link.call(msg, self.upstream.timeout)
        except LinkDown:
            reply = None
        if reply is None:
            if armed is not None:
                journal.set_state(armed, "pending")  # it may have been approved up there: undo it now
                self.upstream.forwarder.wake.set()
            return IssuerResult(TIMEOUT, route=link.name, upstream_stan=stan, upstream_rrn=request.reference)
        result = result_of(reply, link.name, stan, request.reference)
        if result.response_code != "00" and armed is not None:
            journal.set_state(armed, "disarmed")  # declined up there: nothing to undo
        return result

    def _stand_in(self, link: Link, route: Route, request: IssuerRequest, stan: str, now: datetime) -> IssuerResult:
        card_kind = "qr" if is_qr_entry(request.entry_mode) else route.card_kind
        total = 0
        if request.kind == "debit":
            _, total = self.store.card_activity(self.store.pan_hash(request.pan), now - timedelta(hours=24))
        ok, why = stand_in(request.kind, request.amount, card_kind, request.merchant_id, self.upstream.limits, total)
        if not ok:
            log.info("link %s down, no stand-in: %s", link.name, why)
            return IssuerResult(UNREACHABLE, route=link.name)
        advice = replace(request, kind="force_debit", pin_block=None, pin_key=None, icc=None)
        msg = self._message(advice, "force_debit", stan, now, link, reason=h2h.REASON_STAND_IN)
        self.upstream.journal.add(link.name, "advice", "waiting", msg, (request.reference, stan))
        return IssuerResult("00", self.store.next_auth_code(), route=link.name, stand_in=True, upstream_stan=stan,
                            upstream_rrn=request.reference)  # fmt: skip

    def _message(self, request: IssuerRequest, kind: str, stan: str, now: datetime, link: Link,
                 reason: str | None = None) -> Message:  # fmt: skip
        mti, pc, cond = h2h.KINDS[kind]
        f: dict[int, Any] = {2: request.pan, 3: pc, 4: f"{request.amount:012d}", 7: transmission_time(now), 11: stan}
        if request.expiry:
            f[14] = request.expiry
        if request.mcc:
            f[18] = request.mcc
        if request.entry_mode:
            f[22] = request.entry_mode[:3].ljust(3, "0")
        if request.pan_seq:
            f[23] = request.pan_seq[-3:].rjust(3, "0")
        f[25] = cond
        f[32] = self.upstream.acquirer_id
        f[37] = request.reference
        f[41] = (request.terminal_id or "").ljust(8)[:8]
        f[42] = (request.merchant_id or "").ljust(15)[:15]
        if kind == "capture_hold" and request.hold_amount:
            f[48] = f"{request.hold_amount:012d}"
        f[49] = "156"
        if request.pin_block is not None:
            if link.zpk is None:
                raise CryptoError("no zone PIN key from the network yet")
            pin = decrypt_pin(request.pin_key or self.zone_key, request.pin_block, request.pan)
            f[52] = encrypt_pin(link.zpk, pin, request.pan)
        if request.icc is not None:
            f[55] = TLV.decode(request.icc)
        if reason is not None:
            f[60] = reason
        return Message(mti, f)

    def _reversal(self, request: IssuerRequest, original_kind: str, stan: str, original_stan: str, reason: str,
                  now: datetime) -> Message:  # fmt: skip
        o_mti, pc, cond = h2h.KINDS[original_kind]
        f: dict[int, Any] = {2: request.pan, 3: pc, 4: f"{request.amount:012d}", 7: transmission_time(now), 11: stan,
                             25: cond, 32: self.upstream.acquirer_id, 37: request.reference,
                             41: (request.terminal_id or "").ljust(8)[:8], 42: (request.merchant_id or "").ljust(15)[:15]}  # fmt: skip
        if request.hold_amount:
            f[48] = f"{request.hold_amount:012d}"
        f[49] = "156"
        f[60] = reason
        f[90] = h2h.original_data(o_mti, original_stan or "000000", "0" * 10, self.upstream.acquirer_id)
        return Message(h2h.REVERSAL_MTI, f)


def now_utc() -> datetime:
    return datetime.now(UTC)
