"""Blocking-socket helpers for the hostile-input tests: frames built by hand, one exchange at a time.

Kept deliberately independent of the terminal core: these tests talk to the host the way a
broken or hostile device would, byte by byte."""

from __future__ import annotations

import socket
import time

from posgate.dialect.cup import CODEC
from posgate.dialect.fields import Field60, Field63, terminal_info
from posgate.framing import Frame, FrameReader, FramingError, encode_frame
from posgate.iso8583 import Message

TPDU = bytes.fromhex("6000030000")
HEADER = bytes.fromhex("603100000000")
DEMO_TID, DEMO_MID, DEMO_SERIAL = "10000001", "898100012340001", "DEMO0001"

# docs/dialect.md 11.1(a) and (d): a real framed sign-on and a real contactless sale body.
REAL_SIGN_ON = bytes.fromhex(
    "003C6000030000602100000000080000200000" "00C00012000059313034303030363730303030303030303030303030303400110000000100300003303120"
)
REAL_SALE_BODY = bytes.fromhex(
    "0200703C06C020C09A11196217857600008050804000000000000000000100010516124302092308071000010012"
    "376217857600008050804D2308220100008230003932333336373837383437313030303533393930303032313536"
    "7D6A7408DFE2E9E5260000000000000001459F26089C0A057796D091E39F2701809F1013070F0103A00000010A01"
    "0000005959BAF31C349F37042AE9F9B49F36020FCD950500000000009A031802099C01009F0206000000000001"
    "5F2A02015682027C009F1A0201569F03060000000000009F330390C8C09F34030000009F3501229F1E0831323334"
    "353637388408A0000003330101019F090200209F41040000000200122200000100064433374345464536"
)


def frame(body: bytes, header: bytes = HEADER) -> bytes:
    return encode_frame(TPDU, header, body)


def raw_frame(body: bytes, length: int | None = None) -> bytes:
    """A frame whose length prefix may lie."""
    size = 11 + len(body) if length is None else length
    return (size & 0xFFFF).to_bytes(2, "big") + TPDU + HEADER + body


def sign_on_body(stan: int, tid: str = DEMO_TID, mid: str = DEMO_MID, serial: str = DEMO_SERIAL, scheme: str = "003") -> bytes:
    return CODEC.encode(Message("0800", {
        11: f"{stan % 999_999 + 1:06d}", 41: tid, 42: mid, 60: Field60("00", "000001", scheme).format(),
        62: terminal_info(serial), 63: Field63("01").format(),
    }))  # fmt: skip


def echo_body(stan: int, tid: str = DEMO_TID, mid: str = DEMO_MID) -> bytes:
    return CODEC.encode(Message("0820", {11: f"{stan % 999_999 + 1:06d}", 41: tid, 42: mid, 60: "00000001301"}))


class Outcome:
    """What came back: the frames received, and whether the host closed the connection."""

    def __init__(self, frames: list[Frame], closed: bool, timed_out: bool) -> None:
        self.frames, self.closed, self.timed_out = frames, closed, timed_out

    @property
    def reply(self) -> Message | None:
        if not self.frames:
            return None
        try:
            return CODEC.decode(self.frames[0].body)
        except Exception:  # noqa: BLE001
            return None

    def __repr__(self) -> str:
        return f"Outcome(frames={len(self.frames)}, closed={self.closed}, timed_out={self.timed_out})"


def exchange(port: int, data: bytes, *, want: int = 1, timeout: float = 15.0, linger: float = 0.0) -> Outcome:
    """Send ``data`` on a fresh connection; read until ``want`` frames, EOF or ``timeout``."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        return read_frames(s, want=want, timeout=timeout, linger=linger)


def read_frames(s: socket.socket, *, want: int = 1, timeout: float = 15.0, linger: float = 0.0) -> Outcome:
    reader, frames = FrameReader(), []
    deadline = time.monotonic() + timeout
    while len(frames) < want or linger > 0:
        left = deadline - time.monotonic()
        if len(frames) >= want:
            left = min(left, linger)
            linger = 0.0
        if left <= 0:
            return Outcome(frames, False, len(frames) < want)
        s.settimeout(left)
        try:
            data = s.recv(65536)
        except TimeoutError:
            if len(frames) >= want:
                return Outcome(frames, False, False)
            return Outcome(frames, False, True)
        except ConnectionResetError:
            return Outcome(frames, True, False)
        if not data:
            return Outcome(frames, True, False)
        try:
            frames += reader.feed(data)
        except FramingError:
            return Outcome(frames, True, False)
    return Outcome(frames, False, False)
