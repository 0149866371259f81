"""The test host itself: whatever it accepted is closed when it stops, so that no socket of it
is left for the garbage collector to find (as a ResourceWarning, an error under
filterwarnings=error) in whichever test happens to run then."""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import warnings

from .hostd import HostThread


class _LateHandler(HostThread):
    """A host whose connection handlers take their first step only once the host is stopping:
    the connection a client opened just before the end of a test (its transport exists, its
    handler has not run yet)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = threading.Event()
        self.stopping = asyncio.Event()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.arrived.set()
        await self.stopping.wait()
        await super()._handle(reader, writer)

    async def _stop(self) -> None:
        self.stopping.set()
        await super()._stop()


def test_a_connection_whose_handler_runs_while_the_host_stops_is_closed() -> None:
    host = _LateHandler()
    host.__enter__()
    client = socket.create_connection(("127.0.0.1", host.port))
    try:
        assert host.arrived.wait(5)
        host.__exit__(None, None, None)
        seen = list(host._writers)
        assert len(seen) == 1  # the handler did run, and saw its connection
        assert all(w.get_extra_info("socket").fileno() == -1 for w in seen), "a host socket is still open"
    finally:
        client.close()


def test_connections_accepted_in_the_loop_iteration_of_the_stop_are_closed() -> None:
    """Connections waiting in the listen queue while the host's loop is busy: the loop accepts
    them in the same iteration as it starts stopping, and makes their transports after."""
    host = HostThread()
    host.__enter__()
    blocked, gate = threading.Event(), threading.Event()

    def stand_still() -> None:
        blocked.set()
        gate.wait(5)

    host._loop.call_soon_threadsafe(stand_still)
    assert blocked.wait(5)
    clients = [socket.create_connection(("127.0.0.1", host.port)) for _ in range(3)]  # in the listen queue
    try:
        stopping = asyncio.run_coroutine_threadsafe(host._stop(), host._loop)  # queued before the accepts
        gate.set()
        stopping.result(5)
        host.__exit__(None, None, None)
        assert len(host._writers) == 3 and all(w.get_extra_info("socket").fileno() == -1 for w in host._writers)
        del host, stopping
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gc.collect()
        assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
    finally:
        for c in clients:
            c.close()
