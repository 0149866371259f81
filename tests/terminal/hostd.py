"""A small real TCP host for client and CLI tests: the host's ``process()`` pipeline with the
demo memory store and built-in issuer behind an asyncio server on 127.0.0.1 (port 0), in a
thread of its own. ``mute`` makes it swallow requests (for timeouts); ``reset_after_reply``
makes it reset the connection (RST) right after each reply."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
from datetime import UTC, datetime
from typing import Any

from posgate.framing import FrameReader, Tpdu, encode_frame


class HostThread:
    def __init__(self) -> None:
        from posgate.host.issuer import BuiltinIssuer
        from posgate.host.memory import demo_memory_store
        from posgate.host.ports import Env

        rnd = random.Random(5)
        self.env = Env(now=lambda: datetime.now(UTC), randbytes=rnd.randbytes)
        self.store = demo_memory_store(self.env)
        self.issuer = BuiltinIssuer.with_random_zone_key(
            self.store, random.Random(6).randbytes, self.env.timezone
        )
        self.mute = False
        self.reset_after_reply = False  # answer, then reset the connection (RST)
        self.resets = threading.Semaphore(0)  # released once per reset, when the RST has left
        # rewrite(request body, reply body) -> reply body: a test's way to make the host answer
        # otherwise (a response code, no MAC) while the pipeline still did the work.
        self.rewrite: Any = None
        self.requests = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server: Any = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._lock = threading.Lock()
        # Every connection the host ever accepted (open or not): __exit__ waits until each is closed.
        self._writers: set[asyncio.StreamWriter] = set()
        self._closing = False

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._server.wait_closed())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from posgate.host.pipeline import process

        frames = FrameReader()
        self._writers.add(writer)
        if self._closing:  # accepted just before the server closed; its handler runs only now
            writer.transport.abort()
            return
        try:
            while data := await reader.read(4096):
                for f in frames.feed(data):
                    self.requests += 1
                    if self.mute:
                        continue
                    with self._lock:
                        reply = process(f.header, f.body, self.store, self.issuer, self.env)
                    body = reply.body
                    if body is not None and self.rewrite is not None:
                        body = self.rewrite(f.body, body)
                    if body is not None:
                        writer.write(encode_frame(Tpdu.parse(f.tpdu).swapped().encode(), reply.header, body))
                        await writer.drain()
                    if self.reset_after_reply:
                        sock = writer.get_extra_info("socket")
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        writer.transport.abort()
                        with contextlib.suppress(OSError):
                            await writer.wait_closed()  # connection_lost: the socket is closed, the RST sent
                        self.resets.release()
                        return
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def __enter__(self) -> HostThread:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _stop(self) -> None:
        """Stop serving and close every connection; return only once each socket is closed.

        Three traps, none of them a matter of timing. (1) A connection accepted just before
        the stop gets its transport from a task of the loop, and its handler a few loop
        iterations later. (2) If that task runs after server.close(), the transport's
        constructor fails (3.11: ``Server._attach`` asserts the server still has sockets) and
        the accepted socket is never closed. (3) server.close() leaves accepted connections
        open (3.11). Whatever is left open when the loop stops turns up later, in another
        test, as an unclosed transport (an error under filterwarnings=error). So: stop
        accepting without closing the server, let every task of the loop finish (accepts,
        handlers; a handler that starts now aborts its connection, ``_closing``), only then
        close the server, and wait for every transport's connection_lost (the socket is
        closed there)."""
        self._closing = True
        loop = asyncio.get_running_loop()
        for sock in self._server.sockets:
            loop.remove_reader(sock.fileno())  # no new accept from here on
        me = asyncio.current_task()
        while pending := asyncio.all_tasks() - {me}:
            for w in list(self._writers):
                w.transport.abort()
            await asyncio.wait(pending)
        self._server.close()
        for w in list(self._writers):
            w.transport.abort()
            with contextlib.suppress(OSError):
                await w.wait_closed()
