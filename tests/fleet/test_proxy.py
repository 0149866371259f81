"""The fault proxy against a tiny framed echo host: every fault does what it says, per message."""

from __future__ import annotations

import asyncio

import pytest

from posgate.fleet.net import NotLoopbackError, require_loopback
from posgate.fleet.proxy import FaultPlan, FaultProxy
from posgate.framing import FrameReader, encode_frame

TPDU = bytes.fromhex("6000030000")
HEADER = bytes.fromhex("603100000000")


def request(stan: int) -> bytes:
    # MTI 0200 + a fake bitmap + a STAN-like tail: the proxy only needs framing and the MTI.
    return bytes.fromhex("0200") + bytes(8) + stan.to_bytes(3, "big") + b"payload"


class EchoHost:
    """Replies to every frame with MTI + 10 and the rest of the body unchanged; counts requests."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.partial_closes = 0
        self.server: asyncio.AbstractServer | None = None

    async def handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        fr = FrameReader()
        try:
            while data := await r.read(4096):
                for f in fr.feed(data):
                    self.received.append(f.body)
                    mti = int(f.body[:2].hex()) + 10
                    w.write(encode_frame(f.tpdu, f.header, bytes.fromhex(f"{mti:04d}") + f.body[2:]))
                    await w.drain()
            if fr.pending:
                self.partial_closes += 1
        except ConnectionError:
            pass
        finally:
            w.close()

    async def __aenter__(self) -> EchoHost:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])


async def exchange(port: int, body: bytes, timeout: float = 1.0) -> bytes | None:
    """Send one framed request; the reply body, or None on close/timeout."""
    r, w = await asyncio.open_connection("127.0.0.1", port)
    try:
        w.write(encode_frame(TPDU, HEADER, body))
        await w.drain()
        fr = FrameReader()
        async with asyncio.timeout(timeout):
            while data := await r.read(4096):
                frames = fr.feed(data)
                if frames:
                    return frames[0].body
        return None
    except TimeoutError:
        return None
    finally:
        w.close()


async def test_passes_through_many_frames_in_one_connection() -> None:
    async with EchoHost() as host, FaultProxy(("127.0.0.1", host.port)) as proxy:
        r, w = await asyncio.open_connection("127.0.0.1", proxy.port)
        # Three frames in one write, then one byte by byte: framing must not care.
        w.write(b"".join(encode_frame(TPDU, HEADER, request(i)) for i in range(3)))
        drip = encode_frame(TPDU, HEADER, request(3))
        for b in drip:
            w.write(bytes([b]))
            await w.drain()
        fr, got = FrameReader(), []
        while len(got) < 4:
            got += fr.feed(await r.read(4096))
        w.close()
        assert [f.body[:2] for f in got] == [bytes.fromhex("0210")] * 4
        assert [f.body[2:] for f in got] == [request(i)[2:] for i in range(4)]
        assert proxy.stats["frames_request"] == 4 and proxy.stats["frames_reply"] == 4
        assert sum(proxy.stats[k] for k in ("cut_request", "cut_reply", "corrupt_reply")) == 0


async def test_cut_request_delivers_a_prefix_and_closes() -> None:
    async with EchoHost() as host, FaultProxy(("127.0.0.1", host.port)) as proxy:
        proxy.inject("cut_request")
        assert await exchange(proxy.port, request(1)) is None
        await asyncio.sleep(0.05)
        assert host.received == []  # the host never got a whole frame
        assert proxy.stats["cut_request"] == 1
        # The next connection is clean.
        assert await exchange(proxy.port, request(2)) == bytes.fromhex("0210") + request(2)[2:]
        assert len(host.received) == 1


async def test_cut_reply_after_the_host_processed() -> None:
    async with EchoHost() as host, FaultProxy(("127.0.0.1", host.port)) as proxy:
        proxy.inject("cut_reply")
        assert await exchange(proxy.port, request(1)) is None
        assert host.received == [request(1)]  # processed upstream, never answered downstream
        assert proxy.stats["cut_reply"] == 1


async def test_delay_reply_arrives_late_on_the_same_connection() -> None:
    async with EchoHost() as host, FaultProxy(("127.0.0.1", host.port), plan=FaultPlan(delay=0.5)) as proxy:
        proxy.inject("delay_reply")
        r, w = await asyncio.open_connection("127.0.0.1", proxy.port)
        w.write(encode_frame(TPDU, HEADER, request(1)))
        await w.drain()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(r.read(4096), 0.1)  # "the terminal's timeout"
        fr, frames = FrameReader(), []
        while not frames:
            frames = fr.feed(await asyncio.wait_for(r.read(4096), 5))
        w.close()
        assert frames[0].body == bytes.fromhex("0210") + request(1)[2:]
        assert proxy.stats["delay_reply"] == 1


async def test_drop_reply_keeps_the_connection_silent() -> None:
    async with EchoHost() as host, FaultProxy(("127.0.0.1", host.port)) as proxy:
        proxy.inject("drop_reply")
        assert await exchange(proxy.port, request(1), timeout=0.3) is None
        assert host.received == [request(1)]
        assert proxy.stats["drop_reply"] == 1


async def test_corrupt_reply_flips_bits_but_keeps_the_length() -> None:
    async with EchoHost() as host, FaultProxy(("127.0.0.1", host.port), plan=FaultPlan(flips=1), seed=7) as proxy:
        proxy.inject("corrupt_reply", count=5)
        clean = bytes.fromhex("0210") + request(1)[2:]
        for _ in range(5):
            got = await exchange(proxy.port, request(1))
            assert got is not None and len(got) == len(clean) and got != clean
            diff = sum(bin(a ^ b).count("1") for a, b in zip(got, clean, strict=True))
            assert diff == 1
        assert proxy.stats["corrupt_reply"] == 5


async def test_plan_rates_are_seeded_and_filtered_by_mti() -> None:
    async def run(seed: int) -> list[bool]:
        async with EchoHost() as host:
            plan = FaultPlan(rates={"cut_reply": 0.5}, mtis=frozenset({"0200"}))
            async with FaultProxy(("127.0.0.1", host.port), plan=plan, seed=seed) as proxy:
                out = [await exchange(proxy.port, request(i)) is not None for i in range(12)]
                # 0800 is not in the plan's MTIs: never faulted.
                signon = bytes.fromhex("0800") + bytes(8)
                for _ in range(5):
                    assert await exchange(proxy.port, signon) is not None
                assert proxy.stats["cut_reply"] == out.count(False)
                return out

    a, b = await run(1), await run(1)
    assert a == b and True in a and False in a


async def test_sever_all_and_upstream_down() -> None:
    async with EchoHost() as host, FaultProxy(("127.0.0.1", host.port)) as proxy:
        r, w = await asyncio.open_connection("127.0.0.1", proxy.port)
        w.write(encode_frame(TPDU, HEADER, request(1)))
        await r.read(4096)
        assert proxy.sever_all() == 1
        assert await asyncio.wait_for(r.read(4096), 2) == b""
        w.close()
        host_port = host.port
    # The host is gone: the proxy accepts, then closes; it does not crash.
    async with FaultProxy(("127.0.0.1", host_port)) as proxy:
        assert await exchange(proxy.port, request(2)) is None
        assert proxy.stats["upstream_refused"] == 1


async def test_unframed_bytes_pass_through() -> None:
    async with EchoHost() as host, FaultProxy(("127.0.0.1", host.port)) as proxy:
        r, w = await asyncio.open_connection("127.0.0.1", proxy.port)
        w.write(b"\x00\x01garbage")  # a length that cannot hold a TPDU and header
        await w.drain()
        w.write_eof()
        # The proxy counts the bytes before it passes them on; the host cannot read them and
        # hangs up, and so does the proxy: once the end of the stream is here, it has counted.
        while await asyncio.wait_for(r.read(4096), 10):
            pass
        w.close()
        assert proxy.stats["unframed_request"] == 1


def test_loopback_only() -> None:
    assert require_loopback("127.0.0.2") == "127.0.0.2"
    assert require_loopback("localhost") == "localhost"
    with pytest.raises(NotLoopbackError):
        require_loopback("10.1.2.3")
    with pytest.raises(NotLoopbackError):
        FaultProxy(("192.0.2.1", 8583))
