"""The transport ceiling: a bare echo server with the host's framing (uvloop + asyncio.Protocol).

It answers every frame with the same header and body and the TPDU addresses swapped, exactly
as the host frames its replies, but does no decoding, no MAC, no database. ``bench.host`` runs
it in the same run as the host and reports the host's throughput as a fraction of this one.

    python -m posgate.bench.echo --port 0      # prints "echo listening on 127.0.0.1:PORT"
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import cast

from posgate.framing import HEADER_LEN, TPDU_LEN, FrameReader, FramingError
from posgate.host.server import new_event_loop


class EchoProtocol(asyncio.Protocol):
    __slots__ = ("reader", "transport")

    def __init__(self) -> None:
        self.reader = FrameReader()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance check here.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        try:
            frames = self.reader.feed(data)
        except FramingError:
            self.transport.abort()
            return
        out = []
        for f in frames:
            tp = f.tpdu
            size = TPDU_LEN + HEADER_LEN + len(f.body)
            out.append(size.to_bytes(2, "big") + tp[:1] + tp[3:5] + tp[1:3] + f.header + f.body)
        if out:
            self.transport.write(b"".join(out))


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(EchoProtocol, host, port, backlog=1024, reuse_address=True)
    addr = server.sockets[0].getsockname()
    print(f"echo listening on {addr[0]}:{addr[1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    await server.wait_closed()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
