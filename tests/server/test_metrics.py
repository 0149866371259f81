"""The host's own /metrics and /health endpoint (used when the console is not running)."""

from __future__ import annotations

import asyncio
import json

from posgate.host import metrics


async def _get(port: int, path: str) -> tuple[int, bytes]:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
    data = await asyncio.wait_for(r.read(), 5)
    w.close()
    await w.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_metrics_and_health_endpoint():
    server = await metrics.start_http("127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        metrics.TRANSACTIONS.labels("sale", "00").inc()
        status, body = await _get(port, "/metrics")
        assert status == 200 and b'posgate_transactions_total{operation="sale",response_code="00"}' in body
        assert b"posgate_commit_seconds_bucket" in body and b"posgate_open_connections" in body
        status, body = await _get(port, "/health")
        health = json.loads(body)
        assert status == (200 if health["status"] == "ok" else 503)
        assert {"state", "database", "open_connections", "requests_in_flight"} <= set(health)
        status, _ = await _get(port, "/nope")
        assert status == 404
    finally:
        server.close()
        await server.wait_closed()
