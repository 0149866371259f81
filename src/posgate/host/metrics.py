"""Prometheus metrics and the health check of the host.

The console serves them on its HTTP port (``/metrics`` from :data:`registry`, ``/health`` from
:func:`health`); without the console the host serves them itself on that port (:func:`start_http`).

What is measured and why:

* ``posgate_transactions_total{operation, response_code}`` — every answered request;
* ``posgate_transaction_seconds`` — from the frame's arrival to its reply being written, so it
  includes waiting for the group commit (the latency a terminal sees, less the network);
* ``posgate_open_connections``, ``posgate_connections_total{outcome}`` (accepted, refused over
  the limit), ``posgate_frames_rejected_total{reason}`` (framing errors, slow drip, idle);
* ``posgate_requests_in_flight`` — received, not yet answered (queued for or inside a commit);
* ``posgate_commit_batch_size`` and ``posgate_commit_seconds`` — the group commit's shape: many
  requests per fsync is what lets the host go past the disk's fsync rate;
* ``posgate_reversals_total{response_code}`` — reversals (0400) answered. Pending reversals live
  on the terminals (a terminal keeps its reversal record until the host has answered it), so the
  host cannot count them; what it can see is the rate at which they arrive, and a rising rate is
  the actionable signal (terminals timing out on the host or the network). Alert on
  ``rate(posgate_reversals_total[5m]) / rate(posgate_transactions_total[5m])``;
* ``posgate_upstream_mac_failures_total{link, kind}`` — host-to-host MAC failures: ``reply``, a
  reply from the network whose field 128 did not verify (dropped: its request is reversed);
  ``refused``, the network answered ``A0`` to one of ours. Any rise means tampering on the
  line or keys out of step: alert on it (docs/upstream.md).
* with upstream links (``posgate serve --upstream``), read at each scrape from the links'
  status snapshot (:func:`watch_upstream`): ``posgate_upstream_link_up{link}`` (1 signed on),
  ``posgate_upstream_link_state{link, state}`` (1 for the current one of signed_on, connected,
  reconnecting, down), ``posgate_upstream_in_flight{link}``, and the store-and-forward queue:
  ``posgate_upstream_saf_pending{link, kind}`` (reversals and advices still to go up — the
  acquirer's own pending reversals, unlike the terminals' above) and
  ``posgate_upstream_saf_oldest_seconds{link}`` (0 when empty). Alert on
  ``posgate_upstream_link_up == 0`` for a few minutes and on the oldest age.

``/health`` reports the links too: ``status`` is ``degraded`` (HTTP 200: the host serves, and
stand-in approves within its limits) while a link is down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

registry = CollectorRegistry(auto_describe=True)

TRANSACTIONS = Counter("posgate_transactions", "Requests answered", ["operation", "response_code"], registry=registry)
LATENCY = Histogram(
    "posgate_transaction_seconds",
    "Frame arrival to reply written, commit included",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=registry,
)
OPEN_CONNECTIONS = Gauge("posgate_open_connections", "Terminal connections open", registry=registry)
CONNECTIONS = Counter("posgate_connections", "Terminal connections by outcome", ["outcome"], registry=registry)
FRAMES_REJECTED = Counter("posgate_frames_rejected", "Connections closed for bad framing or timeouts", ["reason"],
                          registry=registry)  # fmt: skip
IN_FLIGHT = Gauge("posgate_requests_in_flight", "Requests received and not yet answered", registry=registry)
BATCH_SIZE = Histogram(
    "posgate_commit_batch_size", "Requests per group commit", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512), registry=registry
)
COMMIT_SECONDS = Histogram(
    "posgate_commit_seconds",
    "Time of one group commit (BEGIN..COMMIT, all its requests)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
    registry=registry,
)
FSYNC_SECONDS = Histogram(
    "posgate_wal_fsync_seconds",
    "SQLite: one fsync of the write-ahead log, after which the replies of the batches it covers leave",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0),
    registry=registry,
)
CHECKPOINTS = Counter("posgate_wal_checkpoints", "SQLite: checkpoints of the write-ahead log, by mode", ["mode"],
                      registry=registry)  # fmt: skip
REVERSALS = Counter("posgate_reversals", "Reversals (0400) answered", ["response_code"], registry=registry)
UPSTREAM_MAC_FAILURES = Counter("posgate_upstream_mac_failures", "Host-to-host MAC failures (reply: bad MAC received; refused: A0 from the network)",
                                ["link", "kind"], registry=registry)  # fmt: skip
ERRORS = Counter("posgate_errors", "Requests that failed unexpectedly (rolled back)", ["kind"], registry=registry)


log = logging.getLogger("posgate.host")

# Sources of the upstream status (``Upstream.status``, a posgate.network.status.UpstreamStatus),
# one per running Upstream of this process (posgate serve has at most one).
_UPSTREAM: list[Callable[..., Any]] = []
LINK_STATES = ("signed_on", "connected", "reconnecting", "down")


def watch_upstream(source: Callable[..., Any]) -> Callable[[], None]:
    """Show an upstream's links in ``/metrics`` and ``/health``; returns the function that stops it."""
    _UPSTREAM.append(source)

    def unwatch() -> None:
        if source in _UPSTREAM:
            _UPSTREAM.remove(source)

    return unwatch


def upstream_statuses() -> list[Any]:
    out = []
    for source in list(_UPSTREAM):
        try:
            out.append(source(limit=0))
        except Exception:  # noqa: BLE001 - a scrape or a health check never fails on it
            log.exception("upstream status failed")
    return out


class _UpstreamCollector:
    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        up, state, flight, pending, oldest = self._families()
        for st in upstream_statuses():
            for lk in st.links:
                up.add_metric([lk.name], 1.0 if lk.state == "signed_on" else 0.0)
                for s in LINK_STATES:
                    state.add_metric([lk.name, s], 1.0 if lk.state == s else 0.0)
                flight.add_metric([lk.name], float(lk.in_flight))
                q = st.queue(lk.name)
                pending.add_metric([lk.name, "reversal"], float(q.reversals))
                pending.add_metric([lk.name, "advice"], float(q.advices))
                oldest.add_metric([lk.name], st.oldest_age(lk.name) or 0.0)
        return iter((up, state, flight, pending, oldest))

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily("posgate_upstream_link_up", "1 while the upstream link has a connection signed on", labels=["link"]),
            GaugeMetricFamily("posgate_upstream_link_state", "The upstream link's state (1 for the current one)",
                              labels=["link", "state"]),
            GaugeMetricFamily("posgate_upstream_in_flight", "Requests sent up the link, waiting for their reply", labels=["link"]),
            GaugeMetricFamily("posgate_upstream_saf_pending", "Store-and-forward entries still to be sent up, by kind",
                              labels=["link", "kind"]),
            GaugeMetricFamily("posgate_upstream_saf_oldest_seconds", "Age of the oldest store-and-forward entry to be sent (0: none)",
                              labels=["link"]),
        )  # fmt: skip


registry.register(_UpstreamCollector())


class _Health:
    """What :func:`health` reports; the server keeps it current."""

    def __init__(self) -> None:
        self.state = "starting"  # starting | serving | stopping
        self.database = "unknown"  # ok | error
        self.last_commit: float | None = None
        self.started = time.time()
        self.listening: str | None = None


HEALTH = _Health()


def health() -> dict[str, Any]:
    """The host's health: ``status`` is ``ok`` while it serves and its database commits,
    ``degraded`` (still serving: stand-in works) while an upstream link is down."""
    h = HEALTH
    ok = h.state == "serving" and h.database != "error"
    links = upstream_health()
    status = "ok" if ok else ("stopping" if h.state == "stopping" else "unavailable")
    if status == "ok" and any(v["state"] == "down" for v in links.values()):
        status = "degraded"
    out: dict[str, Any] = {
        "status": status,
        "state": h.state,
        "database": h.database,
        "listening": h.listening,
        "open_connections": int(OPEN_CONNECTIONS._value.get()),
        "requests_in_flight": int(IN_FLIGHT._value.get()),
        "last_commit_age_seconds": None if h.last_commit is None else round(time.time() - h.last_commit, 3),
        "uptime_seconds": round(time.time() - h.started, 1),
    }
    if links:
        out["upstream"] = links
    return out


def healthy(status: str) -> bool:
    """Whether a ``status`` of :func:`health` answers HTTP 200 (a degraded host still serves)."""
    return status in ("ok", "degraded")


def upstream_health() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for st in upstream_statuses():
        for lk in st.links:
            q = st.queue(lk.name)
            age = st.oldest_age(lk.name)
            out[lk.name] = {"state": lk.state, "since": lk.since.isoformat(), "saf_pending": q.pending,
                            "saf_oldest_seconds": None if age is None else round(age, 1)}  # fmt: skip
    return out


def metrics_text() -> bytes:
    return generate_latest(registry)


class _HttpProtocol(asyncio.Protocol):
    """Just enough HTTP/1.0 for ``GET /metrics`` and ``GET /health`` (when there is no console)."""

    def __init__(self) -> None:
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance check here.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        import json

        assert self.transport is not None
        self.buf += data
        if b"\r\n\r\n" not in self.buf and b"\n\n" not in self.buf:
            if len(self.buf) > 8192:
                self.transport.close()
            return
        line = self.buf.split(b"\n", 1)[0].decode("latin-1").split()
        path = line[1].split("?", 1)[0] if len(line) > 1 else "/"
        if path == "/health":
            h = health()
            status, body, ctype = (200 if healthy(h["status"]) else 503), json.dumps(h).encode(), "application/json"
        elif path == "/metrics":
            status, body, ctype = 200, metrics_text(), CONTENT_TYPE_LATEST
        else:
            status, body, ctype = 404, b"not found: try /metrics or /health\n", "text/plain"
        reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
        head = f"HTTP/1.0 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        self.transport.write(head.encode() + body)
        self.transport.close()


async def start_http(host: str, port: int) -> asyncio.AbstractServer:
    """Serve ``/metrics`` and ``/health`` on ``host:port`` (used when the console is absent)."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(_HttpProtocol, host, port)
