"""Host-to-host frames: a 2-byte big-endian length, then the message body."""

from __future__ import annotations

import asyncio

MAX_FRAME = 8192


async def read_frame(reader: asyncio.StreamReader) -> bytes | None:
    """The next body, or None at a clean end of stream. Raises on a cut frame or a bad length."""
    try:
        head = await reader.readexactly(2)
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return None
        raise
    size = int.from_bytes(head, "big")
    if not 0 < size <= MAX_FRAME:
        raise ConnectionError(f"host-to-host frame of {size} bytes")
    return await reader.readexactly(size)


async def write_frame(writer: asyncio.StreamWriter, body: bytes) -> None:
    writer.write(len(body).to_bytes(2, "big") + body)
    await writer.drain()
