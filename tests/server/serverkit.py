"""Client helpers for the server tests: frames over a real socket."""

from __future__ import annotations

import asyncio

from posgate.framing import encode_frame

TPDU = bytes.fromhex("6000030000")
HEADER = bytes.fromhex("603100000000")
BODY = bytes.fromhex("0800") + bytes(8) + b"hello"  # MTI + empty bitmap + payload: the echo stand-in does not decode



OPEN: list[asyncio.StreamWriter] = []  # every client writer, closed by the autouse fixture


async def close_clients() -> None:
    while OPEN:
        w = OPEN.pop()
        w.close()
        try:
            await w.wait_closed()
        except (ConnectionError, OSError):
            pass


async def connect(host) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    r, w = await asyncio.open_connection(*host.address)
    OPEN.append(w)
    return r, w


async def roundtrip(reader, writer, body: bytes = BODY, timeout: float = 5) -> tuple[bytes, bytes, bytes]:
    writer.write(encode_frame(TPDU, HEADER, body))
    await writer.drain()
    return await read_frame(reader, timeout)


async def read_frame(reader, timeout: float = 5) -> tuple[bytes, bytes, bytes]:
    size = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), timeout), "big")
    data = await asyncio.wait_for(reader.readexactly(size), timeout)
    return data[:5], data[5:11], data[11:]


async def closed_by_peer(reader, timeout: float = 5) -> bool:
    try:
        data = await asyncio.wait_for(reader.read(100), timeout)
    except (ConnectionResetError, BrokenPipeError):
        return True
    return data == b""
