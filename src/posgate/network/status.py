"""Status snapshots of the upstream links and the store-and-forward queue (plain data).

:meth:`posgate.network.link.Link.status` and :meth:`posgate.network.upstream.Upstream.status`
build them; the console (``/upstream``, ``/api/v1/upstream``), the metrics and ``/health`` read
them. A snapshot is taken from another thread than the link's: it is a copy, never live state.

A link's ``state``:

``signed_on``     at least one connection is signed on (requests go up; ``up`` is true);
``connected``     a TCP connection is open but none is signed on yet (signing on), for less
                  than ``down_after`` seconds;
``reconnecting``  no connection, for less than ``down_after`` seconds: a blip, or the start;
``down``          no connection signed on for ``down_after`` seconds or more (stand-in decides),
                  or the link is stopped.

``since`` is when the link last became signed on, or — for the three others — when it last
stopped being signed on (its start, if it never was): "down since 16:02" names the outage.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

STATES = ("signed_on", "connected", "reconnecting", "down")


@dataclass(frozen=True, slots=True)
class LinkStatus:
    name: str
    host: str
    port: int
    state: str  # one of STATES
    since: datetime
    pool: int  # connections kept
    signed_on: int  # connections signed on now
    in_flight: int  # requests sent and waiting for their reply (not echoes, sign-ons, sign-offs)
    last_message_at: datetime | None  # the last message received from the network (any)
    last_echo_at: datetime | None  # the last echo answered
    last_error: str | None  # why the last connection attempt or connection failed (English, a few words)
    last_error_kind: str | None  # timeout | refused | lost | closed | sign_on_refused | key | other
    last_error_at: datetime | None
    sign_ons: int
    reconnects: int
    timeouts: int

    @property
    def up(self) -> bool:
        return self.state == "signed_on"


@dataclass(frozen=True, slots=True)
class SafItem:
    """One entry waiting to go up (PAN masked: the snapshot never holds a full card number)."""

    id: int
    kind: str  # reversal | advice
    mti: str
    pan_masked: str
    amount: int  # fen
    stan: str
    rrn: str
    attempts: int
    created_at: datetime
    next_try_at: datetime | None  # None: when the link is signed on again (FIFO: after the ones above)


@dataclass(frozen=True, slots=True)
class SafQueue:
    """A link's store-and-forward queue: entries to be sent (``pending``), oldest first."""

    link: str
    reversals: int
    advices: int
    awaiting_commit: int  # written, waiting for the host's commit to decide (armed, waiting)
    oldest_at: datetime | None
    items: tuple[SafItem, ...] = ()  # at most the first ``limit`` entries

    @property
    def pending(self) -> int:
        return self.reversals + self.advices


@dataclass(frozen=True, slots=True)
class UpstreamStatus:
    at: datetime
    links: tuple[LinkStatus, ...]
    queues: dict[str, SafQueue] = field(default_factory=dict)

    @property
    def down(self) -> list[str]:
        return [lk.name for lk in self.links if lk.state == "down"]

    def queue(self, name: str) -> SafQueue:
        return self.queues.get(name) or SafQueue(name, 0, 0, 0, None)

    def oldest_age(self, name: str) -> float | None:
        q = self.queue(name)
        return None if q.oldest_at is None else max(0.0, (self.at - q.oldest_at).total_seconds())


def as_json(status: UpstreamStatus | None) -> dict[str, Any]:
    """The snapshot as JSON (times ISO 8601 UTC); ``configured`` false without links."""
    if status is None or not status.links:
        return {"configured": False, "links": []}

    def conv(v: Any) -> Any:
        if isinstance(v, datetime):
            return v.isoformat()
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [conv(x) for x in v]
        return v

    out = []
    for lk in status.links:
        q = status.queue(lk.name)
        d = conv(asdict(lk))
        d["queue"] = conv({**asdict(q), "pending": q.pending, "oldest_age_seconds": status.oldest_age(lk.name)})
        d["queue"].pop("link", None)
        out.append(d)
    return {"configured": True, "at": status.at.isoformat(), "links": out}
